"""Prepared shards on disk, a leaf of the data layer: the format, its writer and its read side.

A shard folder holds::

    index.json          {"format": "gan_video-shards", "version": 1, "size": S, "shards": [...],
                         "videos": [{"shard": k, "offset": o, "length": n, "captions": [...],
                                     "source": "class/video.mp4", "label": "...", "fps": 25.0,
                                     "start": null, "end": null}, ...], "skipped": {...}}
    shard_00000.npy     uint8 [N_frames, S, S, 3]: every frame of several videos back to back
    shard_00001.npy     ...

:class:`ShardWriter` writes them (fed by :func:`.prepare.prepare_dataset`, which decodes a dataset
with the same resize and crop that training applies, so shards and videos give the same clips);
:func:`load_index`, :func:`shard_paths` and :func:`open_shard` read them (for
:func:`.video.shard_entries` and :func:`.video.read_frames`). Captions are stored expanded (class
captions through their templates); a video never spans two shards.
"""
from __future__ import annotations

import functools
import json
import struct
from pathlib import Path

import numpy as np

from ..cache import atomic_write

INDEX = "index.json"
FORMAT_TAG = "gan_video-shards"
_HEADER_BYTES = 128  # a fixed .npy header, rewritten with the final shape when the shard is closed


def _npy_header(shape: tuple) -> bytes:
    body = ("{'descr': '|u1', 'fortran_order': False, 'shape': %r, }" % (tuple(shape),)).encode("latin1")
    pad = _HEADER_BYTES - 10 - len(body) - 1
    if pad < 0:
        raise ValueError(f"shard shape {shape} does not fit the .npy header")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", _HEADER_BYTES - 10) + body + b" " * pad + b"\n"


class ShardWriter:
    """Streams videos' frames into ``.npy`` shards of about ``shard_bytes`` and writes ``index.json``
    last (a folder without it is an unfinished preparation)."""

    def __init__(self, out_dir: str, size: int, shard_bytes: int = 1 << 30, overwrite: bool = False):
        self.out, self.size, self.shard_bytes = Path(out_dir), size, shard_bytes
        if (self.out / INDEX).exists():
            if not overwrite:
                raise FileExistsError(f"{str(self.out)!r} already holds prepared shards; pass "
                                      "--overwrite (overwrite=True) to replace them or choose another --out")
            for old in json.loads((self.out / INDEX).read_text()).get("shards", []):
                (self.out / old["file"]).unlink(missing_ok=True)
            (self.out / INDEX).unlink()
        self.out.mkdir(parents=True, exist_ok=True)
        self.shards: list[dict] = []
        self.videos: list[dict] = []
        self._file = None

    def _roll(self) -> None:
        self._close_shard()
        name = f"shard_{len(self.shards):05d}.npy"
        self._file = open(self.out / name, "wb")
        self._file.write(b"\0" * _HEADER_BYTES)
        self.shards.append({"file": name, "frames": 0})

    def _close_shard(self) -> None:
        if self._file is not None:
            self._file.seek(0)
            self._file.write(_npy_header((self.shards[-1]["frames"], self.size, self.size, 3)))
            self._file.close()
            self._file = None

    def add(self, frames: np.ndarray, **meta) -> None:
        """Append one video, uint8 ``[n, S, S, 3]``, with its metadata (captions, source, ...)."""
        if frames.dtype != np.uint8 or frames.shape[1:] != (self.size, self.size, 3):
            raise ValueError(f"shard frames must be uint8 [n, {self.size}, {self.size}, 3], got "
                             f"{frames.dtype} {list(frames.shape)}")
        shard = self.shards[-1] if self.shards else None
        if shard is None or (shard["frames"] and (shard["frames"] + len(frames)) * frames[0].nbytes > self.shard_bytes):
            self._roll()
            shard = self.shards[-1]
        self._file.write(np.ascontiguousarray(frames).tobytes())
        self.videos.append({"shard": len(self.shards) - 1, "offset": shard["frames"], "length": len(frames), **meta})
        shard["frames"] += len(frames)

    def close(self, **extra) -> dict:
        """Finish the last shard and write ``index.json``; returns the index."""
        self._close_shard()
        index = {"format": FORMAT_TAG, "version": 1, "size": self.size, "shards": self.shards,
                 "videos": self.videos, **extra}
        atomic_write(self.out / INDEX, json.dumps(index, indent=1, ensure_ascii=False))
        return index


def load_index(root: str) -> dict:
    """Read and check a shard folder's ``index.json``."""
    path = Path(root) / INDEX
    if not path.is_file():
        raise FileNotFoundError(f"{str(root)!r} has no {INDEX}: it is not a prepared shard folder; "
                                "write one with tools/prepare_dataset.py --root <videos> --out <folder>")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{str(path)!r} is damaged ({err}); prepare the shards again") from None
    if index.get("format") != FORMAT_TAG or index.get("version") != 1:
        raise ValueError(f"{str(path)!r} is not a version-1 gan_video shard index; prepare the shards again")
    return index


def shard_paths(root: str, index: dict) -> list[str]:
    """The resolved paths of a shard folder's ``.npy`` files, each checked against ``index``."""
    files = []
    for shard in index["shards"]:
        path = Path(root) / shard["file"]
        try:
            arr = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise ValueError(f"shard {str(path)!r} cannot be read ({err}); prepare the shards again") from None
        if arr.shape != (shard["frames"], index["size"], index["size"], 3) or arr.dtype != np.uint8:
            raise ValueError(f"shard {str(path)!r} holds {arr.dtype} {list(arr.shape)}, the index says "
                             f"{shard['frames']} frames of {index['size']}px; prepare the shards again")
        files.append(str(path.resolve()))
    return files


@functools.lru_cache(maxsize=64)
def open_shard(path: str) -> np.ndarray:
    """A shard's frames, memory-mapped (once per process and file)."""
    return np.load(path, mmap_mode="r")
