"""Preparing a dataset: decode a dataset of any layout once, fit its frames to the training size and
write them, compressed, as LitData chunks (``gan-video-prepare``; the layout is
:mod:`.streaming`'s). Frames go through the same :func:`.video.fit_frames` as decoded training
clips, so a prepared clip differs from the clip decoded from the video only by the compression."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .streaming import (FORMAT_TAG, MAGIC, allow_plain_http, SIDE_FILE, cache_dir_for, is_remote, load_info, looks_prepared, make_item,
                        open_dataset, write_side_file)
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
            buf.append(frame.to_ndarray(format="rgb24", threads=1))
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


class _EncodeVideo:
    """``litdata.optimize``'s function: one entry -> one item (or none, for a file that fails to
    decode: its index is written to ``fail_dir``, which the main process counts)."""

    def __init__(self, entries: Sequence[Entry], base: Path, size: int, max_frames: Optional[int], codec: str,
                 quality: int, fail_dir: str):
        self.entries, self.base, self.size, self.max_frames = list(entries), base, size, max_frames
        self.codec, self.quality, self.fail_dir = codec, quality, fail_dir

    def __call__(self, i: int):
        import torch

        torch.set_num_threads(1)
        e = self.entries[i]
        try:
            frames = video_frames(e, self.size, self.max_frames)
            source = os.path.relpath(e.path, self.base) if e.kind != "shard" else e.source
            meta = {"captions": list(e.captions), "frames": int(len(frames)), "source": source, "label": e.label,
                    "fps": e.fps, "start": e.start, "end": e.end, "size": self.size, "codec": self.codec}
            return make_item(frames, meta, self.codec, self.quality)
        except Exception as err:  # noqa: BLE001 - an exception in a LitData worker hangs the whole run
            reason = "failed to decode" if isinstance(err, ReadError) else f"failed to prepare ({type(err).__name__})"
            Path(self.fail_dir, str(i)).write_text(reason)
            return None                    # LitData writes no item for None


def prepare_dataset(out: str, root: Optional[str] = None, size: int = 64, format: str = "auto",
                    caption_file: Optional[str] = None, class_captions: CaptionMap = None,
                    templates: Optional[Sequence[str]] = None, classes: Optional[Sequence[str]] = None,
                    min_frames: int = 1, max_frames: Optional[int] = None, workers: int = 0,
                    overwrite: bool = False, progress: bool = True, quality: int = 95,
                    chunk_mb: float = 64) -> dict:
    """Prepare a dataset (any layout :func:`.video.list_videos` reads, old ``.npy`` shards included)
    as LitData chunks in ``out`` (a folder or ``s3://bucket/prefix``): see :mod:`.streaming`.

    Frames are resized so the short side is ``size`` and centre-cropped square, then compressed one by
    one (WebP, ``quality``). ``min_frames`` skips shorter videos (use at least the training clip's
    ``(frames - 1) * stride + 1``), ``max_frames`` keeps only the first frames of long ones,
    ``workers`` encodes in that many processes (0: one per CPU core). A file that fails to decode is
    skipped and counted. An interrupted preparation run again with the same arguments keeps the
    items LitData had finished (its checkpoints); every item is read back before the side file that
    marks the dataset finished is written. Returns ``{"out", "videos", "frames", "bytes",
    "raw_bytes", "skipped": {reason: count}, "summary"}`` and prints the summary.
    """
    import tempfile

    from litdata import optimize

    if size < 8:
        raise ValueError(f"--size {size} is too small; use the training resolution (e.g. 64)")
    if not 1 <= quality <= 100:
        raise ValueError(f"--quality {quality} must be between 1 and 100")
    out = str(out)
    if looks_prepared(out) and not is_remote(out) and (Path(out) / SIDE_FILE).is_file() and not overwrite:
        raise FileExistsError(f"{out!r} already holds a prepared dataset; pass --overwrite (overwrite=True) "
                              "to replace it or choose another --out")
    if is_remote(out) and not overwrite:
        try:
            load_info(out)
        except (FileNotFoundError, ValueError):
            pass
        else:
            raise FileExistsError(f"{out!r} already holds a prepared dataset; pass --overwrite or choose another --out")
        finally:
            load_info.cache_clear()
    fmt, entries, skips = list_videos(format, root, caption_file, class_captions, templates, classes,
                                      min_frames=max(1, min_frames), progress=progress)
    base = Path(root) if root else Path(caption_file).resolve().parent  # sources are stored relative to it
    workers = workers or os.cpu_count() or 1
    allow_plain_http()
    with tempfile.TemporaryDirectory() as fail_dir:
        fn = _EncodeVideo(entries, base, size, max_frames, "webp", quality, fail_dir)
        # the inputs are entry numbers (LitData's checkpoints store them as JSON)
        optimize(fn=fn, inputs=list(range(len(entries))), output_dir=out, chunk_bytes=max(1, int(chunk_mb * 1e6)),
                 num_workers=min(workers, len(entries)), mode="overwrite" if overwrite else None,
                 use_checkpoint=True, verbose=progress, keep_data_ordered=True, start_method="fork")
        fail_reasons = {int(n): Path(fail_dir, n).read_text() or "failed to decode" for n in os.listdir(fail_dir)}
    failed = sorted(fail_reasons)
    for i in failed:
        skips.add(fail_reasons[i], entries[i].name)
    videos, stored, frames = _read_back(out, progress)
    if not videos:
        raise ValueError(f"no video could be decoded: {skips.describe()}; check the files with "
                         "ffprobe or re-download them")
    write_side_file(out, {"format": FORMAT_TAG, "version": 1, "size": size, "codec": "webp", "quality": quality,
                          "videos": videos, "skipped": dict(skips.counts), "created_from": {
                              "format": fmt, "root": str(root) if root else None, "caption_file": caption_file}})
    load_info.cache_clear()
    open_dataset.cache_clear()
    summary = skips.summary(len(videos))
    print(summary)
    return {"out": out, "videos": len(videos), "frames": frames, "bytes": stored,
            "raw_bytes": frames * size * size * 3, "skipped": dict(skips.counts), "summary": summary}


def _read_back(out: str, progress: bool) -> tuple[list[dict], int, int]:
    """Every item of a freshly written dataset, read and checked (its offsets against its frame count
    and bytes, the first frame's header): ``(videos in item order, stored frame bytes, frames)``."""
    from litdata import StreamingDataset

    ds = StreamingDataset(out, cache_dir=cache_dir_for(out), shuffle=False)
    videos, stored, frames = [], 0, 0
    items = range(len(ds))
    if progress:
        from tqdm import tqdm
        items = tqdm(items, desc="checking", unit="video")
    for k in items:
        item = ds[k]
        meta = json.loads(item["meta"])
        offsets, blob = item["offsets"], item["frames"]
        if len(offsets) != meta["frames"] + 1 or int(offsets[-1]) != len(blob) or blob[:4] != MAGIC["webp"]:
            raise ValueError(f"item {k} of {out!r} ({meta.get('source')}) is damaged; prepare again with --overwrite")
        videos.append({k2: meta[k2] for k2 in ("captions", "frames", "source", "label", "fps", "start", "end")})
        stored += len(blob)
        frames += meta["frames"]
    return videos, stored, frames
