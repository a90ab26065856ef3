"""Text-conditioned video generators: ``G(text_embedding, noise) -> [B, 3, T, H, W]`` in [-1, 1].

Two designs share one interface (:class:`VideoGenerator`):

* ``layered`` (default): MoCoGAN's content/motion split made cheap. The content code (text +
  noise) is decoded once per clip by a 2D conditional-norm generator into a foreground layer (RGB and
  alpha) and a background layer. The motion code (content + motion noise) gives a continuous
  trajectory of affine transforms ``theta(t)`` (a pose, a velocity and a small Fourier residual, as in
  StyleGAN-V's continuous time), so any frame time ``t`` in [0, 1] is a warp of the foreground
  composited on the background. Every frame costs one ``grid_sample``, not a network pass, which is
  what lets 32x64x64 clips train on a CPU.
* ``t2v2018``: Li et al., "Video Generation From Text" (AAAI 2018). A conditional VAE turns the text
  (and, in training, the first frame) into a gist image; Text2Filter generates convolution filters
  from the text and applies them to the gist's features; a 3D-convolution decoder turns gist
  features, filtered features and noise into the clip.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import UpBlock2d, UpBlock3d, channels_for, check_resolution, mlp


@dataclass
class GeneratorConfig:
    """Generator hyperparameters (``model.generator`` in the YAML).

    Attributes:
        arch: ``layered`` (default, see module docs) or ``t2v2018``.
        z_content: size of the per-clip content noise.
        z_motion: size of the per-clip motion noise (``layered``) / video noise (``t2v2018``).
        style_dim: width of the mapping network's output that conditions every layer.
        base_channels: channels at full resolution; they double at each halving of the size.
        max_channels: cap on the channel count.
        fourier: number of Fourier time frequencies in the motion residual (``layered``).
        motion_init: ``layered`` only: initial spread of the foreground's position and velocity
            (in half-frames); 0 starts every clip static in the centre.
        background_resolution: ``layered`` only: 0 draws the background layer with the conv trunk
            at full resolution; ``k > 0`` predicts a ``k x k`` background from the content code
            and upsamples it (1 = a uniform colour, right for the built-in shapes).
        kl_weight: weight of the gist VAE's KL term (``t2v2018``).
        recon_weight: weight of the gist VAE's reconstruction term (``t2v2018``).
    """
    arch: Literal["layered", "t2v2018"] = "layered"
    z_content: int = 64
    z_motion: int = 16
    style_dim: int = 256
    base_channels: int = 16
    max_channels: int = 256
    fourier: int = 4
    motion_init: float = 0.5
    background_resolution: int = 0
    kl_weight: float = 0.01
    recon_weight: float = 1.0


class VideoGenerator(nn.Module):
    """Common interface: noise sampling, frame-count checks, optional auxiliary losses."""

    def __init__(self, cfg: GeneratorConfig, text_dim: int, resolution: int, frames: int):
        super().__init__()
        check_resolution(resolution, f"generator {cfg.arch!r}")
        self.cfg, self.text_dim, self.resolution, self.frames = cfg, text_dim, resolution, frames
        self.check_frames(frames)

    def check_frames(self, frames: int) -> None:
        if frames < 1:
            raise ValueError(f"generator {self.cfg.arch!r} cannot make {frames} frames; use >= 1")

    def noise_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"content": (self.cfg.z_content,), "motion": (self.cfg.z_motion,)}

    def sample_noise(self, batch: int, device=None, generator: Optional[torch.Generator] = None
                     ) -> dict[str, torch.Tensor]:
        """Per-clip noise; with a seeded ``generator`` the same seed gives the same clip."""
        out = {}
        for name, shape in self.noise_shapes().items():
            out[name] = torch.randn((batch, *shape), generator=generator).to(device)
        return out

    def auxiliary_loss(self, text: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Extra generator losses that need real clips (the gist VAE); none by default."""
        return text.new_zeros(()), {}


def fourier_features(t: torch.Tensor, n: int) -> torch.Tensor:
    """``[N] -> [N, 2n]`` sines and cosines of ``t`` at frequencies 1..n (periods within a clip)."""
    freqs = torch.arange(1, n + 1, device=t.device, dtype=t.dtype) * math.pi
    ang = t[:, None] * freqs[None]
    return torch.cat([ang.sin(), ang.cos()], dim=1)


