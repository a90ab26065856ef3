"""An invisible, keyed watermark in the pixels of generated clips (:mod:`gan_video.provenance` uses it).

What it carries: 32 bits, a fixed 16-bit magic (``0x6776``, "gv": made by gan_video) and a 16-bit
model id (the first 4 hex digits of the generator's sha256), each bit repeated over many cells of
the frame (the repetition code) under a keyed +-1 chip sequence (spread spectrum). The magic, which
detection reads, has 7/8 of the cells (:data:`MAGIC_SHARE`); the id the rest (version 3 split them
half and half: the score grows with the square root of the magic's cells, and 0.75x + CRF 28 needed
it more than the id did).

Where: three planes of the frame, each cut into square cells of a fixed pixel size, the same offset
added to every frame of the clip (a static mark, which H.264 predicts from frame to frame instead of
having to re-code it):

- luma (Y) in 4x4-pixel cells (256 at 64x64): one 4x4 transform block of H.264 each, whose DC
  coefficient survives CRF 28 far better than 2x2 cells did (version 1 of the mark);
- the two chroma planes (Cb, Cr) in 8x8-pixel cells (64 each at 64x64): one 4x4 block of yuv420p
  chroma each.

The key (:data:`DEFAULT_KEY` unless given) seeds which cell carries which bit and its chip sign.

Detection from pixels alone: the clip's per-pixel temporal median (moving content and the noise of
re-coded frames drop out, the static mark stays), each plane averaged per cell, then whitened
(luma: minus a least-squares prediction from the 8 neighbouring cells, fitted on the clip itself;
chroma: minus the 3x3 cell mean) and weighted by
the inverse of the local residual energy (cells on edges count less). For each plane, the magic
bits' correlation with their chips, divided by the norm of the weighted residuals, gives a score
``S_p``; the score is ``S = (S_Y + S_Cb + S_Cr) / sqrt(3)``.

Geometry: a shared clip has often been rescaled or trimmed, so the detector scores it under
*hypotheses* of where its pixels were when it was marked, fixed by the received frame size alone:
as is, rescaled from each size gan_video makes, cropped by up to 8 px per side
(:mod:`gan_video.watermark_geometry`, which also gives their weights ``w_h``, summing to 1).

False positives: for any clip made without this key and any one hypothesis, the chips are
independent of the pixels, so ``S_h`` is a sum of random signs with weights of unit norm, and for
such sums ``P(S >= t) <= 3.18 * P(N(0,1) >= t)`` whatever the weights (Bentkus & Dzindzalieta, "A
tight Gaussian bound for weighted sums of Rademacher random variables", Bernoulli 21(2), 2015). By a
weighted Bonferroni bound the clip's p-value bound is ``p = min_h 3.18 P(N >= S_h) / w_h``, and it
counts as marked when ``p <= ALPHA`` (:data:`ALPHA` = 3.18 P(N >= 3) = 0.43%): for an unmarked clip
``P(detected) <= 0.43%`` however many hypotheses were tried. At 64x64 "as is" needs ``S >= 3.12``;
upscaled 2x / 4x and read back, 3.43 / 3.62; a 56x56 clip (4 px cut per side) 3.51 centred, 4.5 at
another offset; a 48x48 clip (0.75x) read back at 64x64 3.47.

Embedding is informed: after adding the mark (base amplitudes 1.0 level of Y, 0.8 of Cb, 0.9 of Cr
at 64x64, falling as 1/sqrt(area) to 0.7 of that from about 90x90 up), the clip is analysed (through
its temporal mean, smooth in the amplitudes) and each bit's amplitude in each plane raised (up to
:data:`MAX_BOOST` times its base) until its correlation reaches a target (S_Y = 6, S_Cb = S_Cr = 3;
the id bits :data:`ID_TARGET` of it). With ``simulate_codec``, the same for the magic bits along the
way a shared clip travels: written as gan_video writes it (H.264 CRF 18, 8 fps), downscaled 0.75x
and re-encoded (CRF 28 at 25 fps; x264's rate control reads the frame rate, and 8 fps there codes
differently), until the score there reaches 4. Two passes. The boosts stop where the mark's pattern
would pass 40 dB PSNR (:data:`MARK_PSNR`; rounded into whole levels it can measure about 0.5 dB
lower) or :data:`COST_SHARE` (the share of 1 dB) of the simulated CRF 18 file's own squared error,
whichever is lower: the PSNR a mark costs is set against the coding error of the file it ships in.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Optional, Union

import numpy as np

from .watermark_codec import deliver, downscaled_reencode, h264_roundtrip
from .watermark_geometry import MAX_CROP, SIZES, _describe, _hypotheses, _view
from .watermark_layout import MAGIC_SHARE, NBITS, NMAGIC, _layout

DEFAULT_KEY = "gan_video public watermark key v1"
MAGIC = 0x6776                  # "gv"
THRESHOLD = 3.0                 # the score of one hypothesis of weight 1 at the false-positive bound ALPHA
TAIL_CONSTANT = 3.178           # Bentkus & Dzindzalieta (2015): the optimal c in P(S >= t) <= c P(N >= t)
DOWN_SCALE = 0.75               # the simulated journey's downscale (watermark_codec.downscaled_reencode) ...
DOWN_SCORE = 4.0                # ... the score there under which the embedding raises the bits it wore down ...
DOWN_TARGET = 2.5               # ... towards this score per plane
ID_TARGET = 0.5                 # the id bits aim at half the magic's targets (confirming a known id needs less)
MIN_SIZE = 32                   # smaller frames have too few cells
SIZE_FLOOR = 0.7                # base amplitudes scale down with the frame area, to 0.7 of it at most
ITERATIONS = 2                  # informed-embedding passes
MAX_BOOST = 2.0                 # a bit's amplitude may grow to 2 times the base, never shrink ...
MARK_PSNR = 40.0                # ... as long as the mark alone keeps the frames above 40 dB PSNR ...
MARK_POWER = 255.0 ** 2 / 10 ** (MARK_PSNR / 10)
COST_SHARE = 10 ** 0.1 - 1      # ... and adds at most the share of 1 dB to the simulated delivery's own squared error,
FLOOR_PSNR = 42.0               # ... though a cleanly coded clip may always take boosts up to 42 dB
FLOOR_POWER = 255.0 ** 2 / 10 ** (FLOOR_PSNR / 10)

_LUMA = np.array([0.299, 0.587, 0.114], np.float64)


@dataclass(frozen=True)
class Plane:
    """One carrier plane: ``row`` maps RGB to the plane, ``direction`` is the RGB change of +1 in it."""
    name: str
    cell: int                   # cell side in pixels
    whiten: str                 # "ls" (least-squares neighbour prediction) or "box3"
    amplitude: float            # base amplitude, in plane units (levels of Y, of 0.564 (B-Y), of 0.713 (R-Y))
    target: float               # per-plane score the informed embedding aims at (as is)
    row: tuple
    direction: tuple


_CB = tuple(0.564 * (np.array([0.0, 0.0, 1.0]) - _LUMA))     # BT.601: Cb = 0.564 (B - Y)
_CR = tuple(0.713 * (np.array([1.0, 0.0, 0.0]) - _LUMA))     # Cr = 0.713 (R - Y)
PLANES = (    # name, cell, whitening, amplitude, target, RGB -> plane, RGB of +1 in it
    Plane("Y", 4, "ls", 1.0, 6.0, tuple(_LUMA), (1.0, 1.0, 1.0)),
    Plane("Cb", 8, "box3", 0.8, 3.0, _CB, (0.0, -0.344, 1.773)),
    Plane("Cr", 8, "box3", 0.9, 3.0, _CR, (1.403, -0.714, 0.0)),
)


@dataclass
class WatermarkResult:
    """What :func:`detect_watermark` found.

    ``score`` is ``S`` (see the module docstring) at the geometry hypothesis that fits best,
    ``geometry`` says which ("as is", "rescaled from 64x64", "cropped from 64x64 at x=4, y=4"),
    ``hypotheses`` how many were tried and ``threshold`` the score that hypothesis needed.
    ``p_bound`` (the smallest ``3.18 P(N(0,1) >= S_h) / w_h`` over the hypotheses, at most 1) bounds
    the chance that a clip without the mark looks at least this marked under any of them;
    ``detected`` is ``p_bound <= ALPHA``. ``plane_scores`` are the ``S_p``. ``model_id`` is the
    16-bit id read from the pixels when ``detected`` (else None); ``id_confidence`` is the weakest id
    bit's normalised correlation (bits under ~2 may be wrong). With ``expected_id``, ``id_score`` is
    the score of that id's 16 bits at the same geometry (same scale as ``score``) and ``id_match``
    whether the clip is detected and that score passes :data:`THRESHOLD` too."""
    detected: bool
    score: float
    threshold: float
    model_id: Optional[int]
    id_confidence: float
    plane_scores: dict = field(default_factory=dict)
    p_bound: float = 1.0
    expected_id: Optional[int] = None
    id_score: Optional[float] = None
    id_match: Optional[bool] = None
    note: str = ""
    geometry: str = "as is"
    hypotheses: int = 1

    def as_dict(self) -> dict:
        return asdict(self)

    def model_id_hex(self) -> Optional[str]:
        return None if self.model_id is None else f"{self.model_id:04x}"


def model_id_of(model: Union[int, str, None]) -> int:
    """The 16-bit id of a model: an int in [0, 65535], or a hex hash (its first 4 digits); None: 0."""
    if model is None:
        return 0
    if isinstance(model, (int, np.integer)) and not isinstance(model, bool):
        if not 0 <= int(model) <= 0xFFFF:
            raise ValueError(f"a model id is 16 bits (0..65535), got {model}")
        return int(model)
    text = str(model).strip().lower()
    if len(text) < 4 or any(ch not in "0123456789abcdef" for ch in text):
        raise ValueError(f"model hash {model!r} is not a hex digest of 4+ digits (give a sha256 hex "
                         "digest, or an int id)")
    return int(text[:4], 16)


def payload_bits(model_id: int) -> np.ndarray:
    """The 32 payload bits as +-1: the magic (16 bits) then the model id (16 bits), MSB first."""
    word = (MAGIC << 16) | (model_id & 0xFFFF)
    return np.array([1.0 if (word >> (NBITS - 1 - i)) & 1 else -1.0 for i in range(NBITS)])


def tail_bound(score: float) -> float:
    """Upper bound on P(S >= score) for a clip without the mark, for one hypothesis (see the module
    docstring)."""
    return float(min(1.0, TAIL_CONSTANT * 0.5 * math.erfc(score / math.sqrt(2.0))))


ALPHA = tail_bound(THRESHOLD)   # 0.43%: the false-positive bound of a detection, all hypotheses counted


def score_needed(weight: float, alpha: float = ALPHA) -> float:
    """The score a hypothesis of weight ``weight`` needs: the ``t`` with ``tail_bound(t) = alpha * weight``."""
    lo, hi = 0.0, 40.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if tail_bound(mid) <= alpha * weight else (mid, hi)
    return hi


def _as_clip(frames: np.ndarray) -> np.ndarray:
    a = np.asarray(frames)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames [T, H, W, 3] (or one [H, W, 3]), got {a.dtype} {list(a.shape)}")
    if a.shape[0] < 1:
        raise ValueError("the clip has no frames")
    return a


def _neighbours(g: np.ndarray) -> list[np.ndarray]:
    p = np.pad(g, 1, mode="reflect")
    h, w = g.shape
    return [p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def _whiten(g: np.ndarray, how: str) -> np.ndarray:
    nb = _neighbours(g)
    if how == "box3":
        return g - (g + sum(nb)) / 9.0
    # least-squares linear prediction of each cell from its 8 neighbours (+ a constant), fitted on
    # this clip: the scene is predictable from its neighbours, a +-1 chip pattern is not
    x = np.stack([n.ravel() for n in nb] + [np.ones(g.size)], 1)
    coef, *_ = np.linalg.lstsq(x, g.ravel(), rcond=None)
    return g - (x @ coef).reshape(g.shape)


def _weighted(z: np.ndarray) -> np.ndarray:
    """Residuals divided by their local energy (3x3 mean of z^2, floored): a locally optimal
    detector's weighting, so that edges and texture, where the scene dominates, count less."""
    e = (z * z + sum(n * n for n in _neighbours(z))) / 9.0
    return z / (e + 0.25 + 0.1 * float(np.median(e)))


