"""Prepared shards: a video dataset pre-decoded to uint8 frames, so that training reads frames from
memory-mapped arrays instead of running codecs.

A shard folder holds::

    index.json          {"format": "gan_video-shards", "version": 1, "size": S, "shards": [...],
                         "videos": [{"shard": k, "offset": o, "length": n, "captions": [...],
                                     "source": "class/video.mp4", "label": "...", "fps": 25.0,
                                     "start": null, "end": null}, ...], "skipped": {...}}
    shard_00000.npy     uint8 [N_frames, S, S, 3]: every frame of several videos back to back
    shard_00001.npy     ...

Frames are resized so the short side is S and centre-cropped to a square by the same function that
training applies to decoded videos (:func:`video.fit_frames`), so a clip read from shards prepared at
the training resolution equals the evaluation clip decoded from the video, bit for bit. Captions are
stored expanded (class captions through their templates); a video never spans two shards.

``prepare_dataset`` (and ``tools/prepare_dataset.py``) writes them; ``VideoDataModule(format="shards",
root=<shard folder>)`` reads them.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import struct
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .video import (CaptionMap, Entry, ReadError, fit_frames, iter_decoded, list_videos,
                    read_frames)

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
        tmp = self.out / (INDEX + ".tmp")
        tmp.write_text(json.dumps(index, indent=1, ensure_ascii=False))
        os.replace(tmp, self.out / INDEX)
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


def shard_entries(root: str) -> list[Entry]:
    """The videos of a shard folder as :class:`Entry` ranges of its memory-mapped shards."""
    index = load_index(root)
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
    return [Entry(files[v["shard"]], "shard", tuple(v["captions"]), label=v.get("label", ""),
                  first=v["offset"], frames=v["length"], fps=v.get("fps") or 0.0, source=v.get("source", ""))
            for v in index["videos"]]


def video_frames(entry: Entry, size: int, max_frames: Optional[int] = None, chunk: int = 64) -> np.ndarray:
    """Every frame of an entry's segment (up to ``max_frames``), fitted to ``size`` (short side, centre
    crop): uint8 ``[n, size, size, 3]``. Video files are decoded in one pass, ``chunk`` frames at a time."""
    n = min(entry.frames, max_frames or entry.frames)
    out, buf = [], []
    if entry.kind == "video":
        for idx, frame in iter_decoded(entry.path, entry.first, entry.fps):
            if idx < entry.first:
                continue
            if idx >= entry.first + n:
                break
            buf.append(frame.to_ndarray(format="rgb24"))
            if len(buf) == chunk:
                out.append(fit_frames(np.stack(buf), size).numpy())
                buf = []
        if buf:
            out.append(fit_frames(np.stack(buf), size).numpy())
    else:
        for a in range(0, n, chunk):
            out.append(fit_frames(read_frames(entry, range(a, min(n, a + chunk))), size).numpy())
    if not out:
        raise ReadError(f"{entry.path}: no frame decoded")
    return np.concatenate(out)


def _prepare_one(args):
    entry, size, max_frames = args
    try:
        return video_frames(entry, size, max_frames)
    except ReadError as err:
        return str(err)


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def prepare_dataset(out: str, root: Optional[str] = None, size: int = 64, format: str = "auto",
                    caption_file: Optional[str] = None, class_captions: CaptionMap = None,
                    templates: Optional[Sequence[str]] = None, classes: Optional[Sequence[str]] = None,
                    min_frames: int = 1, max_frames: Optional[int] = None, shard_mb: int = 1024,
                    workers: int = 0, overwrite: bool = False, progress: bool = True) -> dict:
    """Pre-decode a dataset (any layout :func:`video.list_videos` reads) to shards in ``out``.

    Frames are resized so the short side is ``size`` and centre-cropped square. ``min_frames`` skips
    shorter videos (use at least the training clip's ``(frames - 1) * stride + 1``), ``max_frames``
    keeps only the first frames of long ones, ``workers`` decodes in that many processes. Returns
    ``{"out", "videos", "frames", "shards", "bytes", "skipped": {reason: count}, "summary"}`` and
    prints the summary of skipped inputs.
    """
    if size < 8:
        raise ValueError(f"--size {size} is too small; use the training resolution (e.g. 64)")
    fmt, entries, skips = list_videos(format, root, caption_file, class_captions, templates, classes,
                                      min_frames=max(1, min_frames), progress=progress)
    if fmt == "shards":
        raise ValueError(f"{root!r} already holds prepared shards; point --root at the original videos")
    base = Path(root) if root else Path(caption_file).resolve().parent  # sources are stored relative to it
    writer = ShardWriter(out, size, shard_mb << 20, overwrite)
    jobs = [(e, size, max_frames) for e in entries]
    pool = multiprocessing.get_context("fork").Pool(workers, _init_worker) if workers > 0 else None
    try:
        results = pool.imap(_prepare_one, jobs) if pool else map(_prepare_one, jobs)
        if progress:
            from tqdm import tqdm
            results = tqdm(results, total=len(jobs), desc=f"preparing {size}px shards", unit="video")
        for e, frames in zip(entries, results):
            if isinstance(frames, str):
                skips.add("failed to decode", e.name)
                continue
            source = os.path.relpath(e.path, base) if e.kind != "shard" else e.source
            writer.add(frames, captions=list(e.captions), source=source, label=e.label, fps=e.fps,
                       start=e.start, end=e.end)
    finally:
        if pool:
            pool.close()
            pool.join()
    if not writer.videos:
        raise ValueError(f"no video could be decoded: {skips.describe()}; check the files with "
                         "ffprobe or re-download them")
    index = writer.close(skipped=dict(skips.counts), created_from={
        "format": fmt, "root": str(root) if root else None, "caption_file": caption_file})
    summary = skips.summary(len(writer.videos))
    print(summary)
    total = sum(s["frames"] for s in index["shards"])
    return {"out": str(out), "videos": len(writer.videos), "frames": total, "shards": len(index["shards"]),
            "bytes": total * size * size * 3, "skipped": dict(skips.counts), "summary": summary}
