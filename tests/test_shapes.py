import numpy as np
import pytest
import torch

from gan_video.data.shapes import (COLORS, DIRECTION_PHRASES, DIRECTIONS, SHAPE_WORDS, SHAPES, MovingShapes,
                                   parse_holdout, render_clip)
from gan_video.data.shapes_datamodule import PromptSet, ShapesDataModule

HOLDOUT = [["red", "triangle"], ["green", "square"]]


def test_same_seed_and_index_give_the_same_clip():
    a, b = MovingShapes(50, 64, 32, seed=3), MovingShapes(50, 64, 32, seed=3)
    for i in (0, 7, 49):
        assert torch.equal(a[i]["video"], b[i]["video"])
        assert a[i]["caption"] == b[i]["caption"]
    c = MovingShapes(50, 64, 32, seed=4)
    assert not all(torch.equal(a[i]["video"], c[i]["video"]) for i in range(5))


def test_clip_is_the_same_motion_at_any_size_and_length():
    small, big = MovingShapes(20, 64, 16, seed=1), MovingShapes(20, 128, 32, seed=1)
    for i in range(5):
        s, b = small[i], big[i]
        assert s["caption"] == b["caption"]
        assert s["video"].shape == (3, 16, 64, 64) and b["video"].shape == (3, 32, 128, 128)
        # first and last frames agree once the big clip is downsampled
        down = torch.nn.functional.avg_pool2d(b["video"][:, [0, -1]], 2)
        assert (down - s["video"][:, [0, -1]]).abs().mean() < 0.03


def test_values_in_range_and_background_dark():
    ds = MovingShapes(20, 64, 8)
    for i in range(10):
        v = ds[i]["video"]
        assert v.dtype == torch.float32 and v.min() >= -1 and v.max() <= 1
        # the background (the colour of most pixels) is dark; the shape is saturated
        px = ((v[:, 0] + 1) / 2).flatten(1).T                       # [H*W, 3]
        values, counts = px.unique(dim=0, return_counts=True)
        assert values[counts.argmax()].max() <= 0.15 + 1e-6
        assert px.max(0).values.max() >= 0.9


def test_caption_grammar_names_the_attributes():
    ds = MovingShapes(300, 64, 4, seed=2)
    templates = set()
    for i in range(300):
        c = ds.clip(i)
        cap = c.caption
        assert c.color in cap.split()
        assert any(w in cap.split() for w in SHAPE_WORDS[c.shape])
        assert any(cap.endswith(p) for p in DIRECTION_PHRASES[c.direction])
        templates.add(" ".join(w for w in cap.split() if w in ("a", "the", "is", "there", "in", "that")))
    assert len(templates) >= 4  # several templates are in use


def test_motion_goes_the_way_the_caption_says_and_stays_in_frame():
    ds = MovingShapes(200, 64, 16, seed=5)
    for i in range(40):
        c = ds.clip(i)
        frames = render_clip(c, 16, 64)
        bg = np.asarray(c.background, np.float32)
        mask = np.abs(frames - bg).sum(-1) > 0.5        # [T, H, W]
        ys, xs = np.indices((64, 64))
        cx = [(xs * m).sum() / m.sum() for m in mask]
        cy = [(ys * m).sum() / m.sum() for m in mask]
        dx, dy = cx[-1] - cx[0], cy[-1] - cy[0]
        expect = {"left": (dx < -10), "right": (dx > 10), "up": (dy < -10), "down": (dy > 10)}
        assert expect[c.direction], (c, dx, dy)
        # never touches the border
        assert not mask[:, 0].any() and not mask[:, -1].any()
        assert not mask[:, :, 0].any() and not mask[:, :, -1].any()


def test_held_out_pairs_never_appear_in_training():
    ds = MovingShapes(5000, 64, 4, seed=0, holdout=HOLDOUT)
    held = {("red", "triangle"), ("green", "square")}
    seen = {(ds.clip(i).color, ds.clip(i).shape) for i in range(2000)}
    assert not seen & held
    assert len(seen) == len(COLORS) * len(SHAPES) - 2
    only = MovingShapes(100, 64, 4, holdout=HOLDOUT, exclude=False)
    assert {(only.clip(i).color, only.clip(i).shape) for i in range(100)} == held


def test_prompt_set_covers_every_combination_and_flags_held_out():
    ps = PromptSet(HOLDOUT, per_prompt=2)
    assert len(ps) == len(COLORS) * len(SHAPES) * len(DIRECTIONS) * 2
    held = [it for it in ps.items if it["heldout"]]
    assert len(held) == 2 * len(DIRECTIONS) * 2
    assert all(it["caption"].startswith(("a red triangle", "a green square")) for it in held)
    assert len({it["seed"] for it in ps.items}) == len(ps)


@pytest.mark.parametrize("bad", [[["pink", "circle"]], [["red", "hexagon"]], [["red"]]])
def test_bad_holdout_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="holdout"):
        parse_holdout(bad)
    with pytest.raises(ValueError):
        ShapesDataModule(holdout=bad)


def test_datamodule_batches():
    dm = ShapesDataModule(resolution=64, frames=8, batch_size=4, train_size=16, num_workers=0)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (4, 3, 8, 64, 64)
    assert len(batch["caption"]) == 4
    val = next(iter(dm.val_dataloader()))
    assert {"caption", "seed", "color", "shape", "direction", "heldout"} <= set(val)