def _temporal_mean(clip: np.ndarray) -> np.ndarray:
    """The embedding's view of a clip: its temporal mean (smooth in the mark's amplitudes)."""
    t, h, w, _ = clip.shape
    return clip.reshape(t, -1).mean(0, dtype=np.float64).reshape(h, w, 3)


def _temporal_median(clip: np.ndarray) -> np.ndarray:
    """The detector's view of a clip: its per-pixel temporal median, which drops what passes by (a
    moving object, the noise of re-coded frames) where the mean keeps a share of it."""
    return np.median(clip, axis=0).astype(np.float64)


def _analyse_mean(mean: np.ndarray, key: str, visible: Optional[np.ndarray] = None) -> list[dict]:
    """Per plane: the weighted residual per cell of a temporal mean ``[H, W, 3]``, and the key's
    layout. ``visible`` (bool ``[H, W]``): the pixels that were seen (a crop hypothesis); cells seen
    in part are averaged over their visible pixels, cells seen less than a quarter are left out."""
    h, w, _ = mean.shape
    out = []
    for plane in PLANES:
        c = plane.cell
        gh, gw = h // c, w // c
        values = mean[:gh * c, :gw * c] @ np.asarray(plane.row)
        if visible is None:
            cells, seen = values.reshape(gh, c, gw, c).mean((1, 3)), None
        else:
            vis = visible[:gh * c, :gw * c].astype(np.float64)
            count = vis.reshape(gh, c, gw, c).sum((1, 3))
            cells = (values * vis).reshape(gh, c, gw, c).sum((1, 3)) / np.maximum(count, 1.0)
            seen = count >= c * c / 4
            # unseen cells take the mean of the seen ones (for the whitening only: they weigh 0)
            cells = np.where(seen, cells, cells[seen].mean() if seen.any() else 0.0)
        u = _weighted(_whiten(cells, plane.whiten))
        if seen is not None:
            u = u * seen
        bits, chips = _layout(key, plane, gh, gw)
        out.append({"u": u.ravel(), "bits": bits, "chips": chips, "shape": (gh, gw)})
    return out


