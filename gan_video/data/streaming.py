"""Prepared datasets in LitData's chunked format, a leaf of the data layer: the item layout, its
codec, the side file, and random access to items from a local folder or object storage.

``gan-video-prepare`` (:func:`.prepare.prepare_dataset`) writes, with ``litdata.optimize``::

    index.json          LitData's index of its chunks
    chunk-W-K.bin       LitData chunks: one item per video (segment)
    gan_video.json      {"format": "gan_video-litdata", "version": 1, "size": S, "codec": "webp",
                         "quality": Q, "videos": [{"captions": [...], "frames": n, "source": ...,
                         "label": ..., "fps": ...}, ...] (in item order), "skipped": {...}}

An item is ``{"frames": bytes, "offsets": int64 [n + 1], "meta": JSON str}``: the video's frames,
each compressed on its own (``frames[offsets[k]:offsets[k + 1]]`` is frame ``k``), so a clip decodes
only the frames it reads. The frames went through the same :func:`.video.fit_frames` as decoded
training clips. ``gan_video.json`` is written last, after every item was read back: a folder without
it is an unfinished preparation.

The dataset may live in a local folder or under ``s3://bucket/prefix`` (LitData downloads chunks
into a local cache; the S3 endpoint and credentials come from the usual ``AWS_*`` environment
variables, ``AWS_ENDPOINT_URL`` included, for an S3-compatible server).
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

SIDE_FILE = "gan_video.json"
FORMAT_TAG = "gan_video-litdata"
VERSION = 1
CODECS = ("webp",)
# the first bytes of a frame of each codec (the read-back check of a fresh dataset)
MAGIC = {"webp": b"RIFF"}


def is_remote(root: str) -> bool:
    return "://" in str(root)


def allow_plain_http() -> None:
    """LitData reaches S3 through obstore, which refuses an ``http://`` endpoint unless told: allow it
    when ``AWS_ENDPOINT_URL`` is one (an S3-compatible server on a local network or the loopback)."""
    if not os.environ.get("AWS_ENDPOINT_URL", "").startswith("http://"):
        return
    try:
        from litdata.streaming import downloader
    except ImportError:
        return
    options = getattr(downloader, "_OBSTORE_CLIENT_OPTIONS", None)
    if isinstance(options, dict):
        options["allow_http"] = "true"


# ----------------------------------------------------------------------------------------- codec
def encode_frames(frames: np.ndarray, codec: str = "webp", quality: int = 95) -> tuple[bytes, np.ndarray]:
    """uint8 ``[n, S, S, 3]`` (RGB) -> ``(blob, offsets)``: each frame compressed on its own (lossy
    WebP at ``quality``; tools/codec_study.py compared it with JPEG and H.264, docs/benchmarks.md)."""
    import cv2

    if codec not in CODECS:
        raise ValueError(f"codec {codec!r} is unknown; choose one of {CODECS}")
    parts = []
    for frame in frames:
        ok, buf = cv2.imencode(".webp", np.ascontiguousarray(frame[..., ::-1]),
                               [cv2.IMWRITE_WEBP_QUALITY, int(quality)])
        if not ok:
            raise ValueError(f"{codec} encoding failed")
        parts.append(buf.tobytes())
    offsets = np.cumsum([0] + [len(p) for p in parts]).astype(np.int64)
    return b"".join(parts), offsets


def decode_frames(blob: bytes, offsets: np.ndarray, indices: Sequence[int], codec: str = "webp") -> np.ndarray:
    """Frames ``indices`` of an item as uint8 ``[len(indices), S, S, 3]`` (RGB); raises ValueError
    for a frame that does not decode or an index out of range."""
    import cv2

    n = len(offsets) - 1
    out = []
    view = memoryview(blob)
    for i in indices:
        if not 0 <= i < n:
            raise ValueError(f"frame {i} of a {n}-frame video")
        data = np.frombuffer(view[int(offsets[i]):int(offsets[i + 1])], np.uint8)
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"frame {i} does not decode as {codec}")
        out.append(img[..., ::-1])
    return np.ascontiguousarray(np.stack(out))


def make_item(frames: np.ndarray, meta: dict, codec: str = "webp", quality: int = 95) -> dict:
    blob, offsets = encode_frames(frames, codec, quality)
    return {"frames": blob, "offsets": offsets, "meta": json.dumps(meta, ensure_ascii=False)}


# ----------------------------------------------------------------------------------------- side file
def _s3_parts(url: str) -> tuple[str, str]:
    rest = url.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    return bucket, key.rstrip("/")


def _s3_client():
    import boto3

    return boto3.client("s3")      # endpoint and credentials from the AWS_* environment variables


def write_side_file(root: str, info: dict) -> None:
    text = json.dumps(info, indent=1, ensure_ascii=False)
    if is_remote(root):
        bucket, prefix = _s3_parts(root)
        _s3_client().put_object(Bucket=bucket, Key=f"{prefix}/{SIDE_FILE}" if prefix else SIDE_FILE,
                                Body=text.encode("utf-8"))
        return
    from ..cache import atomic_write

    atomic_write(Path(root) / SIDE_FILE, text)


def _read_text(root: str, name: str) -> Optional[str]:
    """The text of ``root/name``, or None when there is no such file."""
    if is_remote(root):
        bucket, prefix = _s3_parts(root)
        client = _s3_client()
        try:
            body = client.get_object(Bucket=bucket, Key=f"{prefix}/{name}" if prefix else name)["Body"]
        except client.exceptions.NoSuchKey:
            return None
        return body.read().decode("utf-8")
    path = Path(root) / name
    return path.read_text(encoding="utf-8") if path.is_file() else None


@functools.lru_cache(maxsize=16)
def load_info(root: str) -> dict:
    """The side file of a prepared dataset, checked; a clear error for an unfinished or foreign one."""
    text = _read_text(root, SIDE_FILE)
    if text is None:
        if _read_text(root, "index.json") is not None:
            raise ValueError(f"{root!r} holds LitData chunks but no {SIDE_FILE}: its preparation did not "
                             "finish; run gan-video-prepare again with the same --out (finished work is kept)")
        raise FileNotFoundError(f"{root!r} is not a prepared dataset (no {SIDE_FILE}); write one with "
                                "gan-video-prepare --root <videos> --out <folder or s3://bucket/prefix>")
    try:
        info = json.loads(text)
    except ValueError as err:
        raise ValueError(f"{SIDE_FILE} in {root!r} is damaged ({err}); prepare the dataset again") from None
    if info.get("format") != FORMAT_TAG or info.get("version") != VERSION:
        raise ValueError(f"{SIDE_FILE} in {root!r} is not a version-{VERSION} gan_video dataset; prepare it again")
    return info


def looks_prepared(root: str) -> bool:
    """Whether ``root`` holds a prepared dataset (finished or not): a remote path, or a folder with
    the side file, or LitData's index."""
    if is_remote(root):
        return True
    p = Path(root)
    if (p / SIDE_FILE).is_file():
        return True
    index = p / "index.json"
    if not index.is_file():
        return False
    try:
        return "chunks" in json.loads(index.read_text(encoding="utf-8"))
    except ValueError:
        return False


