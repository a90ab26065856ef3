"""Differentiable augmentation of the clips a discriminator sees (DiffAugment, Zhao et al. 2020).

With few training videos (Weizmann: 72) the discriminator memorises the real clips and its
verdicts stop telling the generator anything about realism. DiffAugment applies the *same kind* of
random transform to real and generated clips, every time D sees either, in the D step and in the G
step. The transforms are differentiable, so G's gradients pass through them, and D never sees an
un-augmented clip, so G is not pushed to draw the augmentations themselves.

For video every transform is drawn once per clip and applied identically to all its frames: a
shift moves the whole clip, a cutout hides the same square in each frame, so the motion between
frames (what the motion/video head reads) is the real clip's motion.

Policies (comma-separated, as in ``discriminator.augment: translation,cutout``):

* ``translation``: shift by up to 1/8 of the frame size in x and y (whole pixels), filling with 0
  (mid-grey in [-1, 1]);
* ``cutout``: zero a square of half the frame size at a random place (it may reach over the edge);
* ``color``: brightness (+U(-0.5, 0.5)), saturation (x U(0, 2) around each pixel's grey) and
  contrast (x U(0.5, 1.5) around the clip's mean). It changes colours: not for data whose captions
  name colours.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def _per_clip(video: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Uniform draws in ``[low, high)``, one per clip, shaped to broadcast over ``[B, C, T, H, W]``."""
    return torch.empty(video.shape[0], 1, 1, 1, 1, device=video.device, dtype=video.dtype).uniform_(low, high)


def color(video: torch.Tensor) -> torch.Tensor:
    video = video + _per_clip(video, -0.5, 0.5)
    grey = video.mean(1, keepdim=True)
    video = (video - grey) * _per_clip(video, 0.0, 2.0) + grey
    mean = video.mean((1, 2, 3, 4), keepdim=True)
    return (video - mean) * _per_clip(video, 0.5, 1.5) + mean


def translation(video: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    b, _, _, h, w = video.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (b,)).tolist()
    dx = torch.randint(-sx, sx + 1, (b,)).tolist()
    padded = F.pad(video, (sx, sx, sy, sy))
    return torch.stack([padded[i, :, :, sy - y: sy - y + h, sx - x: sx - x + w]
                        for i, (y, x) in enumerate(zip(dy, dx))])


def cutout(video: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    b, _, _, h, w = video.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=video.device)
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=video.device)
    ys = torch.arange(h, device=video.device).view(1, h, 1)
    xs = torch.arange(w, device=video.device).view(1, 1, w)
    hidden = ((ys - cy + ch // 2) >= 0) & ((ys - cy + ch // 2) < ch) & \
             ((xs - cx + cw // 2) >= 0) & ((xs - cx + cw // 2) < cw)          # [B, H, W]
    return video * (~hidden).to(video.dtype)[:, None, None]


POLICIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "color": color, "translation": translation, "cutout": cutout}


def parse_policy(policy: str) -> tuple[str, ...]:
    """``"translation,cutout"`` -> ``("translation", "cutout")``, in the fixed order color,
    translation, cutout (DiffAugment's); unknown names raise naming the known ones."""
    names = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown discriminator.augment {unknown}; choose from {', '.join(POLICIES)} "
                         "(comma-separated), or leave it empty")
    return tuple(p for p in POLICIES if p in names)


def augment(video: torch.Tensor, policy: tuple[str, ...]) -> torch.Tensor:
    """Clips ``[B, C, T, H, W]`` with each transform of ``policy`` drawn per clip."""
    for name in policy:
        video = POLICIES[name](video)
    return video
