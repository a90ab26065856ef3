"""Text alignment on the built-in shapes, the 2018 paper's protocol.

A small video classifier, trained on *real* moving-shapes clips of every (colour, shape) pair,
predicts colour, shape and direction. Applied to clips generated from canonical prompts it gives,
per attribute, the share of clips that show what the prompt asked for, separately for the pairs the
generator saw in training and for the held-out ones.

The judges of the three sizes the shapes chain makes (``configs/shapes.yaml``, 64 px; ``shapes_128.yaml``,
``shapes_256.yaml``; 32 frames) ship with the package
(``gan_video/assets/alignment_v6_{64,128,256}px_32f_800.safetensors``, made by
``python tools/train_alignment_classifier.py [--resolution 128|256]``), so every user's figures come from the
same judge and no run spends minutes training it (at 256 px: 27 minutes and 9 GB on 2 CPU cores). Other sizes are trained once per (resolution, frames) and
cached (``$GAN_VIDEO_CACHE`` or ``~/.cache/gan_video/alignment``). The judge's accuracy on fresh real
clips is stored with it and reported, so a reader can tell the judge from the judged.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import Metric

from ..cache import atomic_write, cache_dir
from ..data.io import from_uint8, to_uint8
from ..data.shapes import COLORS, COLORS_INDEX, DIRECTIONS, SHAPES, MovingShapes, render_clip
from .geometry import GeometrySummary

ATTRIBUTES = {"color": len(COLORS), "shape": len(SHAPES), "direction": len(DIRECTIONS)}
CLASSIFIER_VERSION = 6   # 6: trained on a uint8 pool (quantised renders)
CLASSIFIER_FRAMES = 4  # frames the classifier looks at, evenly spread over the clip


class AttributeClassifier(nn.Module):
    """2D-conv classifier over ``CLASSIFIER_FRAMES`` frames at 64x64 stacked on the channel axis
    (early fusion: direction is read from how the frames differ) -> logits per attribute."""

    def __init__(self, width: int = 32):
        super().__init__()
        w, k = width, CLASSIFIER_FRAMES
        self.net = nn.Sequential(
            nn.Conv2d(3 * k, w, 4, 2, 1), nn.LeakyReLU(0.2),          # 32
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2),          # 16
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.LeakyReLU(0.2),      # 8
            nn.Conv2d(4 * w, 4 * w, 3, 1, 1), nn.LeakyReLU(0.2),
        )
        # global max + mean pooling: the object may be anywhere in the frame
        self.heads = nn.ModuleDict({n: nn.Linear(8 * w, c) for n, c in ATTRIBUTES.items()})

    @staticmethod
    def prepare(video: torch.Tensor) -> torch.Tensor:
        """Any ``[B, 3, T, H, W]`` clip in [-1, 1] -> ``[B, 3 * K, 64, 64]`` (K evenly spread frames)."""
        b, c, t, h, w = video.shape
        if t != CLASSIFIER_FRAMES:  # a whole clip: pick the frames; else they were picked already
            video = video.index_select(2, torch.from_numpy(classifier_frames(t)).to(video.device))
        x = video.transpose(1, 2).reshape(b * CLASSIFIER_FRAMES, c, h, w)
        if (h, w) != (64, 64):
            x = F.interpolate(x, size=(64, 64), mode="area" if h > 64 else "bilinear")
        return x.reshape(b, CLASSIFIER_FRAMES * c, 64, 64)

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.net(self.prepare(video)).flatten(2)
        feat = torch.cat([x.amax(2), x.mean(2)], dim=1)
        return {k: head(feat) for k, head in self.heads.items()}


def classifier_frames(frames: int) -> np.ndarray:
    """Indices of the frames the classifier reads from a ``frames``-long clip."""
    return np.linspace(0, frames - 1, CLASSIFIER_FRAMES).round().astype(int)


def _render_pool(ds: MovingShapes, indices) -> tuple[torch.Tensor, dict]:
    """Real clips (only the frames the classifier reads) as uint8 ``[N, K, H, W, 3]`` (a quarter of
    the memory of float32: 400 MB for the 8192-clip pool at 64 px) and their labels."""
    times = classifier_frames(ds.frames) / max(ds.frames - 1, 1)
    clips = [ds.clip(int(i)) for i in indices]
    video = torch.empty((len(clips), len(times), ds.resolution, ds.resolution, 3), dtype=torch.uint8)
    for j, c in enumerate(clips):   # one clip at a time: no float copy of the whole pool
        frames = torch.from_numpy(render_clip(c, len(times), ds.resolution, times))
        video[j] = torch.from_numpy(to_uint8(frames.movedim(-1, 0) * 2 - 1))
    labels = {"color": torch.tensor([COLORS_INDEX[c.color] for c in clips]),
              "shape": torch.tensor([SHAPES.index(c.shape) for c in clips]),
              "direction": torch.tensor([DIRECTIONS.index(c.direction) for c in clips])}
    return video, labels


def _augment(video: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Noise, contrast and blur so the judge tolerates generator artefacts, not only clean renders."""
    b = video.shape[0]
    scale = 0.7 + 0.3 * torch.rand(b, 1, 1, 1, 1, generator=gen)
    video = video * scale + 0.15 * torch.randn(video.shape, generator=gen) * torch.rand(b, 1, 1, 1, 1, generator=gen)
    if torch.rand(1, generator=gen).item() < 0.5:
        c, t, h, w = video.shape[1:]
        x = F.avg_pool2d(video.transpose(1, 2).reshape(-1, c, h, w), 3, 1, 1)
        video = x.view(b, t, c, h, w).transpose(1, 2)
    return video.clamp(-1, 1)


