"""The built-in captioned moving-shapes dataset (DESIGN.md section 3).

One shape per clip (circle, square or triangle) in a saturated colour on a uniform dark background,
moving left, right, up or down in a straight line at constant speed and staying inside the frame.
Every clip is a pure function of ``(seed, index)``: the random draw happens in normalised units, so
the same sample renders the same motion at any resolution and clip length.

Clips are float tensors ``[3, T, H, W]`` in ``[-1, 1]`` (the project's one video convention).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

COLORS: dict[str, tuple[float, float, float]] = {
    "red": (1.0, 0.1, 0.1),
    "green": (0.1, 0.9, 0.1),
    "blue": (0.15, 0.3, 1.0),
    "yellow": (1.0, 0.95, 0.1),
    "cyan": (0.1, 0.95, 0.95),
    "magenta": (1.0, 0.1, 1.0),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")
# unit motion vector per direction in image coordinates (x to the right, y downwards)
DIRECTION_VECTORS: dict[str, tuple[float, float]] = {
    "left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}

# Words that may stand for each attribute in a caption.
SHAPE_WORDS = {"circle": ("circle", "disc", "ball"), "square": ("square", "box"),
               "triangle": ("triangle",)}
DIRECTION_PHRASES = {
    "left": ("left", "to the left", "leftward"),
    "right": ("right", "to the right", "rightward"),
    "up": ("up", "upward", "towards the top"),
    "down": ("down", "downward", "towards the bottom"),
}
TEMPLATES = (
    "a {color} {shape} moving {dir}",
    "the {color} {shape} moves {dir}",
    "a {color} {shape} is going {dir}",
    "{color} {shape} sliding {dir}",
    "a {shape} in {color} travels {dir}",
    "there is a {color} {shape} that moves {dir}",
)

Pair = tuple[str, str]


def caption_for(color: str, shape: str, direction: str, template: int = 0, shape_word: int = 0,
                dir_phrase: int = 0) -> str:
    words = SHAPE_WORDS[shape]
    phrases = DIRECTION_PHRASES[direction]
    return TEMPLATES[template % len(TEMPLATES)].format(
        color=color, shape=words[shape_word % len(words)], dir=phrases[dir_phrase % len(phrases)])


def canonical_prompt(color: str, shape: str, direction: str) -> str:
    """The prompt used by evaluation: the first template with the plain words."""
    return caption_for(color, shape, direction)


def parse_holdout(holdout: Iterable[Sequence[str]] | None) -> frozenset[Pair]:
    """Validate a list of (colour, shape) pairs and return them as a set."""
    pairs = set()
    for item in holdout or ():
        if isinstance(item, str):
            item = item.replace("-", " ").split()
        if len(item) != 2:
            raise ValueError(f"holdout entry {item!r} is not a (colour, shape) pair; write it as "
                             "[red, triangle]")
        color, shape = str(item[0]).lower(), str(item[1]).lower()
        if color not in COLORS:
            raise ValueError(f"holdout colour {color!r} is unknown; choose from {sorted(COLORS)}")
        if shape not in SHAPES:
            raise ValueError(f"holdout shape {shape!r} is unknown; choose from {list(SHAPES)}")
        pairs.add((color, shape))
    if len(pairs) >= len(COLORS) * len(SHAPES):
        raise ValueError("holdout removes every (colour, shape) pair; keep at least one for training")
    return frozenset(pairs)


def all_pairs() -> list[Pair]:
    return [(c, s) for c in COLORS for s in SHAPES]


@dataclass(frozen=True)
class ShapeClip:
    """The random draw behind one clip, in normalised units (frame = unit square)."""
    color: str
    shape: str
    direction: str
    caption: str
    size: float          # half-extent of the shape, fraction of the frame side
    start: tuple[float, float]  # centre at t=0
    distance: float      # distance travelled over the clip, fraction of the frame side
    background: tuple[float, float, float]
    angle: float         # rotation of squares / triangles, radians (fixed over the clip)
    wording: tuple[int, int, int] = (0, 0, 0)   # template, shape word, direction phrase of the caption

    def centre(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = DIRECTION_VECTORS[self.direction]
        return self.start[0] + dx * self.distance * t, self.start[1] + dy * self.distance * t


def draw_clip(seed: int, index: int, pairs: Sequence[Pair],
              direction: str | None = None, caption: str | None = None) -> ShapeClip:
    """Deterministically draw the parameters of clip ``index`` among the allowed (colour, shape) pairs."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index) & 0xFFFFFFFF, 0x5A4E])
    color, shape = pairs[int(rng.integers(len(pairs)))]
    d = DIRECTIONS[int(rng.integers(len(DIRECTIONS)))]
    direction = direction or d
    template, shape_word, dir_phrase = (int(v) for v in rng.integers(0, 1000, size=3))
    size = float(rng.uniform(0.09, 0.15))
    distance = float(rng.uniform(0.3, 0.55))
    margin = size * 1.25 + 0.02  # corners of a rotated square or triangle reach 1.2 * size
    # position along the motion axis: the whole path stays inside [margin, 1 - margin]
    lo, hi = margin, 1.0 - margin - distance
    along = float(rng.uniform(lo, hi))
    across = float(rng.uniform(margin, 1.0 - margin))
    if direction in ("right", "down"):
        a0 = along
    else:
        a0 = 1.0 - along
    start = (a0, across) if direction in ("left", "right") else (across, a0)
    bg = tuple(float(v) for v in rng.uniform(0.0, 0.15, size=3))
    angle = float(rng.uniform(-0.3, 0.3))
    if caption is None:
        caption = caption_for(color, shape, direction, template, shape_word, dir_phrase)
    return ShapeClip(color, shape, direction, caption, size, start, distance, bg, angle,
                     (template, shape_word, dir_phrase))