def _analyse(clip: np.ndarray, key: str) -> list[dict]:
    """:func:`_analyse_mean` of a clip's temporal mean (moving content averages out)."""
    return _analyse_mean(_temporal_mean(clip), key)


def _plane_stats(a: dict) -> tuple[np.ndarray, float, float, np.ndarray]:
    """Per-bit correlations [32], norms of the magic and id cells' residuals, per-bit energies [32]."""
    u, bits, chips = a["u"], a["bits"], a["chips"]
    corr = np.bincount(bits, weights=u * chips, minlength=NBITS)
    energy = np.bincount(bits, weights=u * u, minlength=NBITS)
    norm_m = math.sqrt(energy[:NMAGIC].sum())
    norm_i = math.sqrt(energy[NMAGIC:].sum())
    return corr, norm_m, norm_i, energy


def _score(layouts: list[dict]) -> tuple[float, dict]:
    """The score S and the per-plane scores S_p of analysed planes (see the module docstring)."""
    magic = payload_bits(0)[:NMAGIC]
    scores = {}
    for plane, a in zip(PLANES, layouts):
        corr, norm_m, _, _ = _plane_stats(a)
        scores[plane.name] = float(magic @ corr[:NMAGIC] / norm_m) if norm_m > 0 else 0.0
    return sum(scores.values()) / math.sqrt(len(PLANES)), scores


