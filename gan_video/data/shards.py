"""The ``.npy`` shards of gan_video before LitData, a leaf of the data layer: their read side only,
so that ``gan-video-prepare --format shards`` converts an old folder (training reads prepared data
from LitData chunks, :mod:`.streaming`). A shard folder holds::

    index.json          {"format": "gan_video-shards", "version": 1, "size": S, "shards": [...],
                         "videos": [{"shard": k, "offset": o, "length": n, "captions": [...],
                                     "source": "class/video.mp4", "label": "...", "fps": 25.0,
                                     "start": null, "end": null}, ...], "skipped": {...}}
    shard_00000.npy     uint8 [N_frames, S, S, 3]: every frame of several videos back to back
    shard_00001.npy     ...

:func:`load_index`, :func:`shard_paths` and :func:`open_shard` read them (for
:func:`.video.shard_entries` and :func:`.video.read_frames`). Captions are stored expanded (class
captions through their templates); a video never spans two shards.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np


INDEX = "index.json"
FORMAT_TAG = "gan_video-shards"


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
