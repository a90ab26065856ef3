"""An analytic reader of the built-in shapes: no learned parts, nothing to be generous.

The alignment judge (``metrics/alignment.py``) is a CNN trained on real clips; a judge trained with
blur accepted blobs as shapes once. This reader measures the drawing directly, frame by frame:

- the **background colour** is the median colour of the frame (the object covers under a tenth of it;
  the built-in clips have one uniform background colour);
- the **object** is the largest connected region of pixels that differ from it by more than
  ``OBJECT_THRESHOLD`` in some channel; its coverage (0-1 per pixel, for the anti-aliased edge) is
  how far each pixel lies from the background towards the object's median colour;
- its **shape** is the ideal circle, square or triangle (the dataset's own signed-distance drawing,
  ``data.shapes.shape_coverage``) of the same area at its centroid, best over rotation, that
  overlaps it most (soft IoU); the IoU with the prompt's shape says how well that shape is drawn
  (real clips: 0.9 and above; a rounded square scores below that as a circle *and* as a square);
- **clutter**: the share of pixels more than ``DILATE`` pixels away from the object that differ
  from the background colour by more than ``CLUTTER_THRESHOLD`` (real clips: 0): a visible layer
  border, blotches, stray specks;
- **halo**: how much darker than the background the ring of ``DILATE`` pixels around the object is
  (mean luma drop in [0, 1]; real clips: 0, their anti-aliased edge is brighter, never darker).

A clip's figures are the means over ``FRAMES`` evenly spread frames; its shape is the shape with the
highest mean IoU. A clip counts as **drawn** when its IoU with the prompt's shape is at least
``DRAWN_IOU``: every real clip is (their lowest IoU is 0.90, a small rotated triangle; circles 0.996),
while a blob can be read as the closest shape without being drawn as it.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from ..data.shapes import SHAPE_AREA, SHAPES, shape_coverage

OBJECT_THRESHOLD = 0.25   # [0, 1] units: the shapes' colours differ from every background by > 0.6
CLUTTER_THRESHOLD = 0.1
DILATE = 2                # pixels: the anti-aliased edge and one more
FRAMES = 4
DRAWN_IOU = 0.85
# rotations tried per shape (a square repeats every 90 degrees, a triangle every 120)
_ANGLES = {"circle": (0.0,), "square": tuple(np.linspace(-math.pi / 4, math.pi / 4, 12, endpoint=False)),
           "triangle": tuple(np.linspace(-math.pi / 3, math.pi / 3, 16, endpoint=False))}
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_DISC = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * DILATE + 1, 2 * DILATE + 1))


def read_frame(frame: np.ndarray) -> dict:
    """``frame`` ``[H, W, 3]`` float in [0, 1] -> ``{"iou": {shape: soft IoU}, "clutter", "halo",
    "area"}`` (area in pixels; ``iou`` all 0 when no object is found)."""
    h, w, _ = frame.shape
    bg = np.median(frame.reshape(-1, 3), axis=0)
    diff = np.abs(frame - bg).max(axis=2)
    mask = (diff > OBJECT_THRESHOLD).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        clutter = float((diff > CLUTTER_THRESHOLD).mean())
        return {"iou": {s: 0.0 for s in SHAPES}, "clutter": clutter, "halo": 0.0, "area": 0.0}
    obj = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    near = cv2.dilate(obj.astype(np.uint8), _DISC) > 0
    far = ~cv2.dilate(near.astype(np.uint8), _DISC).astype(bool)
    clutter = float((diff[far] > CLUTTER_THRESHOLD).mean()) if far.any() else 0.0
    ring = near & ~obj
    luma = frame @ _LUMA
    halo = float(np.clip(float(bg @ _LUMA) - luma[ring], 0.0, None).mean()) if ring.any() else 0.0
    # coverage: the position of each pixel between the background and the object's colour
    colour = np.median(frame[obj], axis=0)
    span = colour - bg
    cov = np.clip(((frame - bg) @ span) / max(float(span @ span), 1e-6), 0.0, 1.0) * near
    area = float(cov.sum())
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = float((cov * xs).sum()) / area, float((cov * ys).sum()) / area
    # the ideal shapes in the dataset's frame units (the pixel grid is square: h == w)
    x = (xs - cx) / w
    y = (ys - cy) / h
    ious = {}
    for shape in SHAPES:
        size = math.sqrt(area / (w * h) / SHAPE_AREA[shape])
        best = 0.0
        for angle in _ANGLES[shape]:
            ideal = shape_coverage(shape, x, y, size, float(angle), w)
            best = max(best, float(np.minimum(ideal, cov).sum() / np.maximum(ideal, cov).sum()))
        ious[shape] = best
    return {"iou": ious, "clutter": clutter, "halo": halo, "area": area}


def read_clip(video: torch.Tensor, frames: int = FRAMES) -> dict:
    """``video`` ``[3, T, H, W]`` in [-1, 1] -> the means over ``frames`` evenly spread frames of
    ``read_frame``'s figures, and ``shape``: the shape with the highest mean IoU."""
    if video.dim() != 4 or video.shape[0] != 3:
        raise ValueError(f"expected one clip [3, T, H, W], got shape {tuple(video.shape)}")
    if video.shape[-1] != video.shape[-2]:
        raise ValueError(f"the reader needs square frames, got {tuple(video.shape[-2:])}")
    t = video.shape[1]
    idx = np.unique(np.linspace(0, t - 1, min(frames, t)).round().astype(int))
    clip = ((video[:, idx].float().clamp(-1, 1) + 1) / 2).permute(1, 2, 3, 0).cpu().numpy()
    reads = [read_frame(f) for f in clip]
    iou = {s: float(np.mean([r["iou"][s] for r in reads])) for s in SHAPES}
    return {"iou": iou, "shape": max(iou, key=iou.get),
            **{k: float(np.mean([r[k] for r in reads])) for k in ("clutter", "halo", "area")}}


