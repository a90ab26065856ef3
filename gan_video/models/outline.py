"""A sprite outline drawn from a handful of numbers: a star-shaped region whose radius is a Fourier
series of the angle (``generator.outline_harmonics``, ``arch: layered``).

The content code gives, per clip, a centre ``c``, a size ``s`` and ``K`` harmonics ``(a_k, b_k)``;
the outline is the curve ``rho(phi) = s * exp(sum_k a_k cos(k phi) + b_k sin(k phi))`` around ``c``
(Fourier shape descriptors of a closed contour, with the log radius so that it stays positive).
With every harmonic at 0 it is a circle, exactly round at any size; a square needs the 4th, 8th,
... harmonics and a triangle the 3rd, 6th, ...: the more harmonics, the sharper the corners. The
field handed to the layer is twice the signed radial distance to the curve in pixels (positive inside),
so the alpha's edge is about one pixel wide at every resolution, and the same weights draw the
same outline at 64, 128 or 256 px.

It can only draw one star-shaped object (every ray from the centre crosses the outline once): the
single objects of the built-in shapes, not people or scenes (``arch: animator`` is for those).
"""
from __future__ import annotations

import math

import torch
from torch import nn


class FourierOutline(nn.Module):
    """``style [B, S] -> field [B, 1, H, W]``: twice the signed radial distance to the outline in pixels."""

    def __init__(self, style_dim: int, harmonics: int, size: float = 0.25):
        super().__init__()
        if harmonics < 1:
            raise ValueError(f"generator.outline_harmonics {harmonics} must be >= 1 (0: no Fourier outline)")
        self.harmonics = harmonics
        # centre (2), log size (1), then a_1..a_K and b_1..b_K
        self.head = nn.Linear(style_dim, 3 + 2 * harmonics)
        with torch.no_grad():
            # start as circles of radius `size` (in half-frames) near the centre, differing a little
            self.head.weight.normal_(0.0, 0.01)
            self.head.weight[3:].mul_(0.1)     # harmonic k of about 0.02 / k: round to a pixel at first
            self.head.bias.zero_()
            self.head.bias[2] = math.log(size)

    def coefficients(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Centre ``[B, 2]`` (half-frames), log size ``[B]``, cosine and sine terms ``[B, K]`` each."""
        p = self.head(style)
        k = self.harmonics
        # harmonic k is the head's output over k: the higher ones start smaller and, under Adam, move
        # k times slower (a smoothness prior). Without it, one seed of the shapes run grew spikes and
        # ragged edges from D's noisy pull; over k^2 was no better (docs/results.md)
        order = torch.arange(1, k + 1, device=p.device, dtype=p.dtype)
        return p[:, :2], p[:, 2], p[:, 3:3 + k] / order, p[:, 3 + k:] / order

    def forward(self, style: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        h, w = size
        centre, log_size, a, b = self.coefficients(style)
        # pixel centres in [-1, 1] (align_corners=False), relative to each clip's centre
        ys = (torch.arange(h, device=style.device, dtype=style.dtype) * 2 + 1) / h - 1
        xs = (torch.arange(w, device=style.device, dtype=style.dtype) * 2 + 1) / w - 1
        dx = xs[None, None, :] - centre[:, 0, None, None]          # [B, 1, W]
        dy = ys[None, :, None] - centre[:, 1, None, None]          # [B, H, 1]
        rho = torch.sqrt(dx * dx + dy * dy + 1e-8)                 # [B, H, W]
        cos1, sin1 = dx / rho, dy / rho
        # cos(k phi), sin(k phi) by the angle-addition recurrence (no atan2: smooth everywhere)
        log_r = log_size[:, None, None].expand_as(rho)
        ck, sk = cos1, sin1
        for i in range(self.harmonics):
            log_r = log_r + a[:, i, None, None] * ck + b[:, i, None, None] * sk
            ck, sk = ck * cos1 - sk * sin1, sk * cos1 + ck * sin1
        # twice the signed distance along the ray in pixels: the clamped alpha (field / 2 + 1/2) then
        # rises from 0 to 1 over the pixel that the outline crosses (pixel coverage, anti-aliased)
        return ((torch.exp(log_r) - rho) * max(h, w))[:, None]