def _check_size(h: int, w: int) -> None:
    if min(h, w) < MIN_SIZE:
        raise ValueError(f"frames of {w}x{h} are too small to watermark; the watermark needs at least "
                         f"{MIN_SIZE}x{MIN_SIZE}")


def _pattern(layouts: list[dict], amps: np.ndarray, signs: list[np.ndarray], h: int, w: int) -> np.ndarray:
    """The RGB offset [H, W, 3] (float) of per-plane, per-bit amplitudes ``amps`` [planes, 32]."""
    delta = np.zeros((h, w, 3), np.float64)
    for p, (plane, a) in enumerate(zip(PLANES, layouts)):
        gh, gw = a["shape"]
        c = plane.cell
        cells = (signs[p] * amps[p][a["bits"]]).reshape(gh, gw)
        up = np.repeat(np.repeat(cells, c, 0), c, 1)
        delta[:gh * c, :gw * c] += up[..., None] * np.asarray(plane.direction)
    return delta


def _shortfall(plane: Plane, a: dict, bits: np.ndarray, host: np.ndarray, amps: np.ndarray,
               target: float) -> np.ndarray:
    """How much more amplitude each bit of a plane needs for its correlation to reach ``target``."""
    corr, norm_m, norm_i, _ = _plane_stats(a)
    goal = target * np.where(np.arange(NBITS) < NMAGIC, norm_m, ID_TARGET * norm_i) / NMAGIC
    got = bits * corr
    gain = (got - host) / amps                    # response per unit of amplitude, per bit
    typical = np.median(gain[gain > 0]) if (gain > 0).any() else 1.0
    return np.maximum(0.0, goal - got) / np.maximum(gain, 0.25 * typical)


