"""The Python API: load a trained model, make clips, write them.

    import gan_video

    model = gan_video.load("runs/shapes/checkpoints/last.ckpt")     # or an export folder
    clips = model.generate(["a red circle moving left"], num_samples=4, seed=0)   # uint8 [4, T, H, W, 3]
    gan_video.save(clips, "samples/", prompts=["a red circle moving left"] * 4, seeds=[0, 1, 2, 3])

:func:`load` reads a ``.ckpt`` of ``gan-video fit`` (through the safe checkpoint reader) or an export
folder of ``gan-video-export`` (safetensors + JSON, no pickle at all) and returns a
:class:`VideoModel`: the EMA generator and its text encoder, ready to sample. A clip depends only on
its prompt and its noise, and its noise only on its seed (each clip draws from its own seeded
generator, content noise first, then motion noise), so the same seed gives the same clip on the
same device whatever else is generated with it. The "dice" can be held apart: ``content_seed`` /
``motion_seed`` fix one part of the noise and leave the other to the per-clip seeds;
:meth:`VideoModel.interpolate` walks between two prompts, :meth:`VideoModel.interpolate_seeds`
between two seeds' noise. :func:`save` writes mp4 / GIF / PNG files and a ``manifest.jsonl``;
:func:`save_grid` writes a prompts x seeds contact sheet (``gan-video-sample`` uses both).
"""
from __future__ import annotations

import hashlib
import json
import operator
import os
import re
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from .data.io import to_uint8, write_gif, write_mp4
from .models.generator import VideoGenerator
from .models.text import Tokenizer, check_prompts, embed_captions

PathLike = Union[str, os.PathLike]
FORMATS = ("mp4", "gif", "png")
NOISE_PARTS = ("content", "motion")


def _prompt_list(prompts: Union[str, Sequence[str]]) -> list[str]:
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    if not prompts:
        raise ValueError("no prompt given; pass a list of captions such as ['a red circle moving left']")
    check_prompts(prompts)
    return prompts


def _int(value, what: str) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{what} must be an integer, got {value!r}") from None


def expand_prompts(prompts: Union[str, Sequence[str]], num_samples: int = 1, seed: int = 0
                   ) -> tuple[list[str], list[int]]:
    """The clips ``generate(prompts, num_samples, seed)`` makes, as per-clip lists ``(prompts,
    seeds)``: clip ``k = i * num_samples + j`` is sample ``j`` of prompt ``i`` and uses seed
    ``seed + k`` (what :func:`save` wants, one entry per clip)."""
    prompts = _prompt_list(prompts)
    num_samples, seed = _int(num_samples, "num_samples"), _int(seed, "seed")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}; ask for at least one clip per prompt")
    per_clip = [p for p in prompts for _ in range(num_samples)]
    return per_clip, [seed + k for k in range(len(per_clip))]


def lerp(a: torch.Tensor, b: torch.Tensor, w: float) -> torch.Tensor:
    """Linear interpolation, exactly ``a`` at ``w = 0`` and ``b`` at ``w = 1`` (the walks' ends are
    then the plain clips, bit for bit)."""
    return a if w == 0 else b if w == 1 else torch.lerp(a, b, w)


def slerp(a: torch.Tensor, b: torch.Tensor, w: float) -> torch.Tensor:
    """Spherical interpolation between two noise tensors (each sample flattened to one vector),
    exactly ``a`` at ``w = 0`` and ``b`` at ``w = 1``; linear where they are (anti)parallel."""
    if w == 0:
        return a.clone()
    if w == 1:
        return b.clone()
    fa, fb = a.reshape(a.shape[0], -1).double(), b.reshape(b.shape[0], -1).double()
    cos = (fa * fb).sum(1) / (fa.norm(dim=1) * fb.norm(dim=1)).clamp_min(1e-12)
    omega = cos.clamp(-1, 1).acos()[:, None]
    so = omega.sin()
    linear = so.abs() < 1e-6
    ca = torch.where(linear, torch.full_like(so, 1 - w), ((1 - w) * omega).sin() / so.where(~linear, 1))
    cb = torch.where(linear, torch.full_like(so, w), (w * omega).sin() / so.where(~linear, 1))
    return (ca * fa + cb * fb).to(a.dtype).view_as(a)


