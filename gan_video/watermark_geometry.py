"""Where a received clip's pixels were when it was marked: the geometry hypotheses of
:func:`gan_video.watermark.detect_watermark`, their weights, and the clip put back under each.

A hypothesis is ``(kind, S, oy, ox)``: "as is"; "rescale" (the clip resized back to ``S x S``, for
each size gan_video makes, :data:`SIZES`, plus any the caller declares); "crop" (the clip is the
``S x S`` frame's window at ``(oy, ox)``, for each such size at most :data:`MAX_CROP` pixels per side
larger than the clip, at every offset; cells cut in part count with their visible pixels).

The weights depend on the received frame size alone (never on its content) and sum to 1, which keeps
the detector's weighted Bonferroni bound true (gan_video/watermark.py): the families "as is",
rescales and crops share it 2:1:1 when the clip has a size gan_video makes, 1:1:1 otherwise
(renormalised over the families a size has); among the rescales each size, nearest first, gets half
the weight of the one before; among the crops of one size, half goes to the centred crop(s) and half
is spread over every offset.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

SIZES = (64, 128, 256)          # the frame sizes gan_video makes: the detector's rescale hypotheses
MAX_CROP = 8                    # the detector's crop hypotheses: up to this many pixels cut per side


def _hypotheses(h: int, w: int, sizes: tuple) -> list[tuple[tuple, float]]:
    """The geometries a received ``h x w`` clip is tested under, with their weights (summing to 1;
    see the module docstring). A hypothesis is ``(kind, S, oy, ox)``: "as is", "rescale" (the clip
    resized to ``S x S``) or "crop" (the clip is the ``S x S`` frame's window at ``(oy, ox)``)."""
    families = {"as is": [(("as is", 0, 0, 0), 1.0)], "rescale": [], "crop": []}
    # rescales: the sizes nearest the received one first, each half as likely as the one before
    others = sorted((size for size in sizes if (size, size) != (h, w)), key=lambda size: abs(math.log(size * size / (h * w))))
    for rank, size in enumerate(others):
        families["rescale"].append((("rescale", size, 0, 0), 0.5 ** rank))
    for size in sizes:
        if size - 2 * MAX_CROP <= min(h, w) and max(h, w) <= size and (size, size) != (h, w):
            offsets = [(oy, ox) for oy in range(size - h + 1) for ox in range(size - w + 1)]
            centred = {(oy, ox) for oy in {(size - h) // 2, (size - h + 1) // 2}
                       for ox in {(size - w) // 2, (size - w + 1) // 2}}
            # per size: half of its share for the centred crop(s), half over every offset
            families["crop"] += [(("crop", size, oy, ox), 0.5 / len(offsets) + (0.5 / len(centred) if (oy, ox) in centred else 0.0))
                                 for oy, ox in offsets]
    # "as is" counts double when the clip has a size gan_video makes (a clip marked at another size
    # is possible, embed_watermark takes any frames, but rarer)
    share = {"as is": 2.0 if (h == w and h in sizes) else 1.0, "rescale": 1.0, "crop": 1.0}
    present = [k for k in families if families[k]]
    total = sum(share[k] for k in present)
    out = []
    for k in present:
        mass = sum(wt for _, wt in families[k])
        out += [(hyp, share[k] / total * wt / mass) for hyp, wt in families[k]]
    return out


def _view(mean: np.ndarray, hyp: tuple) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """A received temporal mean put back where hypothesis ``hyp`` says it was: the frame, and the
    pixels of it that were seen (None: all)."""
    kind, size, oy, ox = hyp
    h, w, _ = mean.shape
    if kind == "as is":
        return mean, None
    if kind == "rescale":
        import cv2

        shrink = size * size < h * w
        return cv2.resize(mean, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR), None
    frame = np.pad(mean, ((oy, size - h - oy), (ox, size - w - ox), (0, 0)), mode="edge")
    seen = np.zeros((size, size), bool)
    seen[oy:oy + h, ox:ox + w] = True
    return frame, seen


def _describe(hyp: tuple) -> str:
    kind, size, oy, ox = hyp
    if kind == "as is":
        return "as is"
    if kind == "rescale":
        return f"rescaled from {size}x{size}"
    return f"cropped from {size}x{size} at x={ox}, y={oy}"
