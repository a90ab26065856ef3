"""The analytic shapes reader (gan_video/metrics/geometry.py): known answers on real clips and on
drawings with the faults it exists to catch (rounded squares for circles, a layer border, a halo)."""
import math

import numpy as np
import pytest
import torch

from gan_video.data.shapes import COLORS, SHAPES, MovingShapes, ShapeClip, render_clip, shape_coverage
from gan_video.metrics.geometry import GeometrySummary, read_clip, read_frame


def _clip(video01: np.ndarray) -> torch.Tensor:
    """[T, H, W, 3] in [0, 1] -> [3, T, H, W] in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(video01)).permute(3, 0, 1, 2).float() * 2 - 1


def _circle_frame(radius_px=8.0, res=64):
    clip = ShapeClip("red", "circle", "left", "", radius_px / res, (0.5, 0.5), 0.0, (0.05, 0.08, 0.1), 0.0)
    return render_clip(clip, 1, res)[0]


def test_real_clips_read_perfectly_seen_and_held_out():
    summary = GeometrySummary()
    for exclude in (True, False):          # the default holdout's seen pairs, then its held-out ones
        ds = MovingShapes(60, 64, 32, seed=123, holdout=[["red", "triangle"], ["green", "square"],
                                                          ["blue", "circle"]], exclude=exclude)
        items = [ds[i] for i in range(30)]
        summary.update(torch.stack([it["video"] for it in items]), [it["shape"] for it in items],
                       [not exclude] * 30)
    res = summary.compute()
    for group in ("seen", "heldout"):
        assert res[f"{group}/shape"] == 1.0, res
        assert res[f"{group}/iou"] > 0.93, res
        assert res[f"{group}/clutter"] == 0.0 and res[f"{group}/halo"] == 0.0, res
    assert {"seen/circle", "seen/square", "seen/triangle"} <= set(res)


def test_each_shape_is_told_from_the_others_by_its_ideal_overlap():
    coords = (np.arange(64, dtype=np.float32) + 0.5) / 64
    x, y = coords[None, :] - 0.47, coords[:, None] - 0.52
    bg = np.array([0.1, 0.05, 0.0], np.float32)
    for shape in SHAPES:
        for angle in (0.0, 0.25):
            cov = shape_coverage(shape, x, y, 0.12, angle, 64)
            frame = bg + cov[..., None] * (np.array(COLORS["cyan"], np.float32) - bg)
            r = read_frame(frame)
            assert max(r["iou"], key=r["iou"].get) == shape, (shape, r["iou"])
            assert r["iou"][shape] > 0.93 and abs(r["area"] - cov.sum()) < 1.0


def test_a_rounded_square_is_not_a_round_circle():
    """What the layered generator drew for "circle": a square with rounded corners. Its overlap with a
    circle stays well under a real circle's (0.99), so the reader does not call it round."""
    coords = np.arange(64, dtype=np.float32) + 0.5 - 32
    x, y = coords[None, :], coords[:, None]
    half, corner = 8.0, 3.0                                      # pixels
    dx, dy = np.maximum(np.abs(x) - (half - corner), 0), np.maximum(np.abs(y) - (half - corner), 0)
    outside = np.sqrt(dx * dx + dy * dy) - corner                # signed distance of a rounded square
    inner = np.minimum(np.maximum(np.abs(x), np.abs(y)) - half, 0) * (outside <= 0)
    cov = np.clip(0.5 - (outside + inner), 0, 1)
    frame = 0.05 + cov[..., None] * (np.array(COLORS["blue"], np.float32) - 0.05)
    r = read_frame(frame)
    assert r["iou"]["circle"] < 0.93 and read_frame(_circle_frame())["iou"]["circle"] > 0.97
    assert max(r["iou"], key=r["iou"].get) == "square", r["iou"]


def test_layer_border_and_halo_are_measured():
    frame = _circle_frame()
    bg = frame[0, 0].copy()
    # a faint rectangle around the object: the sprite layer's edge, 0.15 above the background
    bordered = frame.copy()
    bordered[10:54, 10] += 0.15
    bordered[10:54, 53] += 0.15
    r = read_frame(np.clip(bordered, 0, 1))
    assert 88 / 4096 < r["clutter"] < 88 / 3500 and r["halo"] == 0.0     # 88 px of those away from the object
    assert max(r["iou"], key=r["iou"].get) == "circle"
    # a black ring two pixels wide just outside the circle: a halo, and no clutter
    yy, xx = np.mgrid[0:64, 0:64] + 0.5
    d = np.hypot(xx - 32, yy - 32)
    haloed = frame.copy()
    haloed[(d > 8.5) & (d < 10.5)] = 0.0
    r = read_frame(haloed)
    luma_bg = float(bg @ np.array([0.299, 0.587, 0.114]))
    assert r["halo"] > 0.5 * luma_bg and r["clutter"] == 0.0
    assert read_frame(frame)["halo"] == 0.0


def test_an_empty_frame_reads_no_shape_and_bad_input_is_refused():
    r = read_frame(np.full((64, 64, 3), 0.1, np.float32))
    assert all(v == 0.0 for v in r["iou"].values()) and r["area"] == 0.0 and r["clutter"] == 0.0
    with pytest.raises(ValueError, match=r"\[3, T, H, W\]"):
        read_clip(torch.zeros(2, 3, 4, 64, 64))
    with pytest.raises(ValueError, match="square frames"):
        read_clip(torch.zeros(3, 4, 64, 48))


def test_text_alignment_reports_the_reader_on_the_same_clips():
    """A stand-in model that returns real clips of what each prompt says: the judge and the reader
    both read them (nearly) perfectly, through the same call the alignment tool makes."""
    from gan_video.metrics.alignment import load_classifier, text_alignment
    from gan_video.tools.alignment import format_table

    class RealClips:
        def generate(self, captions, seeds, batch_size=32):
            out = []
            for caption, seed in zip(captions, seeds):
                words = caption.split()                          # "a {colour} {shape} moving {dir}"
                rng = np.random.default_rng(seed)
                start = (0.35, 0.35) if words[4] in ("right", "down") else (0.65, 0.65)   # 0.3 to travel
                clip = ShapeClip(words[1], words[2], words[4], caption, float(rng.uniform(0.09, 0.15)),
                                 start, 0.3, tuple(rng.uniform(0, 0.15, 3)), float(rng.uniform(-0.3, 0.3)))
                out.append(_clip(render_clip(clip, 32, 64)))
            return torch.stack(out)

    classifier, real = load_classifier(64, 32)
    res = text_alignment(RealClips(), classifier, [["blue", "circle"]], per_prompt=1, geometry=True)
    g = res["geometry"]
    assert res["clips"] == 72 and g["seen/shape"] == 1.0 and g["heldout/shape"] == 1.0
    assert g["heldout/circle"] == 1.0 and "heldout/square" not in g
    assert g["seen/clutter"] == 0.0 and g["seen/halo"] == 0.0 and g["seen/iou"] > 0.93
    assert res["accuracy"]["seen/shape"] > 0.9
    table = format_table({**res, "checkpoint": "x.ckpt", "watermark": None, "classifier_accuracy_on_real": real})
    assert "analytic reader" in table and "100.0%" in table.split("analytic reader")[1]
    assert "geometry" not in text_alignment(RealClips(), classifier, [], per_prompt=1)
    assert not math.isnan(g["seen/iou"])
    with pytest.raises(ValueError, match="runs in one process"):
        text_alignment(RealClips(), classifier, [], per_prompt=1, world=2, geometry=True)