class VideoModel:
    """A trained text-to-video generator ready to sample: what :func:`load` returns.

    Attributes:
        generator: the (EMA) generator network, eval mode.
        text_encoder: its text encoder (token encoder, or frozen backbone + trained head).
        hparams: the model's hyperparameters (``generator``, ``text``, ``resolution``, ``frames``, ...).
        card: the model card of an export (None for a checkpoint).
        source: the path it was loaded from.

    Every method that makes clips returns numpy uint8 ``[N, T, H, W, 3]``.
    """

    def __init__(self, generator: VideoGenerator, text_encoder: nn.Module, tokenizer: Tokenizer,
                 hparams: dict, source: str = "", card: Optional[dict] = None):
        self.generator, self.text_encoder, self.tokenizer = generator.eval(), text_encoder.eval(), tokenizer
        self.hparams, self.source, self.card = dict(hparams), source, card

    def __repr__(self) -> str:
        kind = "export" if self.card is not None else "checkpoint"
        return (f"VideoModel({self.hparams['generator']['arch']} generator, {self.hparams['text']['name']} text, "
                f"{self.frames} frames at {self.resolution}px, {kind} {self.source!r}, on {self.device})")

    @property
    def resolution(self) -> int:
        return int(self.hparams["resolution"])

    @property
    def frames(self) -> int:
        """The clip length the model was trained on (the default of ``frames``)."""
        return int(self.hparams["frames"])

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def to(self, device: Union[str, torch.device]) -> "VideoModel":
        """Move the networks to ``device`` (in place); returns self."""
        self.generator.to(device)
        self.text_encoder.to(device)
        return self

    # ------------------------------------------------------------------ the building blocks
    @torch.no_grad()
    def embed(self, prompts: Union[str, Sequence[str]]) -> torch.Tensor:
        """Sentence embeddings ``[N, text.out_dim]`` of ``prompts`` on the model's device (one
        encoder pass for all of them)."""
        return embed_captions(self.text_encoder, self.tokenizer, _prompt_list(prompts), self.device)

    def noise(self, seed: int, content_seed: Optional[int] = None, motion_seed: Optional[int] = None,
              truncation: float = 1.0) -> dict[str, torch.Tensor]:
        """The noise of one clip, ``{"content": [1, ...], "motion": [1, ...]}`` on the CPU: each part
        drawn as seed ``seed`` draws it, unless ``content_seed`` / ``motion_seed`` name another seed
        for that part (the same seed for both parts gives exactly the noise of that seed).
        ``truncation`` in [0, 1] scales the noise toward 0 (typical, less varied clips; 1: as trained)."""
        truncation = float(truncation)
        if not 0.0 <= truncation <= 1.0:
            raise ValueError(f"truncation must be in [0, 1] (1: the noise as trained; smaller: nearer the "
                             f"average clip), got {truncation}")
        wanted = {"content": content_seed, "motion": motion_seed}
        drawn: dict[int, dict[str, torch.Tensor]] = {}
        out = {}
        for part in self.generator.noise_shapes():
            s = _int(wanted.get(part) if wanted.get(part) is not None else seed, f"{part} seed")
            if s not in drawn:
                drawn[s] = self.generator.seeded_noise([s])
            out[part] = drawn[s][part] if truncation == 1.0 else drawn[s][part] * truncation
        return out

    @torch.no_grad()
    def decode(self, embedding: torch.Tensor, noise: dict[str, torch.Tensor], frames: Optional[int] = None
               ) -> np.ndarray:
        """Clips for text embeddings ``[B, D]`` and noise (``{"content": [B, ...], "motion": [B, ...]}``)
        in one generator pass, as uint8 ``[B, T, H, W, 3]``. ``frames``: clip length (default: the
        model's); a generator that cannot make it (``t2v2018`` makes its trained length only) raises
        ValueError."""
        if frames is not None:
            frames = _int(frames, "frames")
            if frames < 1:
                raise ValueError(f"frames must be >= 1, got {frames}; leave it None for the model's {self.frames}")
        device = self.device
        try:
            video = self.generator(embedding.to(device), {k: v.to(device) for k, v in noise.items()}, frames=frames)
        except ValueError as err:
            if frames is None or frames == self.frames:
                raise
            raise ValueError(f"{err}; leave frames=None for the model's {self.frames} frames") from None
        return to_uint8(video)

    # ------------------------------------------------------------------ sampling
    def generate_clips(self, prompts: Sequence[str], seeds: Sequence[int], *, content_seed: Optional[int] = None,
                       motion_seed: Optional[int] = None, frames: Optional[int] = None, truncation: float = 1.0,
                       batch_size: int = 1) -> np.ndarray:
        """One clip per ``(prompts[k], seeds[k])`` pair: uint8 ``[N, T, H, W, 3]``. See :meth:`generate`.

        ``batch_size`` clips share a generator pass. At 1 (the default) every clip is bit-identical to
        the same prompt and seed generated alone; larger batches are faster on a GPU but may round
        differently (batched convolutions), so clips then agree only to within a level or so."""
        prompts = _prompt_list(prompts)
        seeds = [_int(s, "seed") for s in seeds]
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds; give one seed per prompt")
        batch_size = _int(batch_size, "batch_size")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = []
        for i in range(0, len(prompts), batch_size):
            noise = [self.noise(s, content_seed, motion_seed, truncation) for s in seeds[i:i + batch_size]]
            noise = {k: torch.cat([n[k] for n in noise]) for k in noise[0]}
            out.append(self.decode(self.embed(prompts[i:i + batch_size]), noise, frames))
        return np.concatenate(out)

    def generate(self, prompts: Union[str, Sequence[str]], num_samples: int = 1, seed: int = 0, *,
                 content_seed: Optional[int] = None, motion_seed: Optional[int] = None,
                 frames: Optional[int] = None, truncation: float = 1.0,
                 device: Optional[Union[str, torch.device]] = None, batch_size: int = 1) -> np.ndarray:
        """``num_samples`` clips per prompt: uint8 ``[len(prompts) * num_samples, T, H, W, 3]``.

        Clip ``k = i * num_samples + j`` (sample ``j`` of prompt ``i``) uses seed ``seed + k``
        (:func:`expand_prompts` lists them), and the same prompt and seed give the same clip.

        Args:
            content_seed: draw every clip's content noise (appearance: colours, shapes, scene) from
                this one seed, and the motion noise from the per-clip seeds: the same content with
                new motions. ``generate(p, seed=s)`` and ``generate(p, seed=t, content_seed=s)``
                share their content noise exactly.
            motion_seed: the reverse: every clip's motion noise from this seed, new content per clip
                (the motion networks also read the content, so the movements are alike, not identical).
            frames: clip length (default: the model's; ``layered`` and ``animator`` make any length,
                ``t2v2018`` only its trained one).
            truncation: scale the noise by this factor in [0, 1] (1: as trained).
            device: move the model to this device first (it stays there).
            batch_size: clips per generator pass (see :meth:`generate_clips`).
        """
        if device is not None:
            self.to(device)
        prompts, seeds = expand_prompts(prompts, num_samples, seed)
        return self.generate_clips(prompts, seeds, content_seed=content_seed, motion_seed=motion_seed,
                                   frames=frames, truncation=truncation, batch_size=batch_size)

    @staticmethod
    def _weights(steps: int) -> list[float]:
        steps = _int(steps, "steps")
        if steps < 2:
            raise ValueError(f"steps must be >= 2 (the two ends included), got {steps}")
        return [i / (steps - 1) for i in range(steps)]

    def interpolate(self, prompt_a: str, prompt_b: str, steps: int = 8, seed: int = 0, *,
                    frames: Optional[int] = None, truncation: float = 1.0) -> np.ndarray:
        """``steps`` clips walking from ``prompt_a`` to ``prompt_b`` with the noise of ``seed`` held:
        the text embedding moves linearly between the two prompts'. uint8 ``[steps, T, H, W, 3]``;
        the first clip is ``generate(prompt_a, seed=seed)``, the last ``generate(prompt_b, seed=seed)``."""
        ea, eb = self.embed([prompt_a]), self.embed([prompt_b])
        noise = self.noise(seed, truncation=truncation)
        return np.concatenate([self.decode(lerp(ea, eb, w), noise, frames)
                               for w in self._weights(steps)])

    def interpolate_seeds(self, prompt: str, seed_a: int, seed_b: int, steps: int = 8, *,
                          parts: Sequence[str] = NOISE_PARTS, method: str = "slerp",
                          frames: Optional[int] = None, truncation: float = 1.0) -> np.ndarray:
        """``steps`` clips of ``prompt`` whose noise walks from seed ``seed_a``'s to seed ``seed_b``'s
        (``method``: ``slerp``, along the sphere Gaussian noise lives near, or ``lerp``). ``parts``
        chooses which noise moves (``("content",)``: the appearance changes, the motion stays
        ``seed_a``'s). The ends are exactly ``generate(prompt, seed=seed_a)`` and, with every part
        moving, ``generate(prompt, seed=seed_b)``. uint8 ``[steps, T, H, W, 3]``."""
        if method not in ("slerp", "lerp"):
            raise ValueError(f"method must be 'slerp' or 'lerp', got {method!r}")
        known = tuple(self.generator.noise_shapes())
        parts = (parts,) if isinstance(parts, str) else tuple(parts)
        if not parts or set(parts) - set(known):
            raise ValueError(f"parts must name some of the noise parts {list(known)}, got {list(parts)}")
        na, nb = self.noise(seed_a, truncation=truncation), self.noise(seed_b, truncation=truncation)
        e = self.embed([prompt])
        mix = slerp if method == "slerp" else lerp
        return np.concatenate([self.decode(e, {k: mix(na[k], nb[k], w) if k in parts else na[k] for k in na}, frames)
                               for w in self._weights(steps)])


