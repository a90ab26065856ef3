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


def grow_steps(grow_from: int, resolution: int, what: str) -> int:
    """Doublings from ``grow_from`` up to ``resolution`` (0 when ``grow_from`` is 0: not grown); raises
    unless ``grow_from`` is 64 * 2^k and below ``resolution``. ``what`` names the setting."""
    if not grow_from:
        return 0
    check_resolution(grow_from, what)
    if grow_from >= resolution:
        raise ValueError(f"{what} {grow_from} must be below the clip size {resolution} (or 0: no growing)")
    return int(math.log2(resolution // grow_from))


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
        # instance norm and the affine folded into one scale and shift per (clip, channel): one
        # statistics pass and one fused multiply-add over x (nn.InstanceNorm's eps; the module is
        # kept only for its settings, it has no weights)
        var, mean = torch.var_mean(x, dim=tuple(range(2, x.dim())), keepdim=True, correction=0)
        scale = (1 + gamma.view(shape)) * torch.rsqrt(var + self.norm.eps)
        return torch.addcmul(beta.view(shape) - mean * scale, x, scale)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """x2 nearest-neighbour upsampling of ``[B, C, H, W]`` as one broadcast copy (what
    ``F.interpolate(mode="nearest")`` computes; on the CPU that op makes two extra layout copies)."""
    b, c, h, w = x.shape
    return x[:, :, :, None, :, None].expand(b, c, h, 2, w, 2).reshape(b, c, 2 * h, 2 * w)


def affine_grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``F.affine_grid(theta, [N, C, h, w], align_corners=False)`` for ``theta`` ``[N, 2, 3]``,
    computed by broadcasting (x and y are separable) instead of a batched matmul against a full
    base grid: the same grid, to float rounding, for a fraction of the time and memory traffic."""
    x = (torch.arange(w, device=theta.device, dtype=theta.dtype) * 2 + 1) / w - 1
    y = (torch.arange(h, device=theta.device, dtype=theta.dtype) * 2 + 1) / h - 1
    a, b, c = (theta[:, :, k][:, None, None, :] for k in range(3))   # [N, 1, 1, 2] each
    row = torch.addcmul(c, a, x[None, None, :, None])                 # [N, 1, w, 2]
    return torch.addcmul(row, b, y[None, :, None, None])              # [N, h, w, 2], contiguous


class UpBlock2d(nn.Module):
    """x2 nearest upsampling, then ``convs`` times (3x3 conv, conditional norm, LeakyReLU). A second
    conv per size (StyleGAN's two per resolution) lets a block smooth the
    blocks that nearest upsampling leaves, which one 3x3 conv alone cannot round into a circle."""

    def __init__(self, cin: int, cout: int, cond_dim: int, convs: int = 1):
        super().__init__()
        if convs < 1:
            raise ValueError(f"an up-block needs at least one conv, got {convs}")
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm = ConditionalNorm(cout, cond_dim)
        self.extra = nn.ModuleList(nn.Conv2d(cout, cout, 3, padding=1) for _ in range(convs - 1))
        self.extra_norms = nn.ModuleList(ConditionalNorm(cout, cond_dim) for _ in range(convs - 1))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = upsample2x(x)
        x = F.leaky_relu(self.norm(self.conv(x), cond), 0.2)
        for conv, norm in zip(self.extra, self.extra_norms):
            x = F.leaky_relu(norm(conv(x), cond), 0.2)
        return x


class UpBlock3d(nn.Module):
    """A 4x4x4 (3x4x4 when time is kept) transposed 3D conv that doubles the frame size (and the
    length when ``up_t``), as the 2018 paper's video decoder does, then conditional norm and
    LeakyReLU. A transposed stride-2 conv computes 8 taps per output voxel where upsampling + a 3x3x3
    conv computes 27, which is what makes the 2018 decoder affordable on a CPU."""

    def __init__(self, cin: int, cout: int, cond_dim: int, up_t: bool):
        super().__init__()
        self.conv = up3d(cin, cout, up_t)
        self.norm = ConditionalNorm(cout, cond_dim, dims=3)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.norm(self.conv(x), cond), 0.2)


class EdgeUp3d(nn.ConvTranspose3d):
    """A transposed 3D conv whose border outputs get as many taps as the inner ones.

    With zero padding, a 4-tap stride-2 transposed conv gives the first and last output of each axis
    one input tap where the others get two, so the 2018 decoder drew every clip's first and last
    frames washed out and a grey frame around every image (seen in its Weizmann and shapes
    samples). Here the input is first extended by one replicated voxel on each side, and the
    transposed conv crops ``padding + stride`` more: the output has the plain conv's size and
    alignment, and its borders see the edge values instead of zeros. Same weights as
    ``nn.ConvTranspose3d``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (1, 1, 1, 1, 1, 1), mode="replicate")
        crop = tuple(p + s for p, s in zip(self.padding, self.stride))
        return F.conv_transpose3d(x, self.weight, self.bias, self.stride, crop)


def up3d(cin: int, cout: int, up_t: bool) -> EdgeUp3d:
    """A transposed 3D conv: x2 in space, x2 in time when ``up_t`` (borders as in :class:`EdgeUp3d`)."""
    kt, st = (4, 2) if up_t else (3, 1)
    return EdgeUp3d(cin, cout, (kt, 4, 4), (st, 2, 2), (1, 1, 1))


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
