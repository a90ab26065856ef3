"""``arch: layered``: MoCoGAN's content/motion split made cheap, for scenes of one moving object.

The content code (text + noise) is decoded once per clip by a 2D conditional-norm generator into a
foreground layer (RGB and alpha) and a background layer. The motion code (content + motion noise)
gives a continuous trajectory of affine transforms ``theta(t)`` (a pose, a velocity and a small
Fourier residual, as in StyleGAN-V's continuous time), so any frame time ``t`` in [0, 1] is a warp
of the foreground composited on the background. Every frame costs one ``grid_sample``, not a
network pass, which is what lets 32x64x64 clips train on a CPU.

The sprite can also be drawn without the conv trunk: a flat colour (``foreground_resolution: 1``)
inside an outline from a few Fourier terms of the content code (``outline_harmonics``,
:mod:`.outline`), which is how the built-in shapes are drawn.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import UpBlock2d, affine_grid, channels_for, grow_steps, mlp
from .generator_base import GeneratorConfig, VideoGenerator, fourier_features
from .outline import FourierOutline


class LayeredMotionGenerator(VideoGenerator):
    def __init__(self, cfg: GeneratorConfig, text_dim: int, resolution: int, frames: int):
        super().__init__(cfg, text_dim, resolution, frames)
        n_grow = grow_steps(cfg.grow_from, resolution, "generator.grow_from")
        widths = channels_for(resolution >> n_grow, cfg.base_channels, cfg.max_channels)
        self.mapping = mlp([text_dim + cfg.z_content, cfg.style_dim, cfg.style_dim], act_last=True)
        # what the trunk draws, in this channel order: the sprite's RGB (3) unless foreground_resolution
        # predicts it from the content code, its alpha (1) unless outline_harmonics draws it, the
        # background (3) unless background_resolution predicts it
        k, f = cfg.background_resolution, cfg.foreground_resolution
        if cfg.outline_harmonics < 0:
            raise ValueError(f"generator.outline_harmonics {cfg.outline_harmonics} must be >= 0 (0: off)")
        self.parts = {name: n for name, n, drawn in (("rgb", 3, not f), ("alpha", 1, not cfg.outline_harmonics),
                                                     ("background", 3, not k)) if drawn}
        # the conv trunk is built only when it draws a layer
        self.const = nn.Parameter(torch.randn(1, widths[0], 4, 4)) if self.parts else None
        self.blocks = nn.ModuleList(UpBlock2d(a, b, cfg.style_dim, cfg.block_convs)
                                    for a, b in zip(widths[:-1], widths[1:])) if self.parts else nn.ModuleList()
        n_out = sum(self.parts.values())
        self.to_layers = nn.Conv2d(widths[-1], n_out, 3, padding=1) if n_out else None
        self.to_background = nn.Linear(cfg.style_dim, 3 * k * k) if k else None
        self.to_foreground = nn.Linear(cfg.style_dim, 3 * f * f) if f else None
        # growing (grow_from): one up-block per doubling above the trunk's size, each adding its
        # detail through a zero-initialised conv to the upsampled layers of the size below. When the
        # trunk draws nothing (flat colours, a Fourier outline) there is nothing to add to: the
        # outline is drawn at the clip's size
        w = widths[-1]
        n_grow = n_grow if n_out else 0
        self.grow_blocks = nn.ModuleList(UpBlock2d(w, w, cfg.style_dim, cfg.block_convs) for _ in range(n_grow))
        self.grow_layers = nn.ModuleList(nn.Conv2d(w, n_out, 3, padding=1) for _ in range(n_grow))
        for conv in self.grow_layers:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        hidden = cfg.style_dim // 2
        self.motion = mlp([cfg.style_dim + cfg.z_motion, hidden, hidden], act_last=True)
        self.pose = nn.Linear(hidden, 6)       # affine offset at mid-clip
        self.velocity = nn.Linear(hidden, 6)   # affine change per clip length
        self.residual = mlp([hidden + 2 * cfg.fourier, hidden, 6])
        # Start near the identity for the linear part of the warp but with translations of the
        # size real motion has (a fraction of the frame), so that from step 0 different noise puts
        # the foreground in different places and moves it: D then only has to steer the motion.
        translation = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, 1.0])
        for lin, scale in ((self.pose, cfg.motion_init), (self.velocity, cfg.motion_init), (self.residual[-1], 0.0)):
            std = (0.01 + scale * translation / math.sqrt(hidden))[:, None]
            with torch.no_grad():
                lin.weight.copy_(torch.randn_like(lin.weight) * std)
            nn.init.zeros_(lin.bias)
        self.outline = (FourierOutline(cfg.style_dim, cfg.outline_harmonics)
                        if cfg.outline_harmonics else None)

    def layers(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Foreground ``[B, 4, H, W]`` (alpha-premultiplied RGB, alpha) and background ``[B, 3, H, W]``."""
        size = (self.resolution, self.resolution)
        drawn = {} if self.outline is None else {"alpha": self.outline(style, size)}
        x = self.const.expand(style.shape[0], -1, -1, -1) if self.const is not None else None
        for block in self.blocks:
            x = block(x, style)
        if self.to_layers is not None:
            out = self.to_layers(x)
            for block, to_layers in zip(self.grow_blocks, self.grow_layers):
                x = block(x, style)
                out = F.interpolate(out, scale_factor=2, mode="bilinear", align_corners=False) + to_layers(x)
            drawn.update(zip(self.parts, out.split(list(self.parts.values()), dim=1)))
        rgb = drawn["rgb"] if "rgb" in drawn else self.grid(self.to_foreground(style), size)
        if self.cfg.layer_alpha == "clamp":
            # exact 0 (empty sprite) and 1 (solid object) are reachable, and a window that falls to
            # 0 at the layer's edge keeps the sprite's border from ever showing when it moves
            alpha = (drawn["alpha"] * 0.5 + 0.5).clamp(0, 1) * self.edge_window(*size, rgb)
        else:
            alpha = torch.sigmoid(drawn["alpha"])
        bg = drawn["background"] if "background" in drawn else self.grid(self.to_background(style), size)
        return torch.cat([torch.tanh(rgb) * alpha, alpha], dim=1), torch.tanh(bg)

    @staticmethod
    def grid(flat: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``[B, 3*k*k]`` -> ``[B, 3, *size]``: a k x k RGB grid upsampled bilinearly, or one colour
        per clip broadcast when k is 1."""
        k = math.isqrt(flat.shape[1] // 3)
        g = flat.view(-1, 3, k, k)
        return F.interpolate(g, size=size, mode="bilinear", align_corners=False) if k > 1 \
            else g.expand(-1, -1, *size)

    @staticmethod
    def edge_window(h: int, w: int, like: torch.Tensor, ramp: float = 3.0) -> torch.Tensor:
        """``[1, 1, h, w]``: 0 on the outermost pixels, rising linearly to 1 over ``ramp`` pixels."""
        def axis(n: int) -> torch.Tensor:
            i = torch.arange(n, device=like.device, dtype=like.dtype)
            return (torch.minimum(i, n - 1 - i) / ramp).clamp(max=1)
        return (axis(h)[:, None] * axis(w)[None, :])[None, None]

    def trajectory(self, style: torch.Tensor, z_motion: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """Affine matrices ``[B, T, 2, 3]`` for frame times ``times`` ``[T]`` in [0, 1]."""
        h = self.motion(torch.cat([style, z_motion], dim=1))
        b, t = h.shape[0], times.shape[0]
        tc = (times - 0.5).to(h)
        theta = self.pose(h)[:, None] + tc[None, :, None] * self.velocity(h)[:, None]
        feats = torch.cat([h[:, None].expand(b, t, -1),
                           fourier_features(tc, self.cfg.fourier)[None].expand(b, t, -1)], dim=2)
        theta = theta + 0.1 * self.residual(feats)
        eye = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0], device=h.device, dtype=h.dtype)
        return (theta + eye).view(b, t, 2, 3)

    def forward(self, text: torch.Tensor, noise: dict[str, torch.Tensor], frames: Optional[int] = None,
                times: Optional[torch.Tensor] = None) -> torch.Tensor:
        if times is None:
            times = self.frame_times(frames, text.device)
        style = self.mapping(torch.cat([text, noise["content"]], dim=1))
        fg, bg = self.layers(style)
        theta = self.trajectory(style, noise["motion"], times)
        b, t = theta.shape[:2]
        h, w = fg.shape[-2:]
        # one sampling grid per frame, stacked along the height axis: the foreground is sampled T
        # times without being copied T times, and the result is already laid out as [B, C, T, H, W]
        grid = affine_grid(theta.reshape(b * t, 2, 3), h, w).view(b, t * h, w, 2)
        if self.cfg.background_resolution == 1:
            # one background colour c per clip: rgb + (1 - alpha) c = warp(rgb - alpha c) + c, since
            # the warp is linear and zero outside the sprite. Three channels to warp instead of
            # four, and one in-place add instead of a multiply-add (the same clip to rounding).
            colour = bg[:, :, :1, :1]                                               # [B, 3, 1, 1]
            moved = F.grid_sample(torch.addcmul(fg[:, :3], fg[:, 3:], colour, value=-1), grid,
                                  mode="bilinear", padding_mode="zeros", align_corners=False)
            return moved.view(b, 3, t, h, w).add_(colour[:, :, None])
        moved = F.grid_sample(fg, grid, mode="bilinear", padding_mode="zeros",
                              align_corners=False).view(b, 4, t, h, w)
        rgb, alpha = moved.split([3, 1], dim=1)
        return torch.addcmul(rgb, 1 - alpha, bg[:, :, None])
