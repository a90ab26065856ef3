"""``arch: t2v2018``: Li et al., "Video Generation From Text" (AAAI 2018).

A conditional VAE turns the text (and, in training, the first frame) into a gist image; Text2Filter
generates convolution filters from the text and applies them to the gist's features; a
3D-convolution decoder turns gist features, filtered features and noise into the clip.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import UpBlock2d, UpBlock3d, channels_for, mlp, up3d
from .generator_base import GeneratorConfig, VideoGenerator


class T2VGenerator(VideoGenerator):
    """The AAAI 2018 text-to-video generator: gist CVAE + Text2Filter + 3D-conv video decoder."""

    text2filter_channels = 32
    gist_feature_channels = 64

    def __init__(self, cfg: GeneratorConfig, text_dim: int, resolution: int, frames: int):
        super().__init__(cfg, text_dim, resolution, frames)
        widths = channels_for(resolution, cfg.base_channels, cfg.max_channels)
        rev = widths[::-1]
        # gist CVAE: encoder q(z | first frame, text) and decoder p(gist | z, text)
        self.gist_enc = nn.Sequential(nn.Conv2d(3, rev[0], 4, 2, 1), nn.LeakyReLU(0.2),
                                      *[m for a, b in zip(rev[:-2], rev[1:-1])
                                        for m in (nn.Conv2d(a, b, 4, 2, 1), nn.LeakyReLU(0.2))])
        self.gist_post = nn.Linear(rev[-2] * 16 + text_dim, 2 * cfg.z_content)
        self.gist_style = mlp([cfg.z_content + text_dim, cfg.style_dim, cfg.style_dim], act_last=True)
        self.gist_const = nn.Parameter(torch.randn(1, widths[0], 4, 4))
        self.gist_blocks = nn.ModuleList(UpBlock2d(a, b, cfg.style_dim) for a, b in zip(widths[:-1], widths[1:]))
        self.gist_rgb = nn.Conv2d(widths[-1], 3, 3, padding=1)
        # Text2Filter: features of the gist, convolved with filters generated from the text
        gc, fc = self.gist_feature_channels, self.text2filter_channels
        self.gist_feat = nn.Sequential(nn.Conv2d(3, rev[0], 4, 2, 1), nn.LeakyReLU(0.2),
                                       *[m for a, b in zip(rev[:-2], rev[1:-1])
                                         for m in (nn.Conv2d(a, b, 4, 2, 1), nn.LeakyReLU(0.2))],
                                       nn.Conv2d(rev[-2], gc, 1))
        self.filters = nn.Linear(text_dim, fc * gc * 9)
        nn.init.normal_(self.filters.weight, std=1.0 / math.sqrt(text_dim * gc * 9))
        self.noise_proj = nn.Linear(cfg.z_motion, 64 * 2 * 16)   # one 4x4 map per input time step
        # 3D decoder from [gist features, filtered features, noise] at 2 x 4 x 4: transposed 3D convs
        # (each text-conditioned), the last one straight to RGB at full size
        n_s, n_t = len(widths) - 1, int(math.log2(frames // 2))
        up_t = [i >= n_s - n_t for i in range(n_s)]
        self.video_in = nn.Conv3d(gc + fc + 64, widths[0], 3, padding=1)
        self.video_blocks = nn.ModuleList(
            UpBlock3d(a, b, text_dim, up_t=u) for a, b, u in zip(widths[:-2], widths[1:-1], up_t))
        self.video_rgb = up3d(widths[-2], 3, up_t[-1])

    def check_frames(self, frames: int) -> None:
        n_s = int(math.log2(self.resolution // 4))
        ok = frames >= 2 and frames & (frames - 1) == 0 and math.log2(frames // 2) <= n_s
        if not ok:
            raise ValueError(f"generator 't2v2018' cannot make {frames} frames at {self.resolution}px: "
                             f"it needs a power of two between 2 and {2 ** (n_s + 1)} (e.g. 16 or 32); "
                             "set data.frames accordingly or use generator.arch: layered")

    def decode_gist(self, z: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        style = self.gist_style(torch.cat([z, text], dim=1))
        x = self.gist_const.expand(z.shape[0], -1, -1, -1)
        for block in self.gist_blocks:
            x = block(x, style)
        return torch.tanh(self.gist_rgb(x))

    def forward(self, text: torch.Tensor, noise: dict[str, torch.Tensor], frames: Optional[int] = None,
                times: Optional[torch.Tensor] = None) -> torch.Tensor:
        if times is not None or (frames is not None and frames != self.frames):
            raise ValueError("generator 't2v2018' makes exactly its configured number of frames "
                             f"({self.frames}); it cannot sample other frame times")
        b = text.shape[0]
        gist = self.decode_gist(noise["content"], text)
        feat = self.gist_feat(gist)                                        # [B, gc, 4, 4]
        kernels = self.filters(text).view(b * self.text2filter_channels, self.gist_feature_channels, 3, 3)
        filtered = F.conv2d(feat.reshape(1, -1, 4, 4), kernels, padding=1, groups=b).view(b, -1, 4, 4)
        # the decoder starts from 2 time steps: the gist's features are the same in both, the noise
        # differs (as the latent of VGAN-style decoders is projected to 2 x 4 x 4), so the clip's
        # start and end differ by more than the zero padding of the first conv
        z = self.noise_proj(noise["motion"]).view(b, 64, 2, 4, 4)
        x = torch.cat([torch.cat([feat, filtered], dim=1)[:, :, None].expand(-1, -1, 2, -1, -1), z], dim=1)
        x = F.leaky_relu(self.video_in(x), 0.2)
        for block in self.video_blocks:
            x = block(x, text)
        return torch.tanh(self.video_rgb(x))

    def auxiliary_loss(self, text: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, dict]:
        first = real[:, :, 0]
        h = self.gist_enc(first).flatten(1)
        mu, logvar = self.gist_post(torch.cat([h, text], dim=1)).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = F.l1_loss(self.decode_gist(z, text), first)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
        loss = self.cfg.recon_weight * recon + self.cfg.kl_weight * kl
        return loss, {"gist_recon": recon.detach(), "gist_kl": kl.detach()}
