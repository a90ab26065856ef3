"""Datasets of real clips: :class:`VideoClips` (training and evaluation clips sampled from scanned
entries), :class:`RealClips` (uint8 clips for real-data statistics), :class:`PromptItems` (validation
prompts), the epoch-aware :class:`EpochIndexSampler` and the dataset :func:`fingerprint`. Every random
choice is a function of ``(seed, item)``; a file that fails to decode is replaced by another item."""
from __future__ import annotations

import hashlib
import math
import os
import warnings
from collections import Counter
from typing import Iterable, Optional, Sequence

import numpy as np
from torch.utils.data import Dataset

from ..io import from_uint8
from ..resumable import EpochShuffle
from .decode import fit_frames, read_frames
from .entry import Entry, ReadError


FAULTS_KEY = "faults"


class _Fallback(Dataset):
    """``__getitem__`` that survives files failing to decode: warn once per file (per process),
    count it in ``failures``, and load a substitute item drawn from ``(seed, i, attempt)``.

    Every item also carries ``"faults"``: the paths that failed on the way to it, one per line
    ("" when none). Worker processes keep their own ``failures``; the item is how a failure in a
    worker reaches the main process, where the training module sums them over the workers (and
    the ranks) into one summary per epoch."""
    retries = 8
    space = 1 << 62  # indices a substitute may take

    def __getitem__(self, i: int) -> dict:
        return self.fetch(i)

    def fetch(self, i: int, *args) -> dict:
        """``self.load(i, *args)``, or that of a substitute item when its file fails to decode."""
        j, failed = i, []
        for attempt in range(self.retries + 1):
            try:
                return {**self.load(j, *args), FAULTS_KEY: "\n".join(failed)}
            except ReadError as err:
                failed.append(self.entry_for(j).path)
                self.note_failure(j, err)
            j = int(np.random.default_rng([self.seed, i, attempt, 0xFA11]).integers(self.space))
        raise RuntimeError(f"video data: {self.retries + 1} clips in a row failed to decode "
                           f"({len(self.failures)} files so far); the dataset looks damaged: run "
                           "gan-video-prepare on it to find the bad files")

    def note_failure(self, j: int, err: Exception) -> None:
        """Count a failed decode of item ``j``'s file; warn once per file (per process)."""
        path = self.entry_for(j).path
        self.failures[path] += 1
        if path not in self._warned:
            self._warned.add(path)
            warnings.warn(f"video data: cannot decode {err}; using another clip instead "
                          "(this file is reported once)", RuntimeWarning, stacklevel=3)

    def _init_fallback(self, seed: int) -> None:
        self.seed, self.failures, self._warned = seed, Counter(), set()