# every value of each attribute a caption names (tools/probe_discriminator.py swaps them one at a time)
ATTRIBUTE_VALUES = {"color": tuple(COLORS), "shape": SHAPES, "direction": DIRECTIONS}


# area of each shape in units of size**2 (size = the half-extent ``ShapeClip.size``)
SHAPE_AREA = {"circle": math.pi, "square": 1.7 ** 2, "triangle": 3 * math.sqrt(3) * 0.6 ** 2}


def shape_coverage(shape: str, x: np.ndarray, y: np.ndarray, size: float, angle: float,
                   resolution: int) -> np.ndarray:
    """Pixel coverage in [0, 1] of ``shape`` centred at the origin of the offsets ``x``, ``y`` (frame
    units, broadcast together), with half-extent ``size`` and rotation ``angle``: the shape's signed
    distance turned into coverage by a one-pixel linear ramp (anti-aliased edges without supersampling)."""
    ca, sa = math.cos(angle), math.sin(angle)
    xr, yr = x * ca + y * sa, -x * sa + y * ca
    if shape == "circle":
        inside = size - np.sqrt(xr * xr + yr * yr)
    elif shape == "square":
        inside = size * 0.85 - np.maximum(np.abs(xr), np.abs(yr))
    elif shape == "triangle":  # upward-pointing equilateral triangle: distance to the nearest edge
        edge = np.maximum(np.maximum(yr, 0.866 * xr - 0.5 * yr), -0.866 * xr - 0.5 * yr)
        inside = size * 0.6 - edge
    else:
        raise ValueError(f"unknown shape {shape!r}; choose from {list(SHAPES)}")
    return np.clip(inside * resolution + 0.5, 0.0, 1.0)


def render_clip(clip: ShapeClip, frames: int, resolution: int,
                times: np.ndarray | None = None) -> np.ndarray:
    """Render ``clip`` as float32 ``[T, H, W, 3]`` in ``[0, 1]``; ``times`` (in [0, 1]) renders
    only those instants of the clip instead of ``frames`` evenly spaced ones.

    Edges are anti-aliased by turning the shape's signed distance into pixel coverage (a one-pixel
    linear ramp), which costs one pass over the pixels instead of supersampling.
    """
    coords = (np.arange(resolution, dtype=np.float32) + 0.5) / resolution
    if times is not None:
        t = np.asarray(times, np.float32)
    else:
        t = np.linspace(0.0, 1.0, frames, dtype=np.float32) if frames > 1 else np.zeros(1, np.float32)
    cx, cy = clip.centre(t)
    x = coords[None, None, :] - cx[:, None, None].astype(np.float32)   # [T, 1, W]
    y = coords[None, :, None] - cy[:, None, None].astype(np.float32)   # [T, H, 1]
    coverage = shape_coverage(clip.shape, x, y, clip.size, clip.angle, resolution)
    color = np.asarray(COLORS[clip.color], np.float32)
    bg = np.asarray(clip.background, np.float32)
    return bg + coverage[..., None] * (color - bg)


class MovingShapes(Dataset):
    """Captioned moving shapes; item ``i`` is ``{"video": [3,T,H,W] in [-1,1], "caption": str, ...}``.

    Args:
        size: number of clips (the dataset is procedural, so this only sets the epoch length).
        resolution: frame side in pixels.
        frames: clip length.
        seed: dataset seed; clip ``i`` of a seed is the same at every resolution and length.
        holdout: (colour, shape) pairs this dataset never shows (``exclude=True``) or only shows
            (``exclude=False``, used to evaluate held-out combinations).
    """

    def __init__(self, size: int = 10000, resolution: int = 64, frames: int = 32, seed: int = 0,
                 holdout: Iterable[Sequence[str]] | None = None, exclude: bool = True):
        if size <= 0:
            raise ValueError(f"dataset size must be positive, got {size}")
        if resolution < 8:
            raise ValueError(f"resolution {resolution} is too small to draw a shape; use >= 8")
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        self.size, self.resolution, self.frames, self.seed = size, resolution, frames, seed
        self.holdout = parse_holdout(holdout)
        self.pairs = [p for p in all_pairs() if (p in self.holdout) != exclude]
        if not self.pairs:
            raise ValueError("no (colour, shape) pair is left to draw from")

    def __len__(self) -> int:
        return self.size

    def clip(self, index: int) -> ShapeClip:
        return draw_clip(self.seed, index, self.pairs)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.size:
            raise IndexError(index)
        c = self.clip(index)
        video = render_clip(c, self.frames, self.resolution)
        video = torch.from_numpy(video).permute(3, 0, 1, 2).mul_(2.0).sub_(1.0)
        return {"video": video, "caption": c.caption, "color": COLORS_INDEX[c.color],
                "shape": SHAPES.index(c.shape), "direction": DIRECTIONS.index(c.direction)}


COLORS_INDEX = {c: i for i, c in enumerate(COLORS)}
