"""What a real-video candidate is: :class:`Entry` (a file, frame folder, strip or shard range), the
:class:`Skips` tally of unusable ones, the two errors (:class:`Unusable` at scan time,
:class:`ReadError` when a clip fails to decode), the file kinds by extension and the natural order
of a frame folder's images."""
from __future__ import annotations

import functools
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

VIDEO_EXTS = frozenset(".mp4 .m4v .mov .avi .mkv .webm .mpg .mpeg .flv .wmv .ogv .3gp .ts .gif".split())
IMAGE_EXTS = frozenset(".jpg .jpeg .png .bmp .webp".split())


@dataclass
class Entry:
    """One usable (or candidate) video: a file, a folder of frames, a strip image or a shard range."""
    path: str                    # video file, frame folder, strip image, or shard .npy
    kind: str                    # video | frames | strip | shard
    captions: tuple[str, ...]    # variants: training draws one, evaluation uses the first
    label: str = ""              # class folder name, if any
    start: Optional[float] = None  # segment of a video file, in seconds
    end: Optional[float] = None
    first: int = 0               # index of the segment's first frame in the file (shards: offset)
    frames: int = 0              # frames in the segment (known after the scan)
    fps: float = 0.0
    source: str = ""             # where a shard's frames came from (for reports)

    @property
    def name(self) -> str:
        """``parent/file``: short enough for reports, long enough to find the file."""
        p = Path(self.source or self.path)
        return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


@dataclass
class Skips:
    """Unusable inputs counted by reason, with the first few names for each reason."""
    counts: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=lambda: defaultdict(list))

    def add(self, reason: str, name: str) -> None:
        self.counts[reason] += 1
        if len(self.examples[reason]) < 3 and name not in self.examples[reason]:
            self.examples[reason].append(name)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def describe(self) -> str:
        parts = []
        for reason, n in self.counts.most_common():
            names = ", ".join(self.examples[reason]) + (", ..." if n > 3 else "")
            parts.append(f"{n} {reason} ({names})")
        return ", ".join(parts)

    def summary(self, usable: int) -> str:
        """``video data: 120 usable, skipped 3: 1 zero-byte (a/x.mp4), 2 corrupt (...)``."""
        if not self.total:
            return f"video data: {usable} usable, none skipped"
        return f"video data: {usable} usable, skipped {self.total}: {self.describe()}"


class Unusable(Exception):
    """A candidate that cannot be used; ``reason`` is the short label counted in the summary."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class ReadError(RuntimeError):
    """A video that passed the scan but failed to decode a clip."""


def natural_key(p: Union[Path, str]) -> list:
    """Sort key of a file name with numbers compared as numbers (``2.png`` before ``10.png``)."""
    name = p.name if isinstance(p, Path) else p
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


@functools.lru_cache(maxsize=4096)
def list_images(folder: str) -> tuple[str, ...]:
    """The image files of a frame folder, in natural order (``2.png`` before ``10.png``)."""
    names = [n for n in os.listdir(folder) if not n.startswith(".") and Path(n).suffix.lower() in IMAGE_EXTS]
    return tuple(os.path.join(folder, n) for n in sorted(names, key=natural_key))