class GeometrySummary:
    """Accumulates ``read_clip`` over batches, split into seen and held-out (colour, shape) pairs.

    ``update(video, shape_labels, heldout)``; ``compute()`` -> per group: ``shape`` (share read as
    the prompt's shape), ``iou`` (mean IoU with the prompt's shape), ``clutter``, ``halo``, and
    ``drawn`` (share with IoU >= ``DRAWN_IOU``), and per shape the share of its clips read as it
    (``circle`` etc.) and their mean IoU (``circle_iou`` etc.: are circles drawn round?)."""

    def __init__(self):
        self.rows: list[tuple[bool, str, dict]] = []

    def update(self, video: torch.Tensor, shape_labels, heldout) -> None:
        for clip, label, held in zip(video, shape_labels, heldout):
            self.rows.append((bool(held), SHAPES[int(label)], read_clip(clip)))

    def compute(self) -> dict[str, float]:
        res = {}
        for group, want in (("seen", False), ("heldout", True)):
            rows = [(s, r) for held, s, r in self.rows if held == want]
            if not rows:
                continue
            res[f"{group}/shape"] = float(np.mean([r["shape"] == s for s, r in rows]))
            res[f"{group}/iou"] = float(np.mean([r["iou"][s] for s, r in rows]))
            res[f"{group}/drawn"] = float(np.mean([r["iou"][s] >= DRAWN_IOU for s, r in rows]))
            res[f"{group}/clutter"] = float(np.mean([r["clutter"] for _, r in rows]))
            res[f"{group}/halo"] = float(np.mean([r["halo"] for _, r in rows]))
            for shape in SHAPES:
                mine = [r for s, r in rows if s == shape]
                if mine:
                    res[f"{group}/{shape}"] = float(np.mean([r["shape"] == shape for r in mine]))
                    res[f"{group}/{shape}_iou"] = float(np.mean([r["iou"][shape] for r in mine]))
        return {k: round(v, 4) for k, v in res.items()}