class LayeredMotionGenerator(VideoGenerator):
    def __init__(self, cfg: GeneratorConfig, text_dim: int, resolution: int, frames: int):
        super().__init__(cfg, text_dim, resolution, frames)
        widths = channels_for(resolution, cfg.base_channels, cfg.max_channels)
        self.mapping = mlp([text_dim + cfg.z_content, cfg.style_dim, cfg.style_dim], act_last=True)
        self.const = nn.Parameter(torch.randn(1, widths[0], 4, 4))
        self.blocks = nn.ModuleList(UpBlock2d(a, b, cfg.style_dim) for a, b in zip(widths[:-1], widths[1:]))
        # foreground RGB (3) + alpha (1) [+ background RGB (3) when drawn at full resolution]
        k = cfg.background_resolution
        self.to_layers = nn.Conv2d(widths[-1], 4 if k else 7, 3, padding=1)
        self.to_background = nn.Linear(cfg.style_dim, 3 * k * k) if k else None
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

    def layers(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Foreground ``[B, 4, H, W]`` (alpha-premultiplied RGB, alpha) and background ``[B, 3, H, W]``."""
        x = self.const.expand(style.shape[0], -1, -1, -1)
        for block in self.blocks:
            x = block(x, style)
        out = self.to_layers(x)
        rgb, alpha = out[:, :3], torch.sigmoid(out[:, 3:4])
        if self.to_background is None:
            bg = out[:, 4:]
        else:
            k = self.cfg.background_resolution
            bg = self.to_background(style).view(-1, 3, k, k)
            bg = F.interpolate(bg, size=out.shape[-2:], mode="bilinear", align_corners=False) if k > 1 \
                else bg.expand(-1, -1, *out.shape[-2:])
        return torch.cat([torch.tanh(rgb) * alpha, alpha], dim=1), torch.tanh(bg)

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
            frames = self.frames if frames is None else frames
            self.check_frames(frames)
            times = torch.linspace(0, 1, frames, device=text.device) if frames > 1 else \
                torch.full((1,), 0.5, device=text.device)
        style = self.mapping(torch.cat([text, noise["content"]], dim=1))
        fg, bg = self.layers(style)
        theta = self.trajectory(style, noise["motion"], times)
        b, t = theta.shape[:2]
        h, w = fg.shape[-2:]
        # one sampling grid per frame, stacked along the height axis: the foreground is sampled T
        # times without being copied T times, and the result is already laid out as [B, C, T, H, W]
        grid = F.affine_grid(theta.reshape(b * t, 2, 3), [b * t, 4, h, w], align_corners=False)
        moved = F.grid_sample(fg, grid.view(b, t * h, w, 2), mode="bilinear", padding_mode="zeros",
                              align_corners=False).view(b, 4, t, h, w)
        rgb, alpha = moved.split([3, 1], dim=1)
        return torch.addcmul(rgb, 1 - alpha, bg[:, :, None])


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
        self.noise_proj = nn.Linear(cfg.z_motion, 64 * 16)
        # 3D decoder from [gist features, filtered features, noise] at 2 x 4 x 4
        n_s, n_t = len(widths) - 1, int(math.log2(frames // 2))
        self.video_in = nn.Conv3d(gc + fc + 64, widths[0], 3, padding=1)
        self.video_blocks = nn.ModuleList(
            UpBlock3d(a, b, text_dim, up_t=i >= n_s - n_t) for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])))
        self.video_rgb = nn.Conv3d(widths[-1], 3, 3, padding=1)

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
        z = self.noise_proj(noise["motion"]).view(b, 64, 4, 4)
        x = torch.cat([feat, filtered, z], dim=1)[:, :, None].expand(-1, -1, 2, -1, -1)
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


GENERATORS: dict[str, Callable[..., VideoGenerator]] = {
    "layered": LayeredMotionGenerator,
    "t2v2018": T2VGenerator,
}


def build_generator(cfg: GeneratorConfig, text_dim: int, resolution: int, frames: int) -> VideoGenerator:
    if cfg.arch not in GENERATORS:
        raise ValueError(f"unknown generator arch {cfg.arch!r}; choose from {sorted(GENERATORS)}")
    return GENERATORS[cfg.arch](cfg, text_dim, resolution, frames)