@torch.no_grad()
def accuracy(model: "AttributeClassifier", video: torch.Tensor, labels: dict, batch: int = 256) -> dict:
    """Accuracy per attribute on uint8 clips ``[N, K, H, W, 3]``."""
    model.eval()
    out = {k: torch.cat([model(from_uint8(video[i:i + batch]))[k].argmax(1) for i in range(0, len(video), batch)])
           for k in ATTRIBUTES}
    return {k: (out[k] == labels[k]).float().mean().item() for k in ATTRIBUTES}


def train_classifier(resolution: int = 64, frames: int = 32, steps: int = 800, batch: int = 64,
                     pool: int = 8192, seed: int = 1234, progress: bool = True
                     ) -> tuple["AttributeClassifier", dict]:
    """Train the judge on real clips of every pair; returns it and its accuracy on unseen real clips.

    The training clips are rendered once into a pool (only the frames the judge reads), so a step
    costs a forward/backward pass, not a render."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.time()
    video, labels = _render_pool(MovingShapes(pool, resolution, frames, seed=seed), range(pool))
    test_video, test_labels = _render_pool(MovingShapes(1024, resolution, frames, seed=seed + 1), range(1024))
    model = AttributeClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for step in range(steps):
        model.train()
        i = torch.randint(0, pool, (batch,), generator=gen)
        out = model(_augment(from_uint8(video[i]), gen))
        loss = sum(F.cross_entropy(out[k], labels[k][i]) for k in ATTRIBUTES)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if progress and (step % 250 == 0 or step == steps - 1):
            print(f"[alignment classifier] step {step + 1}/{steps} loss {loss.item():.3f} "
                  f"({time.time() - t0:.0f}s)", flush=True)
    return model.eval(), accuracy(model, test_video, test_labels)


ASSETS = Path(__file__).resolve().parent.parent / "assets"


def classifier_name(resolution: int, frames: int, steps: int) -> str:
    return f"v{CLASSIFIER_VERSION}_{resolution}px_{frames}f_{steps}"


def save_classifier(model: AttributeClassifier, real_accuracy: dict, path, **info) -> None:
    """The judge as safetensors (no pickle), its real accuracy and ``info`` in the metadata."""
    from safetensors.torch import save_file

    meta = {"version": str(CLASSIFIER_VERSION), "real_accuracy": json.dumps(real_accuracy),
            **{k: str(v) for k, v in info.items()}}
    atomic_write(Path(path), lambda tmp: save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                                                   str(tmp), metadata=meta))


def read_classifier(path) -> tuple[AttributeClassifier, dict]:
    """A judge written by :func:`save_classifier` (``.safetensors``) or by older versions (``.pt``,
    read with ``weights_only``)."""
    path = Path(path)
    model = AttributeClassifier()
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
        if meta.get("version") != str(CLASSIFIER_VERSION):
            raise ValueError(f"{path} holds alignment classifier version {meta.get('version')}, this "
                             f"gan_video needs version {CLASSIFIER_VERSION}: delete it to retrain")
        accuracy = json.loads(meta["real_accuracy"])
    else:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        state, accuracy = blob["state_dict"], blob["real_accuracy"]
    model.load_state_dict(state)
    return model.eval(), accuracy


def load_classifier(resolution: int = 64, frames: int = 32, path: Optional[str] = None,
                    steps: int = 800) -> tuple[AttributeClassifier, dict]:
    """The judge for this clip size: ``path`` if given, else the one shipped with the package for
    this size, else the cached one, else trained (about 90 s on 2 CPU cores) and cached."""
    name = classifier_name(resolution, frames, steps)
    shipped = ASSETS / f"alignment_{name}.safetensors"
    if path is None and shipped.is_file():
        return read_classifier(shipped)
    path = Path(path) if path else cache_dir() / "alignment" / f"{name}.safetensors"
    if path.is_file():
        return read_classifier(path)
    # may be called from inside a Lightning validation loop (no_grad / inference mode)
    with torch.inference_mode(False), torch.enable_grad():
        model, acc = train_classifier(resolution, frames, steps)
    if path.suffix == ".safetensors":
        save_classifier(model, acc, path, resolution=resolution, frames=frames, steps=steps)
    else:       # an explicit older-style path: written as read_classifier reads it back
        atomic_write(path, lambda tmp: torch.save({"state_dict": model.state_dict(), "real_accuracy": acc}, tmp))
    return model, acc


class TextAlignment(Metric):
    """Accuracy per attribute of the judge on generated clips, split into seen / held-out pairs.

    ``update(video, labels, heldout)``: ``video`` ``[B, 3, T, H, W]`` in [-1, 1]; ``labels`` a dict
    of int tensors ``color``, ``shape``, ``direction``; ``heldout`` a bool tensor ``[B]``.
    ``compute()`` -> ``{"seen/color": ..., "heldout/shape": ..., ...}`` (NaN for an empty group).
    """

    full_state_update = False

    def __init__(self, classifier: AttributeClassifier, **kwargs):
        super().__init__(**kwargs)
        self.classifier = classifier.eval().requires_grad_(False)
        for group in ("seen", "heldout"):
            self.add_state(f"{group}_n", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
            for k in ATTRIBUTES:
                self.add_state(f"{group}_{k}", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    @torch.no_grad()
    def update(self, video: torch.Tensor, labels: dict, heldout: torch.Tensor) -> None:
        out = self.classifier(video.float())
        heldout = heldout.bool().to(video.device)
        for group, mask in (("seen", ~heldout), ("heldout", heldout)):
            setattr(self, f"{group}_n", getattr(self, f"{group}_n") + mask.sum())
            for k in ATTRIBUTES:
                hit = (out[k].argmax(1) == labels[k].to(video.device)) & mask
                setattr(self, f"{group}_{k}", getattr(self, f"{group}_{k}") + hit.sum())

    def compute(self) -> dict[str, torch.Tensor]:
        res = {}
        for group in ("seen", "heldout"):
            n = getattr(self, f"{group}_n").float()
            for k in ATTRIBUTES:
                res[f"{group}/{k}"] = getattr(self, f"{group}_{k}").float() / n if n > 0 else torch.tensor(float("nan"))
        return res


@torch.no_grad()
def text_alignment(model, classifier: AttributeClassifier, holdout, per_prompt: int = 4, seed: int = 1000,
                   batch_size: int = 32, rank: int = 0, world: int = 1, watermark: Optional[str] = None,
                   geometry: bool = False) -> dict:
    """The 2018 protocol for ``model`` (anything with ``generate(prompts, seeds)``, its EMA generator):
    ``per_prompt`` clips of each of the 72 canonical prompts "a {colour} {shape} moving {direction}"
    (seeds from ``seed``), judged by ``classifier``; accuracy per attribute for the seen and the
    held-out (colour, shape) pairs. Under DDP each rank judges its share and the counts are summed.
    ``watermark``: a model hash; each clip then gets the watermark of that model (as written to
    files) before it is judged, to measure what the watermark does to the figures. ``geometry``: also
    read every clip with the analytic reader (``metrics/geometry.py``: shape by ideal-shape IoU,
    clutter, halo), returned under ``"geometry"``."""
    from ..data.shapes_datamodule import PromptSet

    if per_prompt < 1:
        raise ValueError(f"per_prompt must be >= 1, got {per_prompt}")
    if geometry and world > 1:
        raise ValueError("the analytic reader (geometry=True) runs in one process; call text_alignment "
                         "without DDP (world=1), as gan-video-alignment does")
    prompts = PromptSet(holdout, per_prompt, seed=seed)
    metric = TextAlignment(classifier).to(getattr(model, "device", "cpu"))
    mine = prompts.items[rank::world]
    reader = GeometrySummary() if geometry else None
    for i in range(0, len(mine), batch_size):
        items = mine[i:i + batch_size]
        video = model.generate([it["caption"] for it in items], [it["seed"] for it in items], batch_size=batch_size)
        if watermark is not None:
            video = _watermarked(video, watermark)
        labels = {k: torch.tensor([it[k] for it in items]) for k in ATTRIBUTES}
        heldout = torch.tensor([it["heldout"] for it in items])
        metric.update(video, labels, heldout)
        if reader is not None:
            reader.update(video, labels["shape"], heldout)
    res = {"holdout": [list(p) for p in holdout], "clips": len(prompts), "per_prompt": per_prompt,
           "accuracy": {k: round(float(v), 4) for k, v in metric.compute().items()}}
    if reader is not None:
        res["geometry"] = reader.compute()
    return res


def _watermarked(video: torch.Tensor, model_hash: str) -> torch.Tensor:
    """Float clips [N, 3, T, H, W] in [-1, 1] as they are once written by the project: uint8 frames
    with the watermark, back to float."""
    from ..data.io import from_uint8, to_uint8
    from ..watermark import embed_watermark

    clips = to_uint8(video)
    return torch.stack([from_uint8(embed_watermark(c, model_hash)) for c in clips]).to(video.device)