def load(path: PathLike, device: Union[str, torch.device] = "cpu", ema: bool = True) -> VideoModel:
    """A :class:`VideoModel` from a training checkpoint (``.ckpt``, read with the safe reader: only
    tensors and plain types) or an export (a ``gan-video-export`` folder, or its card or weights
    file: JSON and safetensors, nothing unpickled), on ``device``, in eval mode.

    ``ema``: sample the EMA generator (default; the one exports hold) or, for a checkpoint, the
    trained one (``ema=False``)."""
    from .export import export_folder, load_export

    if not os.path.exists(path):
        raise FileNotFoundError(f"{str(path)!r} does not exist; pass a checkpoint (runs/<name>/checkpoints/"
                                "last.ckpt, written by `gan-video fit`) or an export folder (written by "
                                "`gan-video-export --checkpoint CKPT --out DIR`)")
    folder = export_folder(path)
    if folder is not None:
        if not ema:
            raise ValueError(f"{str(path)!r} is an export, which holds the EMA generator only; load it with "
                             "ema=True, or load the training checkpoint for the trained (non-EMA) one")
        m = load_export(folder, device)
        return VideoModel(m.generator, m.text_encoder, m.tokenizer, m.hparams, str(folder), m.card)
    if os.path.isdir(path):
        raise ValueError(f"{str(path)!r} is a folder without a model card; pass a .ckpt file or an export "
                         "folder (model_card.json + model.safetensors from `gan-video-export`)")
    from .module import load_model

    gan = load_model(path, map_location=device)
    gen, text = (gan.G_ema, gan.text_g_ema) if ema else (gan.G, gan.text_g)
    return VideoModel(gen, text, gan.tokenizer, dict(gan.hparams), os.fspath(path))