class VideoClips(_Fallback):
    """Clips of ``frames`` frames ``stride`` apart from scanned entries.

    Item ``i`` may be any non-negative integer: ``i % len(self)`` picks the video and ``i`` seeds the
    random choices (start, crop position, flip, caption variant), so with :class:`EpochIndexSampler`
    (``i = epoch * len + position``) each epoch sees other clips and a resumed run the same ones.
    With ``train=False`` the start is the middle of the video, the crop centred, no flip and the
    first caption: the same clip for every ``i`` of a video.

    Items: ``{"video": float32 [3, T, resolution, resolution] in [-1, 1], "caption": str,
    "index": int (the entry), "start": int (first frame of the clip in the entry), "faults": str}``.
    """

    def __init__(self, entries: Sequence[Entry], resolution: int, frames: int, stride: int = 1,
                 train: bool = True, hflip: bool = False, seed: int = 0, sparse: int = 0):
        if not entries:
            raise ValueError("VideoClips needs at least one video")
        if frames < 1 or stride < 1:
            raise ValueError(f"frames ({frames}) and stride ({stride}) must be >= 1")
        if sparse and not 1 <= sparse <= frames:
            raise ValueError(f"data.sparse_frames {sparse} must be between 1 and data.frames {frames} (0: every frame)")
        self.entries, self.resolution, self.frames, self.stride = list(entries), resolution, frames, stride
        self.train, self.hflip, self.sparse = train, hflip, sparse
        self.span = (frames - 1) * stride + 1
        self._init_fallback(seed)

    def __len__(self) -> int:
        return len(self.entries)

    def entry_for(self, i: int) -> Entry:
        return self.entries[i % len(self.entries)]

    def params(self, i: int) -> dict:
        """The clip of item ``i``: entry, start frame, crop fractions, flip and caption."""
        e = self.entry_for(i)
        room = max(0, e.frames - self.span)
        if not self.train:
            return dict(entry=e, start=room // 2, crop=None, flip=False, caption=e.captions[0])
        rng = np.random.default_rng([self.seed, i])
        start, crop, flip = int(rng.integers(room + 1)), tuple(rng.random(2)), bool(rng.random() < 0.5)
        return dict(entry=e, start=start, crop=crop, flip=flip and self.hflip,
                    caption=e.captions[int(rng.integers(len(e.captions)))])

    def load(self, i: int, which: Optional[Sequence[int]] = None) -> dict:
        """Item ``i``: every clip frame, or only frames ``which`` (positions in the clip)."""
        p = self.params(i)
        which = range(self.frames) if which is None else which
        frames = read_frames(p["entry"], [p["start"] + self.stride * j for j in which])
        video = fit_frames(frames, self.resolution, p["crop"], p["flip"])
        return {"video": from_uint8(video), "caption": p["caption"], "index": i % len(self.entries),
                "start": p["start"]}

    def __getitem__(self, i: int) -> dict:
        if not self.sparse:
            return super().__getitem__(i)
        # sparse: nothing is decoded here; SparseBatch decodes the frames the batch shares
        return {"item": i}

    def sparse_index(self, first: int) -> list[int]:
        """The clip positions a sparse batch decodes: ``sparse`` distinct frames at random, in
        order, drawn from ``(seed, first item of the batch)``, so a resumed run draws the same."""
        rng = np.random.default_rng([self.seed, first, 0x5BA5])
        return sorted(int(j) for j in rng.choice(self.frames, self.sparse, replace=False))


class SparseBatch:
    """The collate function of a sparse :class:`VideoClips` (``sparse: k``): decodes, for every clip
    of the batch, only the ``k`` frames :meth:`VideoClips.sparse_index` draws for the batch (a
    sparse discriminator reads nothing else), with the same fallback for files that fail to decode.
    The batch is the usual one with ``video`` ``[B, 3, k, H, W]`` and ``frame_index`` ``[k]``."""

    def __init__(self, dataset: VideoClips):
        self.dataset = dataset

    def __call__(self, items: list[dict]) -> dict:
        import torch
        from torch.utils.data import default_collate

        ds = self.dataset
        which = ds.sparse_index(items[0]["item"])
        batch = default_collate([ds.fetch(it["item"], which) for it in items])
        batch["frame_index"] = torch.tensor(which, dtype=torch.long)
        return batch


class RealClips(_Fallback):
    """``count`` clips of ``frames`` frames every ``stride`` frames (consecutive at 1, the FVD
    standard; the training stride to compare motion of the same speed) for real-data statistics
    (FVD): centre crop,
    no flip, the first caption. Clip ``j`` is video ``j % n`` and, over the ``ceil(count / n)``
    passes, pass ``j // n`` starts in its own part of the video (so repeated videos give other
    clips); the position inside that part comes from ``(seed, j)``.

    Items: ``{"video": uint8 [frames, resolution, resolution, 3], "caption": str, "faults": str}``.
    """

    def __init__(self, entries: Sequence[Entry], resolution: int, frames: int, count: int, seed: int = 0,
                 stride: int = 1):
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        span = (frames - 1) * stride + 1
        self.entries = [e for e in entries if e.frames >= span]
        if not self.entries:
            raise ValueError(f"no video has {span} frames for real clips of {frames} frames at stride {stride} "
                             f"(longest: {max((e.frames for e in entries), default=0)}); ask for fewer frames")
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        self.resolution, self.frames, self.count, self.stride, self.span = resolution, frames, count, stride, span
        self.space = count
        self._init_fallback(seed)

    def __len__(self) -> int:
        return self.count

    def entry_for(self, j: int) -> Entry:
        return self.entries[j % len(self.entries)]

    def start(self, j: int) -> int:
        n, e = len(self.entries), self.entry_for(j)
        passes, room = math.ceil(self.count / n), e.frames - self.span
        u = float(np.random.default_rng([self.seed, j, 0xFD]).random())
        return min(room, int((j // n + u) / passes * (room + 1)))

    def load(self, j: int) -> dict:
        if not 0 <= j < self.count:
            raise IndexError(j)
        e, s = self.entry_for(j), self.start(j)
        video = fit_frames(read_frames(e, range(s, s + self.span, self.stride)), self.resolution)
        return {"video": video, "caption": e.captions[0]}


class PromptItems(Dataset):
    """Validation items ``{"caption": str, "seed": int}``: ``per_prompt`` seeds per prompt."""

    def __init__(self, prompts: Sequence[str], per_prompt: int = 1, seed: int = 1000):
        if not prompts:
            raise ValueError("no validation prompts; set data.val_prompts")
        self.items = [{"caption": p, "seed": seed + i * per_prompt + k}
                      for i, p in enumerate(prompts) for k in range(per_prompt)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


class EpochIndexSampler(EpochShuffle):
    """:class:`EpochShuffle` yielding ``epoch * size + position``: the dataset takes ``i % size`` as
    the item and ``i`` as the seed of its random choices, so each epoch samples other clips."""

    def __iter__(self):
        positions = self.positions()          # may move to the resumed epoch: read the epoch after it
        base = self.epoch * self.size
        return (base + j for j in positions)


def fingerprint(entries: Iterable[Entry], root: Optional[str] = None) -> str:
    """A short hash of the files, segments and frame counts of a dataset (paths relative to root)."""
    h = hashlib.sha1()
    for e in entries:
        rel = os.path.relpath(e.path, root) if root else e.path
        h.update(f"{rel}|{e.start}|{e.end}|{e.first}|{e.frames}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:12]
