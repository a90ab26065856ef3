"""Preparing shards: decode a dataset of any layout once, fit its frames to the training size and
stream them into :class:`.shards.ShardWriter` (``tools/prepare_dataset.py``). Frames go through the
same :func:`.video.fit_frames` as decoded training clips, so a clip read from shards prepared at the
training resolution equals the evaluation clip decoded from the video, bit for bit."""
from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .shards import ShardWriter
from .video import CaptionMap, Entry, ReadError, fit_frames, iter_decoded, list_videos, read_frames


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
    """Pre-decode a dataset (any layout :func:`.video.list_videos` reads) to shards in ``out``.

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
