"""Fréchet Video Distance with the protocol in its name.

``fvd2048_16f`` is the FVD between 2048 real clips of 16 consecutive frames and 2048 generated clips
(their first 16 frames), both quantised to uint8, resized bilinearly to 224x224, scaled to [-1, 1]
and mapped by the Kinetics-400 I3D to its 400 logits (Unterthiner et al. 2018; StyleGAN-V's
"computing FVD properly" protocol). Generated clip ``i`` is made from the caption of real clip ``i``
with seed ``i``, so both sides follow the dataset's caption distribution.

The metric state is sums (feature sum, outer-product sum, count) in float64, so it is exact under
DDP (``dist_reduce_fx="sum"``) and the Fréchet distance is computed in float64. Real statistics are
cached per (dataset, protocol, network weights) under ``$GAN_VIDEO_CACHE/fvd``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import Metric

from ..cache import atomic_write, cache_dir

FEATURES = 400


@dataclass(frozen=True)
class FVDProtocol:
    """How an FVD number was made; ``name`` and ``describe()`` print it beside the number."""
    num_real: int = 2048
    num_fake: int = 2048
    frames: int = 16
    size: int = 224
    seed: int = 0
    stride: int = 1      # real clips take every stride-th frame (the training stride); 1 = consecutive
    offset: int = 0      # generated clips: the window of frames offset .. offset + frames - 1 (0: the first)

    @property
    def name(self) -> str:
        return (f"fvd{self.num_fake}_{self.frames}f" + (f"_s{self.stride}" if self.stride > 1 else "")
                + (f"_w{self.offset}" if self.offset else ""))

    def describe(self) -> str:
        real = "consecutive frames" if self.stride == 1 else f"frames at stride {self.stride} (the training stride)"
        window = (f"first {self.frames} frames" if not self.offset else
                  f"frames {self.offset}-{self.offset + self.frames - 1} of {self.offset + self.frames}")
        return (f"{self.num_real} real clips of {self.frames} {real} vs {self.num_fake} "
                f"generated clips ({window}; caption of real clip i, seed i), uint8, "
                f"bilinear resize to {self.size}x{self.size}, [-1, 1], Kinetics-400 I3D logits, "
                "Fréchet distance in float64")

    @classmethod
    def parse(cls, name: str, **kw) -> "FVDProtocol":
        """``fvd2048_16f`` -> FVDProtocol(2048, 2048, 16); ``fvd256_16f_s2``: real clips at stride 2;
        ``fvd256_16f_w48``: generated frames 48-63 (clips made 64 frames long) against the same real
        clips, to see whether quality holds later in (longer) clips."""
        import re

        m = re.fullmatch(r"fvd(\d+)_(\d+)f(?:_s(\d+))?(?:_w(\d+))?", name)
        if not m:
            raise ValueError(f"FVD protocol {name!r} is not of the form fvd<clips>_<frames>f[_s<stride>][_w<offset>], "
                             "e.g. fvd2048_16f")
        n, t = int(m.group(1)), int(m.group(2))
        kw.setdefault("stride", int(m.group(3) or 1))
        kw.setdefault("offset", int(m.group(4) or 0))
        if min(n, t, kw["stride"]) < 1:
            raise ValueError(f"FVD protocol {name!r}: clips, frames and stride must be >= 1")
        return cls(num_real=kw.pop("num_real", n), num_fake=n, frames=t, **kw)


def frechet_distance(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor) -> torch.Tensor:
    """||mu1 - mu2||^2 + tr(C1) + tr(C2) - 2 tr((C1 C2)^1/2), in float64.

    tr((C1 C2)^1/2) is the sum of the square roots of the eigenvalues of C1^1/2 C2 C1^1/2, a
    symmetric PSD matrix, so a symmetric eigensolver suffices (no complex sqrtm)."""
    mu1, cov1, mu2, cov2 = (x.to(torch.float64) for x in (mu1, cov1, mu2, cov2))
    vals, vecs = torch.linalg.eigh((cov1 + cov1.T) / 2)
    root1 = (vecs * vals.clamp_min(0).sqrt()) @ vecs.T
    middle = root1 @ cov2 @ root1
    eig = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0)
    return (mu1 - mu2).square().sum() + cov1.trace() + cov2.trace() - 2 * eig.sqrt().sum()


def as_uint8_frames(videos: torch.Tensor) -> torch.Tensor:
    """Generated ``[B, 3, T, H, W]`` floats in [-1, 1] or real ``[B, T, H, W, 3]`` uint8 ->
    ``[B, T, H, W, 3]`` uint8 (generated clips are quantised exactly as saved frames would be)."""
    if videos.dtype == torch.uint8:
        if videos.ndim != 5 or videos.shape[-1] != 3:
            raise ValueError(f"uint8 clips must be [B, T, H, W, 3], got {tuple(videos.shape)}")
        return videos
    if videos.ndim != 5 or videos.shape[1] != 3:
        raise ValueError(f"float clips must be [B, 3, T, H, W] in [-1, 1], got {tuple(videos.shape)}")
    return ((videos.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1)


class I3DFeatures(nn.Module):
    """uint8 clips ``[B, T, H, W, 3]`` -> I3D logits ``[B, 400]``: bilinear resize of every frame to
    ``size`` (align_corners=False), scale to [-1, 1], network, in chunks of ``chunk`` clips."""

    def __init__(self, network: nn.Module, size: int = 224, chunk: int = 4, name: str = "i3d",
                 precision: str = "32"):
        super().__init__()
        if precision not in ("32", "bf16"):
            raise ValueError(f"FVD feature precision {precision!r}: use 32 or bf16")
        from .i3d import InceptionI3d

        # channels-last 3D convolutions: 1.8x faster on a 2-core CPU, same logits to 2e-5
        ours = isinstance(network, InceptionI3d)
        self.layout = torch.channels_last_3d if ours else torch.contiguous_format
        # bf16: our I3D as a bfloat16 copy (norms folded in fp32, first conv as space-to-depth, head
        # in fp32); any other network (StyleGAN-V's TorchScript) under autocast. Features come back
        # float32 and carry their own name, so real statistics cached in fp32 are never mixed with them
        self.dtype = torch.bfloat16 if precision == "bf16" else None
        self.autocast = self.dtype is not None and not ours
        if self.dtype is not None and ours:
            network = network.inference_copy(self.dtype)
            name = f"{name}-bf16w"
        elif self.dtype is not None:
            name = f"{name}-bf16"
        self.network = network.to(memory_format=self.layout)
        self.size, self.chunk, self.name = size, chunk, name

    @torch.no_grad()
    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        out = []
        cast = self.dtype if self.dtype is not None and not self.autocast else torch.float32
        for part in videos.split(self.chunk):
            b, t, h, w, _ = part.shape
            x = part.permute(0, 1, 4, 2, 3).reshape(b * t, 3, h, w).float()
            if (h, w) != (self.size, self.size):
                x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
            x = x.div_(127.5).sub_(1.0).reshape(b, t, 3, self.size, self.size).transpose(1, 2).to(cast)
            with torch.autocast(x.device.type, dtype=self.dtype or torch.bfloat16, enabled=self.autocast):
                out.append(self.network(x.contiguous(memory_format=self.layout)).float())
        return torch.cat(out)


def load_i3d_features(path: Optional[str] = None, download: bool = True, chunk: Optional[int] = None,
                      precision: str = "32") -> I3DFeatures:
    """The FVD feature extractor with the real Kinetics-400 weights; its ``name`` (used in cache
    keys) carries the hash of the weights file (and ``-bf16w`` for ``precision="bf16"``: for GPUs
    and for CPUs with bf16 matrix units, such as AMX)."""
    from .i3d import find_i3d_weights, load_i3d
    from ..cache import file_sha256

    file = find_i3d_weights(path, download)
    chunk = chunk or (8 if precision == "bf16" else 4)   # clips per I3D pass; bf16: 0.196 vs 0.225 s/clip at 4
    return I3DFeatures(load_i3d(str(file)), chunk=chunk, name=f"i3d-{file_sha256(file)[:12]}", precision=precision)


def check_bf16_device(device: str | torch.device) -> None:
    """bf16 I3D on a CPU without bf16 arithmetic (no AVX-512 BF16 / AMX) is emulated, about 100x
    slower than float32 (143 s against 1.4 s per clip on a 2-core AVX2 machine): refuse it."""
    if torch.device(device).type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        raise ValueError("--precision bf16: this CPU has no bfloat16 arithmetic (AVX-512 BF16 or AMX), "
                         "so the I3D would run about 100x slower than in float32. Use --precision 32 "
                         "here, or bf16 on a GPU or a CPU that has it (torch.backends.cpu.get_cpu_capability()).")


class FrechetVideoDistance(Metric):
    """FVD as a torchmetrics Metric.

    ``update(videos, real=True|False)`` takes uint8 ``[B, T, H, W, 3]`` or float ``[B, 3, T, H, W]``
    clips in [-1, 1]; ``compute()`` returns the float64 distance. ``set_real_statistics`` fixes the
    real side to cached sums (kept outside the synced state, so every DDP rank may load the same
    file without counting it twice, and kept across ``reset()``), so only generated clips need the
    network.

    Args:
        feature_extractor: maps uint8 clips to ``[B, D]`` features; default the real I3D.
        num_features: D.
    """

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    def __init__(self, feature_extractor: Optional[Callable] = None, num_features: int = FEATURES,
                 i3d_path: Optional[str] = None, **kwargs):
        super().__init__(**kwargs)
        self.extractor = feature_extractor if feature_extractor is not None else load_i3d_features(i3d_path)
        d = num_features
        for side in ("real", "fake"):
            self.add_state(f"{side}_sum", torch.zeros(d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_outer", torch.zeros(d, d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_n", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.fixed_real: Optional[dict] = None

    def features(self, videos: torch.Tensor) -> torch.Tensor:
        return self.extractor(as_uint8_frames(videos)).to(torch.float64)

    def update(self, videos: torch.Tensor, real: bool) -> None:
        self.update_features(self.features(videos), real)

    def update_features(self, feats: torch.Tensor, real: bool) -> None:
        side = "real" if real else "fake"
        feats = feats.to(device=self.real_sum.device, dtype=torch.float64)
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + feats.sum(0))
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + feats.T @ feats)
        setattr(self, f"{side}_n", getattr(self, f"{side}_n") + feats.shape[0])

    def _sums(self, side: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if side == "real" and self.fixed_real is not None:
            return tuple(self.fixed_real[k].to(self.real_sum) for k in ("sum", "outer", "n"))
        return getattr(self, f"{side}_sum"), getattr(self, f"{side}_outer"), getattr(self, f"{side}_n")

    def statistics(self, side: str) -> tuple[torch.Tensor, torch.Tensor]:
        total, outer, n = self._sums(side)
        if n < 2:
            raise ValueError(f"FVD needs at least 2 {side} clips, got {int(n)}")
        mu = total / n
        return mu, (outer - n * torch.outer(mu, mu)) / (n - 1)

    def real_statistics(self) -> dict:
        return {k: v.detach().cpu() for k, v in zip(("sum", "outer", "n"), self._sums("real"))}

    def set_real_statistics(self, stats: Optional[dict]) -> None:
        self.fixed_real = None if stats is None else {k: stats[k].to(torch.float64) for k in ("sum", "outer", "n")}

    def compute(self) -> torch.Tensor:
        return frechet_distance(*self.statistics("real"), *self.statistics("fake"))


# ---------------------------------------------------------------------------------- protocol runs
def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="batch", leave=False)


def real_stats_file(dataset_id: str, protocol: FVDProtocol, extractor_name: str) -> Path:
    fields = {"data": dataset_id, "real": protocol.num_real, "frames": protocol.frames,
              "size": protocol.size, "seed": protocol.seed, "net": extractor_name}
    if protocol.stride != 1:    # (stride 1 keeps the key that caches had before strides existed)
        fields["stride"] = protocol.stride
    key = json.dumps(fields, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    return cache_dir() / "fvd" / f"real_{protocol.num_real}x{protocol.frames}f_{digest}.pt"


def real_clip_batches(datamodule, protocol: FVDProtocol, batch_size: int, num_workers: int = 0):
    """(uint8 clips, captions) batches of the datamodule's ``real_clips`` for this protocol."""
    from torch.utils.data import DataLoader

    dataset = datamodule.real_clips(protocol.frames, protocol.num_real, seed=protocol.seed, stride=protocol.stride)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    return loader, len(loader)