# ------------------------------------------------------------------------------------------- writing
def slug(text: str, n: int = 40) -> str:
    """A file-name-safe form of a prompt (lower case, dashes, at most ``n`` characters)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:n] or "prompt"


def _clip_array(clips) -> np.ndarray:
    if isinstance(clips, torch.Tensor):
        raise ValueError("clips must be a uint8 numpy array [N, T, H, W, 3] (what VideoModel.generate "
                         "returns); convert float [-1, 1] tensors [N, 3, T, H, W] with gan_video.data.io.to_uint8")
    clips = np.asarray(clips)
    if clips.ndim == 4:
        clips = clips[None]
    if clips.ndim != 5 or clips.shape[-1] != 3 or clips.dtype != np.uint8 or clips.shape[0] == 0:
        raise ValueError(f"clips must be uint8 [N, T, H, W, 3] with N >= 1 (what VideoModel.generate "
                         f"returns), got {clips.dtype} {list(clips.shape)}")
    return clips


def frame_strip(clip: np.ndarray, count: int = 8) -> np.ndarray:
    """``count`` evenly spaced frames of a uint8 clip ``[T, H, W, 3]`` side by side (first and last
    included; ``count=1``: the first frame)."""
    t = clip.shape[0]
    idx = sorted({round(i * (t - 1) / max(count - 1, 1)) for i in range(min(count, t))})
    return np.concatenate([clip[i] for i in idx], axis=1)


def save(clips: np.ndarray, out_dir: PathLike, prompts: Optional[Sequence[str]] = None,
         seeds: Optional[Sequence[int]] = None, formats: Sequence[str] = ("mp4", "gif"), fps: int = 8, *,
         names: Optional[Sequence[str]] = None, png_frames: int = 8,
         manifest: Optional[str] = "manifest.jsonl") -> list[dict]:
    """Write every clip of ``clips`` (uint8 ``[N, T, H, W, 3]``) to ``out_dir`` in ``formats`` and a
    ``manifest.jsonl`` (replaced) with one JSON row per clip; returns the rows.

    Args:
        prompts, seeds: one per clip (:func:`expand_prompts` gives them for ``generate``'s
            arguments); recorded in the manifest (null when not given) and in the default names.
        formats: any of ``mp4`` (H.264, yuv420p: plays in browsers; needs even sizes), ``gif``
            (looping) and ``png`` (a strip of ``png_frames`` evenly spaced frames; 1: the first frame).
        fps: frames per second of the mp4 and GIF.
        names: file names without extension, one per clip; default ``{k:03d}_{prompt}_s{seed}``.
        manifest: the manifest's file name, or None for none.

    A row is ``{"file", "prompt", "seed", "frames", "height", "width", "frames_sha1"}`` plus one key
    per other format (``"gif"``, ``"png"``): ``file`` is the first format's file; ``frames_sha1``
    hashes the uint8 frames (the lossy mp4's bytes are not reproducible, the frames are)."""
    clips = _clip_array(clips)
    n = clips.shape[0]
    formats = list(dict.fromkeys([formats] if isinstance(formats, str) else formats))
    if not formats or set(formats) - set(FORMATS):
        raise ValueError(f"formats must be some of {list(FORMATS)}, got {formats}")
    if _int(fps, "fps") < 1 or _int(png_frames, "png_frames") < 1:
        raise ValueError(f"fps and png_frames must be >= 1, got fps={fps}, png_frames={png_frames}")
    for what, values in (("prompts", prompts), ("seeds", seeds), ("names", names)):
        if values is not None and len(values) != n:
            raise ValueError(f"{len(values)} {what} for {n} clips; give one per clip (expand_prompts() "
                             "lists them for generate's arguments)")
    prompts = list(prompts) if prompts is not None else [None] * n
    seeds = [None if s is None else _int(s, "seed") for s in seeds] if seeds is not None else [None] * n
    if names is None:
        names = [f"{k:03d}_{slug(p or 'clip')}" + ("" if s is None else f"_s{s}")
                 for k, (p, s) in enumerate(zip(prompts, seeds))]
    if len(set(names)) != n or any(not nm or os.sep in nm or nm.startswith(".") for nm in names):
        raise ValueError("names must be distinct plain file names (no folders, not hidden), one per clip")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for clip, prompt, seed, name in zip(clips, prompts, seeds, names):
        files = {}
        for fmt in formats:
            files[fmt] = f"{name}.{fmt}"
            if fmt == "mp4":
                write_mp4(out / files[fmt], clip, fps=fps)
            elif fmt == "gif":
                write_gif(out / files[fmt], clip, fps=fps)
            else:
                from PIL import Image

                Image.fromarray(frame_strip(clip, png_frames)).save(out / files[fmt])
        row = {"file": files[formats[0]], "prompt": prompt, "seed": seed, "frames": int(clip.shape[0]),
               "height": int(clip.shape[1]), "width": int(clip.shape[2]),
               "frames_sha1": hashlib.sha1(np.ascontiguousarray(clip).tobytes()).hexdigest()}
        row.update({fmt: files[fmt] for fmt in formats[1:]})
        rows.append(row)
    if manifest:
        with open(out / manifest, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    return rows


def tile(clips: np.ndarray, rows: int, cols: int, pad: int = 2, fill: int = 255) -> np.ndarray:
    """Clips ``[rows * cols, T, H, W, 3]`` (row-major: clip ``r * cols + c`` at row ``r``, column
    ``c``) as one tiled clip ``[T, rows*H + (rows+1)*pad, cols*W + (cols+1)*pad, 3]`` with ``pad``
    pixel borders of value ``fill``."""
    clips = _clip_array(clips)
    rows, cols, pad = _int(rows, "rows"), _int(cols, "cols"), _int(pad, "pad")
    if rows < 1 or cols < 1 or rows * cols != clips.shape[0]:
        raise ValueError(f"a {rows} x {cols} grid needs {rows * cols} clips, got {clips.shape[0]}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    n, t, h, w, _ = clips.shape
    sheet = np.full((t, rows * h + (rows + 1) * pad, cols * w + (cols + 1) * pad, 3), fill, dtype=np.uint8)
    for k in range(n):
        r, c = divmod(k, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        sheet[:, y:y + h, x:x + w] = clips[k]
    return sheet


def save_grid(clips: np.ndarray, out_dir: PathLike, rows: int, cols: int, fps: int = 8, name: str = "grid",
              pad: int = 2) -> dict:
    """A contact sheet of ``clips`` (``rows x cols``, row-major, e.g. prompts x seeds): the tiled
    video as ``NAME.mp4`` and its middle frame as ``NAME.png`` in ``out_dir``; returns the file names
    ``{"mp4", "png"}``. ``pad`` must be even when the clips' sizes are (H.264 needs even sizes)."""
    from PIL import Image

    sheet = tile(clips, rows, cols, pad)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"mp4": f"{name}.mp4", "png": f"{name}.png"}
    write_mp4(out / files["mp4"], sheet, fps=fps)
    Image.fromarray(sheet[sheet.shape[0] // 2]).save(out / files["png"])
    return files


__all__ = ["VideoModel", "load", "save", "save_grid", "tile", "frame_strip", "expand_prompts", "slerp", "slug"]