def embed_watermark(frames: np.ndarray, model_id: Union[int, str, None] = None, key: Optional[str] = None,
                    strength: float = 1.0, simulate_codec: bool = True) -> np.ndarray:
    """The clip (uint8 ``[T, H, W, 3]``, or one frame ``[H, W, 3]``) with the watermark carrying
    ``model_id`` (an int in [0, 65535] or a hex model hash: its first 4 digits), keyed by ``key``.
    ``strength`` scales the amplitudes and targets (1: the measured design point);
    ``simulate_codec`` checks the mark against the way a clip travels (written as gan_video writes
    it, then downscaled 0.75x and re-encoded at CRF 28), strengthens it where that would wear it
    down, and caps it at 1 dB of that file's own coding error (see the module docstring).
    Deterministic: the same clip, id and key give the same frames (with ``simulate_codec``, for a
    given libx264 build, on any machine). A clip that already carries this id's mark under this key
    comes back unchanged (marking twice does not double the mark)."""
    clip = _as_clip(frames)
    t, h, w, _ = clip.shape
    _check_size(h, w)
    if not strength > 0:
        raise ValueError(f"strength must be > 0, got {strength}")
    key = DEFAULT_KEY if key is None else str(key)
    ident = model_id_of(model_id)
    if detect_watermark(clip, key, expected_id=ident, search=False).id_match:
        return np.asarray(frames).copy()
    bits = payload_bits(ident)
    x = clip.astype(np.float64)
    layouts = _analyse(clip, key)
    signs = [a["chips"] * bits[a["bits"]] for a in layouts]
    # larger frames have more cells: the base falls as 1 / sqrt(area) from 64x64, to 0.7 of it at most
    size = max(SIZE_FLOOR, min(1.0, math.sqrt(64 * 64 / (h * w))))
    base = np.array([[pl.amplitude * strength * size] * NBITS for pl in PLANES])
    amps = base.copy()
    host = [bits * _plane_stats(a)[0] for a in layouts]   # the scene's own (signed) correlation per bit
    cap, travel_host = MARK_POWER, None
    if simulate_codec:
        delivered = deliver(clip)
        error = float(np.mean((delivered - x[:, :delivered.shape[1], :delivered.shape[2]]) ** 2))   # float - uint8
        cap = min(cap, max(FLOOR_POWER, COST_SHARE * error))
        travel_host = [bits * _plane_stats(a)[0] for a in _travelled(delivered, key)]   # the scene's, along the way
    delta = _pattern(layouts, amps, signs, h, w)
    for it in range(ITERATIONS + 1):
        marked = np.clip(np.rint(x + delta[None]), 0, 255).astype(np.uint8)
        if it == ITERATIONS:
            break
        short = np.zeros_like(amps)
        for p, (plane, a) in enumerate(zip(PLANES, _analyse(marked, key))):
            short[p] = _shortfall(plane, a, bits, host[p], amps[p], plane.target * strength)
        if travel_host is not None:
            seen = _travelled(deliver(marked), key)
            if _score(seen)[0] < DOWN_SCORE * strength:
                for p, a in enumerate(seen):      # the magic's bits only: detection reads them
                    more = _shortfall(PLANES[p], a, bits, travel_host[p], amps[p], DOWN_TARGET * strength)
                    short[p, :NMAGIC] = np.maximum(short[p, :NMAGIC], more[:NMAGIC])
        if not short.any():
            break
        amps = np.minimum(amps + short, base * MAX_BOOST)
        delta = _pattern(layouts, amps, signs, h, w)
        power = float(np.mean(delta ** 2))
        if power > cap:      # boosts stop at the cap (the base is always kept)
            amps = np.maximum(base, amps * math.sqrt(cap / power))
            delta = _pattern(layouts, amps, signs, h, w)
    return marked.reshape(np.asarray(frames).shape)