def accumulate_real(metric: FrechetVideoDistance, datamodule, protocol: FVDProtocol, batch_size: int = 16,
                    use_cache: bool = True, progress: bool = True) -> list[str]:
    """Fix the metric's real side (from the cache when possible, else computed and cached) and
    return the captions of the real clips, in order (the generated side is made from them)."""
    dataset_id = datamodule.dataset_id()
    path = real_stats_file(dataset_id, protocol, getattr(metric.extractor, "name", type(metric.extractor).__name__))
    if use_cache and path.is_file():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        metric.set_real_statistics(saved["stats"])
        return list(saved["captions"])
    metric.set_real_statistics(None)
    loader, total = real_clip_batches(datamodule, protocol, batch_size)
    captions: list[str] = []
    for batch in _progress(loader, total, f"{protocol.name} real clips", progress):
        metric.update(batch["video"], real=True)
        captions += list(batch["caption"])
    metric.set_real_statistics(metric.real_statistics())
    if use_cache:
        atomic_write(path, lambda tmp: torch.save({"stats": metric.real_statistics(), "captions": captions,
                                                   "protocol": asdict(protocol), "dataset": dataset_id}, tmp))
    return captions


def clips_from_iterable(metric: FrechetVideoDistance, clips: Iterable[torch.Tensor], real: bool,
                        batch_size: int = 16) -> int:
    """Add uint8 ``[T, H, W, 3]`` clips from any iterable (e.g. decoded video files); returns the count."""
    batch, count = [], 0
    for clip in clips:
        batch.append(clip)
        if len(batch) == batch_size:
            metric.update(torch.stack(batch), real=real)
            count += len(batch)
            batch = []
    if batch:
        metric.update(torch.stack(batch), real=real)
        count += len(batch)
    return count