# ----------------------------------------------------------------------------------------- reading
def cache_dir_for(root: str) -> Optional[str]:
    """Where LitData keeps the chunks of a remote dataset: ``$GAN_VIDEO_CACHE/litdata/<bucket_prefix>``."""
    if not is_remote(root):
        return None
    from ..cache import cache_dir

    bucket, prefix = _s3_parts(root)
    return str(cache_dir("litdata") / f"{bucket}_{prefix}".replace("/", "_"))


@functools.lru_cache(maxsize=8)
def open_dataset(root: str):
    """A ``litdata.StreamingDataset`` over ``root`` for random access by item (once per process)."""
    from litdata import StreamingDataset

    allow_plain_http()
    return StreamingDataset(root, cache_dir=cache_dir_for(root), shuffle=False)


def read_item_frames(root: str, item: int, indices: Sequence[int]) -> np.ndarray:
    """Frames ``indices`` of item ``item`` of the prepared dataset at ``root``."""
    raw = open_dataset(root)[int(item)]
    codec = load_info(root).get("codec", "webp")
    return decode_frames(raw["frames"], raw["offsets"], indices, codec)


__all__ = ["SIDE_FILE", "FORMAT_TAG", "CODECS", "encode_frames", "decode_frames", "make_item", "load_info",
           "write_side_file", "looks_prepared", "open_dataset", "read_item_frames", "is_remote", "MAGIC", "allow_plain_http", "cache_dir_for"]
