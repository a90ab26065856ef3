"""The data module of the built-in moving shapes (:mod:`.shapes`): procedural clips for training,
every (colour, shape, direction) prompt for validation, uint8 clips for real-data statistics.
Resumption and the DataLoaders come from :mod:`.resumable`."""
from __future__ import annotations

import itertools
from typing import Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .io import to_uint8
from .resumable import EpochShuffle, ResumableDataModule, data_loader
from .shapes import (COLORS, COLORS_INDEX, DIRECTION_PHRASES, DIRECTIONS, SHAPE_WORDS, SHAPES, TEMPLATES,
                     MovingShapes, all_pairs, canonical_prompt, caption_for, parse_holdout, render_clip)

DEFAULT_HOLDOUT = [["red", "triangle"], ["green", "square"], ["blue", "circle"]]
REAL_CLIPS_SEED = 7_000_000  # seeds of real_clips(): a range that training (seed 0, 1, ...) never uses


class PromptSet(Dataset):
    """Fixed evaluation prompts: every (colour, shape, direction) in the canonical template, each with
    ``per_prompt`` seeds; items carry the attribute labels and whether the pair was held out."""

    def __init__(self, holdout, per_prompt: int = 1, seed: int = 1000,
                 directions: tuple[str, ...] = DIRECTIONS):
        holdout = parse_holdout(holdout)
        self.items = []
        for i, (color, shape, direction) in enumerate(itertools.product(COLORS, SHAPES, directions)):
            for k in range(per_prompt):
                self.items.append({
                    "caption": canonical_prompt(color, shape, direction),
                    "seed": seed + i * per_prompt + k, "color": COLORS_INDEX[color],
                    "shape": SHAPES.index(shape), "direction": DIRECTIONS.index(direction),
                    "heldout": (color, shape) in holdout})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


class ShapesDataModule(ResumableDataModule):
    """Serves :class:`MovingShapes` for training and :class:`PromptSet` for validation.

    Args:
        resolution: frame size in pixels (64 * 2^k).
        frames: clip length.
        batch_size: clips per training batch.
        train_size: clips per epoch (the data is procedural; epochs only pace validation).
        seed: dataset seed.
        holdout: (colour, shape) pairs never shown in training; validation asks for them.
        val_per_prompt: validation clips per (colour, shape, direction) prompt.
        num_workers: DataLoader worker processes that render clips.
    """

    def __init__(self, resolution: int = 64, frames: int = 32, batch_size: int = 16,
                 train_size: int = 100_000, seed: int = 0,
                 holdout: Optional[list[list[str]]] = None, val_per_prompt: int = 1,
                 num_workers: int = 1):
        super().__init__()
        self.save_hyperparameters()
        self.holdout = [list(p) for p in (DEFAULT_HOLDOUT if holdout is None else holdout)]
        parse_holdout(self.holdout)  # fail early on a bad pair

    def setup(self, stage: Optional[str] = None) -> None:
        hp = self.hparams
        self.train_set = MovingShapes(hp.train_size, hp.resolution, hp.frames, hp.seed, self.holdout)
        self.val_set = PromptSet(self.holdout, hp.val_per_prompt)

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        sampler = self.resumed(EpochShuffle(len(self.train_set), hp.seed))
        return data_loader(self.train_set, hp.batch_size, sampler, hp.num_workers, seed=hp.seed)

    # -- for metrics and text encoders (the same methods as VideoDataModule)
    def all_captions(self) -> list[str]:
        """Every caption the shapes can carry: each template with each synonym, for every colour,
        shape and direction (held-out pairs included: validation asks for them)."""
        return sorted({caption_for(c, s, d, t, w, p) for c, s in all_pairs() for d in DIRECTIONS
                       for t in range(len(TEMPLATES)) for w in range(len(SHAPE_WORDS[s]))
                       for p in range(len(DIRECTION_PHRASES[d]))})

    def real_clips(self, frames: int, count: int, seed: int = 0, stride: int = 1) -> Dataset:
        """``count`` clips of the training distribution (held-out pairs excluded) with seeds of their
        own, as ``{"video": uint8 [T, H, W, 3], "caption": str}``: frames ``0, stride, ...,
        (frames - 1) * stride`` of a training-length clip (``data.frames``), so that their motion
        per frame is the training clips' motion."""
        return RealShapeClips(MovingShapes(count, self.hparams.resolution, self.hparams.frames,
                                           REAL_CLIPS_SEED + seed, self.holdout), frames, stride)

    def dataset_id(self) -> str:
        """``shapes-<resolution>px-<frames>f-holdout-<pairs>``: what real-data statistics depend on
        (the clip length sets the motion per frame)."""
        pairs = "_".join(f"{c}-{s}" for c, s in sorted(parse_holdout(self.holdout))) or "none"
        return f"shapes-{self.hparams.resolution}px-{self.hparams.frames}f-holdout-{pairs}"


class RealShapeClips(Dataset):
    """Frames ``0, stride, ...`` of the clips of ``shapes`` as ``{"video": uint8 [T, H, W, 3], "caption"}``."""

    def __init__(self, shapes: MovingShapes, frames: int, stride: int = 1):
        span = (frames - 1) * stride + 1
        if frames < 1 or stride < 1 or span > shapes.frames:
            raise ValueError(f"{frames} frames at stride {stride} span {span} frames, more than the "
                             f"training clips' {shapes.frames}; ask for fewer frames or a smaller stride")
        self.shapes, self.frames, self.stride = shapes, frames, stride
        self.times = np.arange(frames, dtype=np.float32) * stride / max(shapes.frames - 1, 1)

    def __len__(self) -> int:
        return len(self.shapes)

    def __getitem__(self, i: int) -> dict:
        c = self.shapes.clip(i)
        video = torch.from_numpy(render_clip(c, self.frames, self.shapes.resolution, times=self.times))
        return {"video": torch.from_numpy(to_uint8(video.permute(3, 0, 1, 2) * 2 - 1)), "caption": c.caption}
