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

import os
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from .data.io import to_uint8
from .models.generator import VideoGenerator
from .models.text import Tokenizer, check_prompts, embed_captions
from .output import int_arg, frame_strip, save, save_grid, slug, tile

PathLike = Union[str, os.PathLike]
NOISE_PARTS = ("content", "motion")


def _prompt_list(prompts: Union[str, Sequence[str]]) -> list[str]:
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    if not prompts:
        raise ValueError("no prompt given; pass a list of captions such as ['a red circle moving left']")
    check_prompts(prompts)
    return prompts


def expand_prompts(prompts: Union[str, Sequence[str]], num_samples: int = 1, seed: int = 0
                   ) -> tuple[list[str], list[int]]:
    """The clips ``generate(prompts, num_samples, seed)`` makes, as per-clip lists ``(prompts,
    seeds)``: clip ``k = i * num_samples + j`` is sample ``j`` of prompt ``i`` and uses seed
    ``seed + k`` (what :func:`save` wants, one entry per clip)."""
    prompts = _prompt_list(prompts)
    num_samples, seed = int_arg(num_samples, "num_samples"), int_arg(seed, "seed")
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
            group = wanted.get(self.generator.noise_group(part))
            s = int_arg(group if group is not None else seed, f"{part} seed")
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
            frames = int_arg(frames, "frames")
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
        seeds = [int_arg(s, "seed") for s in seeds]
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds; give one seed per prompt")
        batch_size = int_arg(batch_size, "batch_size")
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
            frames: clip length at the training frame rate (default: the model's). Fewer frames are
                the first frames of a full clip; more continue it past its trained length at the same
                speed (``layered``, ``animator``; ``t2v2018`` makes only its trained length).
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
        steps = int_arg(steps, "steps")
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
        moving = {k for k in na if k in parts or self.generator.noise_group(k) in parts}
        return np.concatenate([self.decode(e, {k: mix(na[k], nb[k], w) if k in moving else na[k] for k in na}, frames)
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
    from .sampling import load_sampler

    s = load_sampler(path, map_location=device, ema=ema)      # G and its text encoder only
    return VideoModel(s.generator, s.text_encoder, s.tokenizer, dict(s.hparams), os.fspath(path))


__all__ = ["VideoModel", "load", "save", "save_grid", "tile", "frame_strip", "expand_prompts", "slerp", "slug"]
