"""Probing candidates: frame count and fps of each video file, frame folder and strip (container
metadata first, decoding only what it must), in threads, with the results cached per file (by size
and mtime) under ``$GAN_VIDEO_CACHE/video_scan``; :func:`scan` keeps the usable ones."""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Optional

from ...cache import atomic_write, cache_dir
from .decode import read_image
from .entry import Entry, Skips, Unusable, list_images

# container signatures: a file that starts like a video container but cannot be opened was cut short
_HEADERS = (b"\x1a\x45\xdf\xa3", b"RIFF", b"\x00\x00\x01\xba", b"FLV", b"GIF8")


def _open_failure(path: str, err: Exception) -> Unusable:
    with open(path, "rb") as f:
        head = f.read(12)
    known = head[4:8] == b"ftyp" or head.startswith(_HEADERS)
    return Unusable("truncated" if known else "corrupt", str(err))


def probe_video(path: str) -> tuple[int, float]:
    """``(frame count, fps)`` of a video file from its container metadata; decodes the first frame
    (proves the codec works) and all of them only when the container gives no count."""
    import av

    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise _open_failure(path, err) from None
    with container:
        if not container.streams.video:
            raise Unusable("no video stream")
        s = container.streams.video[0]
        if s.codec_context is None:
            raise Unusable("unreadable codec", "no decoder for this stream's codec")
        fps = float(s.average_rate or s.guessed_rate or s.base_rate or 0)
        if not fps > 0:
            raise Unusable("unknown frame rate")
        n = int(s.frames or 0)
        if not n:
            seconds = float(s.duration * s.time_base) if s.duration else (container.duration or 0) / 1e6
            n = int(round(seconds * fps))
        try:
            frames = container.decode(s)
            if next(frames, None) is None:
                raise Unusable("no decodable frames")
            if not n:
                n = 1 + sum(1 for _ in frames)
        except av.error.DecoderNotFoundError as err:
            raise Unusable("unreadable codec", str(err)) from None
        except (av.error.FFmpegError, ValueError) as err:
            raise Unusable("corrupt", str(err)) from None
    return n, fps


def probe(entry: Entry) -> tuple[int, float]:
    """``(frames in the whole file, fps)`` of a candidate, or :class:`Unusable`."""
    if entry.kind == "frames":
        n = len(list_images(entry.path))
        if not n:
            raise Unusable("no frames", "folder has no .jpg/.png images")
        return n, 0.0
    if os.path.getsize(entry.path) == 0:
        raise Unusable("zero-byte")
    if entry.kind == "strip":
        w, h = read_image(entry.path).shape[1::-1]
        if w % h or w < h:
            raise Unusable("not a frame strip", f"width {w} is not a multiple of height {h}")
        return w // h, 0.0
    return probe_video(entry.path)


def scan_cache_file(source: str) -> Path:
    """Where the probes of the dataset at ``source`` (root folder or caption file) are cached."""
    key = hashlib.sha1(os.path.abspath(source).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return cache_dir("video_scan") / f"{key}.json"


def scan(entries: list[Entry], min_frames: int, skips: Skips, cache: Optional[Path] = None,
         progress: bool = False) -> list[Entry]:
    """Probe every candidate (in threads; results cached per file by size and mtime in ``cache``)
    and return the usable ones with ``first``/``frames``/``fps`` set; the rest go to ``skips``."""
    known = {}
    if cache is not None and cache.is_file():
        try:
            known = json.loads(cache.read_text()).get("files", {})
        except (OSError, ValueError):
            known = {}

    def stat(e: Entry):
        st = os.stat(e.path)
        return [st.st_size, st.st_mtime_ns] if e.kind != "frames" else [len(list_images(e.path)), st.st_mtime_ns]

    def one(e: Entry):
        key = stat(e)
        hit = known.get(e.path)
        if hit and hit[:2] == key:
            return e.path, hit
        try:
            n, fps = probe(e)
            return e.path, key + [n, fps]
        except Unusable as err:
            return e.path, key + [err.reason]

    todo = list({e.path: e for e in entries}.values())
    with ThreadPoolExecutor(max_workers=8 if len(todo) > 32 else 1) as pool:
        results = pool.map(one, todo)
        if progress and len(todo) > 200:
            from tqdm import tqdm
            results = tqdm(results, total=len(todo), desc="scanning videos", leave=False)
        results = dict(results)
    if cache is not None and results != known:
        try:
            atomic_write(cache, json.dumps({"version": 1, "files": results}))
        except OSError:
            pass  # a read-only cache only costs the next scan its speed
    usable = []
    for e in entries:
        r = results[e.path]
        if isinstance(r[2], str):
            skips.add(r[2], e.name)
            continue
        n, fps = r[2], r[3]
        first, last = 0, n
        if e.start is not None or e.end is not None:
            first = int(round((e.start or 0.0) * fps))
            last = min(n, int(round(e.end * fps))) if e.end is not None else n
        if last - first < min_frames:
            skips.add(f"too short (<{min_frames} frames)", e.name)
            continue
        usable.append(replace(e, first=first, frames=last - first, fps=fps))
    return usable
