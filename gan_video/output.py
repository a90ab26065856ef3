"""Generated clips to files: mp4 / GIF / PNG with a provenance label each and the watermark in the
frames (:func:`save`), and prompts x seeds contact sheets (:func:`save_grid`). :mod:`gan_video.api`
re-exports these; ``gan-video-sample`` uses them."""
from __future__ import annotations

import hashlib
import json
import operator
import os
import re
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from .data.io import write_gif, write_mp4, write_png
from .provenance import label_for, model_hash
from .watermark import MIN_SIZE as WATERMARK_MIN_SIZE
from .watermark import embed_watermark, model_id_of

PathLike = Union[str, os.PathLike]
FORMATS = ("mp4", "gif", "png")


def int_arg(value, what: str) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{what} must be an integer, got {value!r}") from None


def slug(text: str, n: int = 40) -> str:
    """A file-name-safe form of a prompt (lower case, dashes, at most ``n`` characters)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:n] or "prompt"


def _clip_array(clips) -> np.ndarray:
    if isinstance(clips, torch.Tensor):
        raise ValueError("clips must be a uint8 numpy array [N, T, H, W, 3] (what VideoModel.generate "
                         "returns); convert float [-1, 1] tensors [N, 3, T, H, W] with gan_video.data.io.to_uint8")
    clips = np.asarray(clips)
    if clips.ndim == 4:
        clips = clips[None]
    if clips.ndim != 5 or clips.shape[-1] != 3 or clips.dtype != np.uint8 or clips.shape[0] == 0:
        raise ValueError(f"clips must be uint8 [N, T, H, W, 3] with N >= 1 (what VideoModel.generate "
                         f"returns), got {clips.dtype} {list(clips.shape)}")
    return clips


def frame_strip(clip: np.ndarray, count: int = 8) -> np.ndarray:
    """``count`` evenly spaced frames of a uint8 clip ``[T, H, W, 3]`` side by side (first and last
    included; ``count=1``: the first frame)."""
    t = clip.shape[0]
    idx = sorted({round(i * (t - 1) / max(count - 1, 1)) for i in range(min(count, t))})
    return np.concatenate([clip[i] for i in idx], axis=1)


def save(clips: np.ndarray, out_dir: PathLike, prompts: Optional[Sequence[str]] = None,
         seeds: Optional[Sequence[int]] = None, formats: Sequence[str] = ("mp4", "gif"), fps: int = 8, *,
         names: Optional[Sequence[str]] = None, png_frames: int = 8,
         manifest: Optional[str] = "manifest.jsonl", model: Any = None,
         watermark: bool = True, key: Optional[str] = None) -> list[dict]:
    """Write every clip of ``clips`` (uint8 ``[N, T, H, W, 3]``) to ``out_dir`` in ``formats`` and a
    ``manifest.jsonl`` (replaced) with one JSON row per clip; returns the rows.

    Args:
        prompts, seeds: one per clip (:func:`expand_prompts` gives them for ``generate``'s
            arguments); recorded in the manifest (null when not given) and in the default names.
        formats: any of ``mp4`` (H.264, yuv420p: plays in browsers; needs even sizes), ``gif``
            (looping) and ``png`` (a strip of ``png_frames`` evenly spaced frames; 1: the first frame).
        fps: frames per second of the mp4 and GIF.
        names: file names without extension, one per clip; default ``{k:03d}_{prompt}_s{seed}``.
        manifest: the manifest's file name, or None for none.
        model: the model that made the clips (a :class:`VideoModel`, or its
            :func:`gan_video.provenance.model_hash`), named in the provenance labels and the watermark.
        watermark: add the invisible watermark (:mod:`gan_video.watermark`) to the frames before
            writing them (frames smaller than 32x32 are left unmarked); ``key``: its key (None: the
            project's public key).

    Every file carries a provenance label in its metadata (:func:`gan_video.provenance.read_label`,
    ``gan-video-inspect``): synthetic, gan_video's version, the model hash, the prompt and seed.

    A row is ``{"file", "prompt", "seed", "frames", "height", "width", "frames_sha1", "model_hash",
    "watermark"}`` plus one key per other format (``"gif"``, ``"png"``): ``file`` is the first
    format's file; ``frames_sha1`` hashes the uint8 frames written (after the watermark; the lossy
    mp4's bytes are not reproducible, the frames are)."""
    clips = _clip_array(clips)
    n = clips.shape[0]
    formats = list(dict.fromkeys([formats] if isinstance(formats, str) else formats))
    if not formats or set(formats) - set(FORMATS):
        raise ValueError(f"formats must be some of {list(FORMATS)}, got {formats}")
    if int_arg(fps, "fps") < 1 or int_arg(png_frames, "png_frames") < 1:
        raise ValueError(f"fps and png_frames must be >= 1, got fps={fps}, png_frames={png_frames}")
    for what, values in (("prompts", prompts), ("seeds", seeds), ("names", names)):
        if values is not None and len(values) != n:
            raise ValueError(f"{len(values)} {what} for {n} clips; give one per clip (expand_prompts() "
                             "lists them for generate's arguments)")
    prompts = list(prompts) if prompts is not None else [None] * n
    seeds = [None if s is None else int_arg(s, "seed") for s in seeds] if seeds is not None else [None] * n
    if names is None:
        names = [f"{k:03d}_{slug(p or 'clip')}" + ("" if s is None else f"_s{s}")
                 for k, (p, s) in enumerate(zip(prompts, seeds))]
    if len(set(names)) != n or any(not nm or os.sep in nm or nm.startswith(".") for nm in names):
        raise ValueError("names must be distinct plain file names (no folders, not hidden), one per clip")
    digest, marked = _provenance(clips, model, watermark)
    labels = [label_for(p, s, digest, watermark=marked, key=key) for p, s in zip(prompts, seeds)]
    if marked:
        clips = np.stack([embed_watermark(c, digest, key=key) for c in clips])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for clip, prompt, seed, name, label in zip(clips, prompts, seeds, names, labels):
        files = {}
        for fmt in formats:
            files[fmt] = f"{name}.{fmt}"
            if fmt == "mp4":
                write_mp4(out / files[fmt], clip, fps=fps, label=label)
            elif fmt == "gif":
                write_gif(out / files[fmt], clip, fps=fps, label=label)
            else:
                write_png(out / files[fmt], frame_strip(clip, png_frames), label=label)
        row = {"file": files[formats[0]], "prompt": prompt, "seed": seed, "frames": int(clip.shape[0]),
               "height": int(clip.shape[1]), "width": int(clip.shape[2]),
               "frames_sha1": hashlib.sha1(np.ascontiguousarray(clip).tobytes()).hexdigest(),
               "model_hash": digest, "watermark": marked}
        row.update({fmt: files[fmt] for fmt in formats[1:]})
        rows.append(row)
    if manifest:
        with open(out / manifest, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    return rows


def tile(clips: np.ndarray, rows: int, cols: int, pad: int = 2, fill: int = 255) -> np.ndarray:
    """Clips ``[rows * cols, T, H, W, 3]`` (row-major: clip ``r * cols + c`` at row ``r``, column
    ``c``) as one tiled clip ``[T, rows*H + (rows+1)*pad, cols*W + (cols+1)*pad, 3]`` with ``pad``
    pixel borders of value ``fill``."""
    clips = _clip_array(clips)
    rows, cols, pad = int_arg(rows, "rows"), int_arg(cols, "cols"), int_arg(pad, "pad")
    if rows < 1 or cols < 1 or rows * cols != clips.shape[0]:
        raise ValueError(f"a {rows} x {cols} grid needs {rows * cols} clips, got {clips.shape[0]}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    n, t, h, w, _ = clips.shape
    sheet = np.full((t, rows * h + (rows + 1) * pad, cols * w + (cols + 1) * pad, 3), fill, dtype=np.uint8)
    for k in range(n):
        r, c = divmod(k, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        sheet[:, y:y + h, x:x + w] = clips[k]
    return sheet


def save_grid(clips: np.ndarray, out_dir: PathLike, rows: int, cols: int, fps: int = 8, name: str = "grid",
              pad: int = 2, *, prompts: Optional[Sequence[str]] = None, seeds: Optional[Sequence[int]] = None,
              model: Any = None, watermark: bool = True,
              key: Optional[str] = None) -> dict:
    """A contact sheet of ``clips`` (``rows x cols``, row-major, e.g. prompts x seeds): the tiled
    video as ``NAME.mp4`` and its middle frame as ``NAME.png`` in ``out_dir``; returns the file names
    ``{"mp4", "png"}``. ``pad`` must be even when the clips' sizes are (H.264 needs even sizes).
    Both files carry a provenance label (``prompts`` and ``seeds``, one per clip, go into it as
    lists), and the sheet as a whole gets the watermark (see :func:`save`); the clips' own marks
    do not survive tiling, which moves them off the sheet's cell grid."""
    sheet = tile(clips, rows, cols, pad)
    n = rows * cols
    for what, values in (("prompts", prompts), ("seeds", seeds)):
        if values is not None and len(values) != n:
            raise ValueError(f"{len(values)} {what} for a {rows} x {cols} grid; give one per clip")
    digest, marked = _provenance(sheet[None], model, watermark)
    label = label_for(None, None, digest, watermark=marked, key=key,
                      extra={"grid": {"rows": rows, "cols": cols,
                                      "prompts": None if prompts is None else list(prompts),
                                      "seeds": None if seeds is None else [int_arg(s, "seed") for s in seeds]}})
    if marked:
        sheet = embed_watermark(sheet, digest, key=key)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"mp4": f"{name}.mp4", "png": f"{name}.png"}
    write_mp4(out / files["mp4"], sheet, fps=fps, label=label)
    write_png(out / files["png"], sheet[sheet.shape[0] // 2], label=label)
    return files


def _provenance(clips: np.ndarray, model: Any, watermark: bool) -> tuple[Optional[str], bool]:
    """The model hash for the labels (None when no model is given) and whether ``clips`` get the
    watermark (asked for, and frames of at least 32x32)."""
    if model is None or isinstance(model, str):
        digest = None if model is None else str(model).lower()
        if digest is not None:
            model_id_of(digest)     # a clear ValueError for a hash that is not hex
    else:
        digest = model_hash(model)
    return digest, bool(watermark) and min(clips.shape[2:4]) >= WATERMARK_MIN_SIZE


__all__ = ["FORMATS", "save", "save_grid", "tile", "frame_strip", "slug"]
