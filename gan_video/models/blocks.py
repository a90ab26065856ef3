"""Layers shared by the generators and discriminators."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def check_resolution(resolution: int, what: str = "model") -> int:
    """Return log2(resolution / 64) or raise: every network here works at 64 * 2^k pixels."""
    k = math.log2(resolution / 64) if resolution > 0 else -1
    if resolution < 64 or k != int(k):
        raise ValueError(f"{what}: resolution {resolution} is not 64*2^k; use 64, 128 or 256 "
                         "(set data.resolution in the config)")
    return int(k)


def mlp(sizes: list[int], act_last: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or act_last:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class ConditionalNorm(nn.Module):
    """Instance-normalise (no batch statistics, so a clip never depends on its batch-mates), then
    scale and shift from a conditioning vector (AdaIN)."""

    def __init__(self, channels: int, cond_dim: int, dims: int = 2):
        super().__init__()
        self.norm = (nn.InstanceNorm2d if dims == 2 else nn.InstanceNorm3d)(channels, affine=False)
        self.affine = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)
        self.dims = dims

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.affine(cond).chunk(2, dim=1)
        shape = (*gamma.shape, *([1] * self.dims))
        return self.norm(x) * (1 + gamma.view(shape)) + beta.view(shape)


def coord_planes(batch: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """``[batch, 3, h, w]``: x and y in [-1, 1] (pixel centres) and the distance from the centre."""
    y = (torch.arange(h, device=like.device, dtype=like.dtype) + 0.5) * (2 / h) - 1
    x = (torch.arange(w, device=like.device, dtype=like.dtype) + 0.5) * (2 / w) - 1
    yy, xx = y[:, None].expand(h, w), x[None, :].expand(h, w)
    return torch.stack([xx, yy, (xx * xx + yy * yy).sqrt()])[None].expand(batch, -1, -1, -1)


class UpBlock2d(nn.Module):
    """x2 nearest upsampling, 3x3 conv, conditional norm, LeakyReLU. With ``coords`` the conv also
    reads the pixel coordinates (:func:`coord_planes`; CoordConv, the coordinate inputs of DIGAN and
    CIPS), so outlines can follow the geometry instead of the upsampling grid."""

    def __init__(self, cin: int, cout: int, cond_dim: int, coords: bool = False):
        super().__init__()
        self.coords = coords
        self.conv = nn.Conv2d(cin + (3 if coords else 0), cout, 3, padding=1)
        self.norm = ConditionalNorm(cout, cond_dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        if self.coords:
            x = torch.cat([x, coord_planes(x.shape[0], *x.shape[-2:], x)], dim=1)
        return F.leaky_relu(self.norm(self.conv(x), cond), 0.2)


class UpBlock3d(nn.Module):
    """Nearest upsampling by (2 if up_t else 1, 2, 2), 3x3x3 conv, conditional norm, LeakyReLU."""

    def __init__(self, cin: int, cout: int, cond_dim: int, up_t: bool):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, 3, padding=1)
        self.norm = ConditionalNorm(cout, cond_dim, dims=3)
        self.scale = (2.0 if up_t else 1.0, 2.0, 2.0)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=self.scale, mode="nearest")
        return F.leaky_relu(self.norm(self.conv(x), cond), 0.2)


def down2d(cin: int, cout: int) -> nn.Sequential:
    """A 4x4 stride-2 conv and LeakyReLU: halves the frame size."""
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2))


def down3d(cin: int, cout: int, down_t: bool) -> nn.Sequential:
    """A 4x4x4 (or 3x4x4 when time is kept) strided conv and LeakyReLU."""
    kt, st = (4, 2) if down_t else (3, 1)
    conv = nn.Conv3d(cin, cout, (kt, 4, 4), (st, 2, 2), (1, 1, 1))
    return nn.Sequential(conv, nn.LeakyReLU(0.2))


def channels_for(resolution: int, base: int, max_channels: int, smallest: int = 4) -> list[int]:
    """Widths from the smallest map up to ``resolution``: doubling each halving, capped."""
    n = int(math.log2(resolution // smallest))
    return [min(max_channels, base * 2 ** (n - i)) for i in range(n + 1)]
