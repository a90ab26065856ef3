"""``arch: animator``: a general generator for real video, non-rigid motion at any frame time.

A flow-based animator with StyleGAN-V's continuous-time motion codes:

1. **Content, once per clip.** The mapping network turns (text, content noise) into a style; a 2D
   conditional-norm trunk (every norm sees the style *and* the sentence embedding) draws content
   features at half the frame size: the scene, its textures, the actor.
2. **Motion codes at any time t.** ``motion_anchors`` noise vectors spread evenly over [0, 1] are
   interpolated at ``t`` and, with Fourier features of ``t`` and the style, mapped to a motion code
   ``m(t)``: a smooth trajectory in a latent space (StyleGAN-V, MoCoGAN-HD) that any ``t`` can sample.
3. **Dense flow.** From the content features (pooled to a quarter of the frame size, or to half or
   an eighth with ``flow_pool``) and ``m(t)``, a conditional conv net (``flow_layers`` convs, each
   with a norm that reads ``m(t)``) draws a flow field; the content features are warped by it, so arms,
   legs and bodies move non-rigidly while the background stays where it is.
4. **Refinement.** A last up-block (conditioned on style, text and ``m(t)``) turns the warped
   features into the full-resolution frame, filling what the warp uncovered.

Each frame costs the flow net at a quarter of the size and one block at full size; the trunk runs
once per clip. Trained on a few frames at random times per clip (``discriminator.sparse_frames``),
the cost per step does not grow with the clip length.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConditionalNorm, UpBlock2d, affine_grid, channels_for, mlp
from .generator_base import GeneratorConfig, VideoGenerator, fourier_features


class AnimatorGenerator(VideoGenerator):
    def __init__(self, cfg: GeneratorConfig, text_dim: int, resolution: int, frames: int):
        super().__init__(cfg, text_dim, resolution, frames)
        if cfg.motion_anchors < 2:
            raise ValueError(f"generator.motion_anchors must be >= 2, got {cfg.motion_anchors}")
        if cfg.flow_layers < 1:
            raise ValueError(f"generator.flow_layers must be >= 1, got {cfg.flow_layers}")
        if cfg.flow_pool not in (1, 2, 4):
            raise ValueError(f"generator.flow_pool must be 1, 2 or 4 (the flow at half, a quarter or an "
                             f"eighth of the frame size), got {cfg.flow_pool}")
        widths = channels_for(resolution, cfg.base_channels, cfg.max_channels)
        cond = cfg.style_dim + text_dim
        self.mapping = mlp([text_dim + cfg.z_content, cfg.style_dim, cfg.style_dim], act_last=True)
        self.const = nn.Parameter(torch.randn(1, widths[0], 4, 4))
        self.trunk = nn.ModuleList(UpBlock2d(a, b, cond, cfg.block_convs) for a, b in zip(widths[:-2], widths[1:-1]))
        feat = widths[-2]                               # content features at half the frame size
        hidden = cfg.style_dim // 2
        self.motion = mlp([cfg.style_dim + cfg.z_motion + 2 * cfg.fourier, hidden, hidden], act_last=True)
        flow_ch = max(16, feat)
        self.flow_in = nn.Conv2d(feat, flow_ch, 3, padding=1)
        self.flow_norm = ConditionalNorm(flow_ch, hidden)
        self.flow_out = nn.Conv2d(flow_ch, 2, 3, padding=1)
        # small flows that already differ between frames at the start (the conditional norms start
        # as identities, which would make every frame the same until the motion path learns)
        nn.init.normal_(self.flow_norm.affine.weight, std=0.05)
        nn.init.normal_(self.flow_out.weight, std=0.01)
        nn.init.zeros_(self.flow_out.bias)
        self.refine = UpBlock2d(feat, widths[-1], cond + hidden, cfg.block_convs)
        self.to_rgb = nn.Conv2d(widths[-1], 3, 3, padding=1)
        # deeper flow nets (flow_layers > 1): more 3x3 convs, each with its own m(t)-conditioned
        # norm, between the first and flow_out (built last: the default's weights stay as they were)
        self.flow_more = nn.ModuleList(nn.Conv2d(flow_ch, flow_ch, 3, padding=1) for _ in range(cfg.flow_layers - 1))
        self.flow_more_norms = nn.ModuleList(ConditionalNorm(flow_ch, hidden) for _ in range(cfg.flow_layers - 1))
        for norm in self.flow_more_norms:
            nn.init.normal_(norm.affine.weight, std=0.05)

    def noise_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"content": (self.cfg.z_content,), "motion": (self.cfg.motion_anchors, self.cfg.z_motion)}

    def motion_codes(self, style: torch.Tensor, anchors: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """``m(t)`` ``[B, T, hidden]`` for frame times ``times`` ``[T]`` (clamped to [0, 1] for the
        anchors; the Fourier features go on past it)."""
        b, a = anchors.shape[:2]
        pos = times.clamp(0, 1).to(anchors) * (a - 1)
        lo = pos.floor().long().clamp(max=a - 2)
        w = (pos - lo.to(pos))[None, :, None]
        z = anchors[:, lo] * (1 - w) + anchors[:, lo + 1] * w                   # [B, T, z_motion]
        t = times.shape[0]
        four = fourier_features(times.to(anchors) - 0.5, self.cfg.fourier)[None].expand(b, t, -1)
        return self.motion(torch.cat([style[:, None].expand(b, t, -1), z, four], dim=2))

    def forward(self, text: torch.Tensor, noise: dict[str, torch.Tensor], frames: Optional[int] = None,
                times: Optional[torch.Tensor] = None) -> torch.Tensor:
        if times is None:
            times = self.frame_times(frames, text.device)
        style = self.mapping(torch.cat([text, noise["content"]], dim=1))
        cond = torch.cat([style, text], dim=1)
        x = self.const.expand(style.shape[0], -1, -1, -1)
        for block in self.trunk:
            x = block(x, cond)                                                   # [B, C, H/2, W/2] at the end
        m = self.motion_codes(style, noise["motion"], times)                     # [B, T, hidden]
        b, t = m.shape[:2]
        h, w = x.shape[-2:]
        m = m.reshape(b * t, -1)
        # flow at a quarter of the frame size (flow_pool 2), from the content and the motion code of each frame
        pooled = F.avg_pool2d(x, self.cfg.flow_pool) if self.cfg.flow_pool > 1 else x
        low = F.leaky_relu(self.flow_in(pooled), 0.2)
        low = low.repeat_interleave(t, dim=0)
        low = F.leaky_relu(self.flow_norm(low, m), 0.2)
        for conv, norm in zip(self.flow_more, self.flow_more_norms):
            low = F.leaky_relu(norm(conv(low), m), 0.2)
        flow = torch.tanh(self.flow_out(low)) * (2 * self.cfg.flow_scale)
        flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
        base = affine_grid(torch.eye(2, 3, device=x.device, dtype=x.dtype)[None], h, w)   # [1, H, W, 2]
        grid = base + flow.permute(0, 2, 3, 1)
        warped = F.grid_sample(x.repeat_interleave(t, dim=0), grid, mode="bilinear", padding_mode="border",
                               align_corners=False)
        out = self.refine(warped, torch.cat([cond.repeat_interleave(t, dim=0), m], dim=1))
        rgb = torch.tanh(self.to_rgb(out))                                       # [B*T, 3, H, W]
        return rgb.view(b, t, 3, *rgb.shape[-2:]).transpose(1, 2)