def _travelled(delivered: np.ndarray, key: str) -> list[dict]:
    """The analysis of a delivered clip after :func:`~gan_video.watermark_codec.downscaled_reencode`
    by :data:`DOWN_SCALE`, its temporal mean read back at its size (bilinear) as the detector's
    rescale hypothesis reads it."""
    import cv2

    h, w = delivered.shape[1:3]
    mean = _temporal_mean(downscaled_reencode(delivered, DOWN_SCALE))
    return _analyse_mean(cv2.resize(mean, (w, h), interpolation=cv2.INTER_LINEAR), key)


def detect_watermark(frames: np.ndarray, key: Optional[str] = None, threshold: float = THRESHOLD,
                     expected_id: Union[int, str, None] = None, sizes: Optional[tuple] = None,
                     search: bool = True) -> WatermarkResult:
    """Look for the watermark of ``key`` in uint8 frames ``[T, H, W, 3]`` (or one ``[H, W, 3]``) from
    the pixels alone, under every geometry hypothesis of the received size (see the module
    docstring and :class:`WatermarkResult`). ``sizes``: frame sizes a model made besides
    :data:`SIZES` (e.g. ``(96,)``). ``search=False``: "as is" only. ``threshold``: the score one
    hypothesis of weight 1 must reach (3.0, a bound of 0.43%); the bound is shared over the
    hypotheses. ``expected_id`` (an id or a model hash) also scores that model's id bits, a stronger
    test of "made by this model" than reading the id blind."""
    clip = _as_clip(frames)
    t, h, w, _ = clip.shape
    expected = None if expected_id is None else model_id_of(expected_id)
    if min(h, w) < MIN_SIZE:
        return WatermarkResult(False, 0.0, threshold, None, 0.0, expected_id=expected, hypotheses=0, geometry="",
                               note=f"frames of {w}x{h} are smaller than {MIN_SIZE}x{MIN_SIZE}: not checked")
    key = DEFAULT_KEY if key is None else str(key)
    alpha = tail_bound(threshold)
    bad = [x for x in (sizes or ()) if int(x) < MIN_SIZE]
    if bad:
        raise ValueError(f"sizes {bad}: a watermarked frame is at least {MIN_SIZE}x{MIN_SIZE}")
    all_sizes = tuple(sorted({int(x) for x in (*SIZES, *(sizes or ()))}))
    hyps = _hypotheses(h, w, all_sizes) if search else [(("as is", 0, 0, 0), 1.0)]
    mean = _temporal_median(clip)
    best = None        # every view is at least MIN_SIZE: the clip is, and so is every size in all_sizes
    for hyp, weight in hyps:
        view, seen = _view(mean, hyp)
        layouts = _analyse_mean(view, key, seen)
        score, scores = _score(layouts)
        p = tail_bound(score) / weight
        if best is None or p < best[0]:
            best = (p, score, scores, layouts, hyp, weight)
    p, score, scores, layouts, hyp, weight = best
    id_corr, id_var = np.zeros(NBITS - NMAGIC), np.zeros(NBITS - NMAGIC)
    for a in layouts:
        corr, _, norm_i, energy = _plane_stats(a)
        if norm_i > 0:
            id_corr += corr[NMAGIC:] / norm_i
            id_var += energy[NMAGIC:] / norm_i ** 2
    k = len(PLANES)
    detected = bool(p <= alpha)
    r = id_corr / np.sqrt(np.maximum(id_var, 1e-24))   # each id bit's normalised correlation
    word = int("".join("1" if v > 0 else "0" for v in r), 2)
    res = WatermarkResult(detected, float(score), float(score_needed(weight, alpha)), word if detected else None,
                          float(np.abs(r).min()) if detected else 0.0,
                          {n: round(v, 3) for n, v in scores.items()}, float(min(1.0, p)),
                          geometry=_describe(hyp), hypotheses=len(hyps))
    if expected is not None:
        res.expected_id = expected
        # the id bits' chips are independent of the magic bits' chips that chose the geometry, so
        # at that geometry they are one more test of a single hypothesis
        res.id_score = float(payload_bits(expected)[NMAGIC:] @ id_corr / math.sqrt(k))
        res.id_match = bool(detected and res.id_score >= threshold)
    return res


__all__ = ["DEFAULT_KEY", "MAGIC", "MAGIC_SHARE", "THRESHOLD", "ALPHA", "SIZES", "MAX_CROP", "PLANES", "score_needed", "tail_bound", "h264_roundtrip", "WatermarkResult", "embed_watermark",
           "detect_watermark", "model_id_of", "payload_bits"]
