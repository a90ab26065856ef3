"""Reading frames: uint8 ``[T, H, W, 3]`` from any :class:`.entry.Entry` (video file, frame folder,
frame strip, shard range) by :func:`read_frames`, and :func:`fit_frames`, the one resize + crop + flip
that training clips, real clips and prepared shards all go through."""
from __future__ import annotations

import functools
from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..shards import open_shard
from ..streaming import read_item_frames
from .entry import Entry, ReadError, Unusable, list_images


def read_image(path: str) -> np.ndarray:
    """An image file as uint8 ``[H, W, 3]`` (RGB), or :class:`Unusable`."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as err:
        raise Unusable("truncated" if "truncated" in str(err) else "corrupt", str(err)) from None


def iter_decoded(path: str, first: int, fps: float, seek: bool = True):
    """Yield ``(frame index, av.VideoFrame)`` from the keyframe at or before frame ``first`` (from the
    start with ``seek=False``; indices counted from the stream start at ``fps``); decoding errors
    become :class:`ReadError`."""
    import av

    try:
        with av.open(path) as c:
            s = c.streams.video[0]
            t0 = float(s.start_time * s.time_base) if s.start_time is not None else 0.0
            if seek and first > 0:
                c.seek(int((t0 + first / fps) / s.time_base), stream=s)
            for frame in c.decode(s):
                if frame.time is None:
                    raise ReadError(f"{path}: frames without timestamps")
                yield int(round((frame.time - t0) * fps)), frame
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as err:
        raise ReadError(f"{path}: {type(err).__name__}: {err}") from None


def decode_video(path: str, indices: Sequence[int], fps: float, _retry: bool = True,
                 _seek: bool = True) -> np.ndarray:
    """Decode frames ``indices`` (ascending) to uint8 ``[T, H, W, 3]``, seeking to the keyframe before
    the first one and converting only the frames wanted (decoding from the start instead if the seek
    overshoots). A frame missing from the stream (variable frame rate) is replaced by the next one;
    a stream that ends early (a metadata frame count that was too high) shifts the window back once."""
    want, out, k, last = list(indices), [None] * len(indices), 0, -1
    frames = iter_decoded(path, want[0], fps, _seek)
    for n, (last, frame) in enumerate(frames):
        if n == 0 and last > want[0] and _seek and want[0] > 0:
            frames.close()
            return decode_video(path, want, fps, _retry, _seek=False)
        img = None
        while k < len(want) and want[k] <= last:
            img = frame.to_ndarray(format="rgb24", threads=1) if img is None else img
            out[k], k = img, k + 1
        if k == len(want):
            frames.close()
            return np.stack(out)
    shift = want[-1] - last
    if _retry and last >= 0 and want[0] - shift >= 0:
        return decode_video(path, [w - shift for w in want], fps, _retry=False)
    raise ReadError(f"{path}: the stream ended after frame {last}, the clip needs frame {want[-1]}")


@functools.lru_cache(maxsize=256)   # strip datasets are small (Weizmann: 72 strips, ~90 MB decoded):
def _strip(path: str) -> np.ndarray:  # decode each JPEG once per worker, not once per clip
    return read_image(path)


def read_frames(entry: Entry, offsets: Sequence[int]) -> np.ndarray:
    """Frames ``offsets`` (relative to the entry's first frame) as uint8 ``[T, H, W, 3]``."""
    if entry.kind == "litdata":     # ``first`` is the item: its frames count from 0
        try:
            return read_item_frames(entry.path, entry.first, [int(o) for o in offsets])
        except (OSError, ValueError, IndexError, KeyError) as err:
            raise ReadError(f"{entry.source or entry.path} (item {entry.first}): {err}") from None
    idx = [entry.first + int(o) for o in offsets]
    try:
        if entry.kind == "video":
            return decode_video(entry.path, idx, entry.fps)
        if entry.kind == "shard":
            return np.asarray(open_shard(entry.path)[idx])
        if entry.kind == "strip":
            img = _strip(entry.path)
            h = img.shape[0]
            if (idx[-1] + 1) * h > img.shape[1]:
                raise ReadError(f"{entry.path}: strip has {img.shape[1] // h} frames, clip needs {idx[-1] + 1}")
            return np.stack([img[:, i * h:(i + 1) * h] for i in idx])
        files = list_images(entry.path)
        return np.stack([read_image(files[i]) for i in idx])
    except (Unusable, OSError, ValueError, IndexError) as err:
        raise ReadError(f"{entry.path}: {err}") from None


def _offset(excess: int, u: Optional[float]) -> int:
    return excess // 2 if u is None else min(excess, int(u * (excess + 1)))


def fit_frames(frames: Union[np.ndarray, torch.Tensor], size: int, crop: Optional[Sequence[float]] = None,
               flip: bool = False) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> uint8 ``[T, size, size, 3]``: resize the short side to ``size``
    (bilinear, antialiased, on uint8), crop (``crop`` = (v, u) fractions in [0, 1) for a random
    position, None for the centre) and optionally flip horizontally. Prepared shards and decoded
    videos go through this same function, so both give the same pixels."""
    x = torch.as_tensor(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    h, w = x.shape[1:3]
    if min(h, w) != size:
        nh, nw = (size, max(size, round(w * size / h))) if h <= w else (max(size, round(h * size / w)), size)
        x = F.interpolate(x.permute(0, 3, 1, 2), size=(nh, nw), mode="bilinear", antialias=True,
                          align_corners=False).permute(0, 2, 3, 1)
        h, w = nh, nw
    y0 = _offset(h - size, None if crop is None else crop[0])
    x0 = _offset(w - size, None if crop is None else crop[1])
    x = x[:, y0:y0 + size, x0:x0 + size]
    return (x.flip(2) if flip else x).contiguous()
