"""Provenance of what gan_video makes: a machine-readable label in each file's metadata, and an
invisible watermark in the pixels that outlives the metadata.

The label (:func:`label_for`) is a small JSON object::

    {"schema": "gan_video.provenance/1", "synthetic": true,
     "digital_source_type": "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
     "generator": "gan_video", "generator_version": "0.1.0", "model_hash": "3f2a9c0d41b7",
     "prompt": "a red circle moving left", "seed": 7,
     "watermark": {"scheme": "gan_video-ss/1", "model_id": "3f2a", "key": "default"}}

The writers of :mod:`gan_video.data.io` store it when given ``label=``: in an mp4 as the container's
``comment`` tag (what ``ffprobe -show_format`` prints), in a GIF as its comment extension, in a PNG
as an iTXt chunk named ``gan_video.provenance``. :func:`read_label` reads it back from any of the
three. Metadata is easy to strip (any re-encode drops it), hence the watermark
(:mod:`gan_video.watermark`): :func:`mark_clip` adds it to a generated clip and returns the label to
write with it; ``gan-video-inspect FILE`` reports both.

``model_hash`` is the first 12 hex digits of a sha256 of the model's weights (:func:`model_hash`:
of the loaded generator and text encoder's tensors, the same for a checkpoint and its export; or of
a weights file); the watermark carries its first 4 digits as the 16-bit model id.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from .watermark import (DEFAULT_KEY, THRESHOLD, WatermarkResult, detect_watermark, embed_watermark,
                        model_id_of)

SCHEMA = "gan_video.provenance/1"
PNG_KEY = "gan_video.provenance"           # the PNG iTXt keyword
WATERMARK_SCHEME = "gan_video-ss/1"
SYNTHETIC_SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
HASH_DIGITS = 12

PathLike = Union[str, os.PathLike]


def version() -> str:
    """gan_video's version: the installed distribution's, else ``gan_video.__version__``, else "unknown"."""
    import sys
    from importlib import metadata

    try:
        return metadata.version("gan-video")
    except metadata.PackageNotFoundError:    # running from a source tree that is not installed
        package = sys.modules.get(__name__.rpartition(".")[0])
        return str(vars(package).get("__version__", "unknown")) if package else "unknown"


def model_hash(source: Any) -> str:
    """A short (12 hex digits) sha256 of a model's weights.

    For a loaded model (a :class:`gan_video.api.VideoModel`: its generator and text encoder), an
    ``nn.Module`` or a ``state_dict``: of the tensors (names, dtypes, shapes and bytes, in name
    order), so a checkpoint and its export give the same hash. For a path: of the file (a ``.ckpt``)
    or of an export folder's ``model.safetensors``."""
    if isinstance(source, (str, os.PathLike)):
        from .cache import file_sha256

        path = Path(source)
        if path.is_dir():
            path = path / "model.safetensors"
            if not path.is_file():
                raise FileNotFoundError(f"{str(source)!r} is a folder without model.safetensors; give a "
                                        ".ckpt file or an export folder of gan-video-export")
        if not path.is_file():
            raise FileNotFoundError(f"model file {str(path)!r} does not exist")
        return file_sha256(path)[:HASH_DIGITS]
    import hashlib

    import torch

    if hasattr(source, "generator") and hasattr(source, "text_encoder"):    # a VideoModel
        state = {f"generator.{k}": v for k, v in source.generator.state_dict().items()}
        state.update({f"text_encoder.{k}": v for k, v in source.text_encoder.state_dict().items()})
    else:
        state = source.state_dict() if hasattr(source, "state_dict") else source
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError("model_hash takes a loaded model (gan_video.load), an nn.Module, a state_dict, "
                         "a weights file or an export folder")
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:HASH_DIGITS]


def label_for(prompt: Optional[str], seed: Optional[int], model_hash: Optional[str] = None, *,
              watermark: bool = False, key: Optional[str] = None, extra: Optional[dict] = None) -> dict:
    """The provenance label of one generated clip (see the module docstring). ``watermark`` says
    whether its pixels carry the watermark (with ``key``; None: the public default key); ``extra``
    adds keys (JSON values) without replacing the standard ones."""
    if model_hash is not None:
        model_id_of(model_hash)          # a hex digest (raises a clear ValueError otherwise)
    label = {"schema": SCHEMA, "synthetic": True, "digital_source_type": SYNTHETIC_SOURCE,
             "generator": "gan_video", "generator_version": version(),
             "model_hash": None if model_hash is None else str(model_hash).lower(),
             "prompt": prompt, "seed": None if seed is None else int(seed),
             "watermark": None}
    if watermark:
        label["watermark"] = {"scheme": WATERMARK_SCHEME, "model_id": f"{model_id_of(model_hash):04x}",
                              "key": "default" if key is None or key == DEFAULT_KEY else "custom"}
    for k, v in (extra or {}).items():
        label.setdefault(str(k), v)
    return label


def label_json(label: dict) -> str:
    """``label`` as compact ASCII JSON (what the writers store); a clear ValueError if it is not a
    JSON-able dict."""
    if not isinstance(label, dict):
        raise ValueError(f"a provenance label is a dict (see provenance.label_for), got {type(label).__name__}")
    try:
        return json.dumps(label, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        raise ValueError(f"provenance label is not JSON-serialisable: {err}") from None


def parse_label(text: Union[str, bytes, None]) -> Optional[dict]:
    """A label from stored metadata text; None when the text is not one (another program's comment)."""
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) and str(value.get("schema", "")).startswith("gan_video.provenance/") else None


def file_kind(path: PathLike) -> str:
    """``gif``, ``png`` or ``video`` from the file's first bytes (not its name); FileNotFoundError
    when it is missing, ValueError when it is empty or not a regular file."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{str(p)!r} does not exist")
    if not p.is_file():
        raise ValueError(f"{str(p)!r} is not a file")
    with open(p, "rb") as f:
        head = f.read(8)
    if not head:
        raise ValueError(f"{str(p)!r} is empty")
    if head[:4] == b"GIF8":
        return "gif"
    if head == b"\x89PNG\r\n\x1a\n":
        return "png"
    return "video"


def read_label(path: PathLike) -> Optional[dict]:
    """The provenance label stored in an mp4 (or other video container), GIF or PNG; None when the
    file has none (never labelled, or stripped). FileNotFoundError for a missing file, ValueError for
    one that is not a readable video or image."""
    import av

    kind = file_kind(path)
    try:
        if kind in ("gif", "png"):
            from PIL import Image

            with Image.open(path) as im:
                text = im.info.get("comment") if kind == "gif" else getattr(im, "text", {}).get(PNG_KEY)
            return parse_label(text)
        with av.open(str(path)) as container:
            return parse_label(container.metadata.get("comment"))
    except (OSError, ValueError, SyntaxError, av.FFmpegError) as err:
        raise ValueError(f"cannot read {str(path)!r} as a video, GIF or PNG: {err}") from None


def mark_clip(frames: np.ndarray, prompt: Optional[str], seed: Optional[int], model_hash: Optional[str],
              watermark: bool = True, key: Optional[str] = None) -> tuple[np.ndarray, dict]:
    """Prepare one generated clip (uint8 ``[T, H, W, 3]``) for writing: the frames with the
    watermark (model id = the first 4 hex digits of ``model_hash``; unchanged when ``watermark`` is
    False) and the label to pass to the writers (``write_mp4(path, frames, label=label)``)."""
    frames = np.asarray(frames)
    if watermark:
        frames = embed_watermark(frames, model_hash, key=key)
    return frames, label_for(prompt, seed, model_hash, watermark=watermark, key=key)


def mark_clips(clips: np.ndarray, prompts: Sequence[Optional[str]], seeds: Sequence[Optional[int]],
               model_hash: Optional[str], watermark: bool = True,
               key: Optional[str] = None) -> tuple[np.ndarray, list[dict]]:
    """:func:`mark_clip` for each clip of uint8 ``[N, T, H, W, 3]``: the marked clips and their labels."""
    clips = np.asarray(clips)
    if clips.ndim == 5 and len(clips) == 0 == len(prompts) == len(seeds):
        return clips, []
    if clips.ndim != 5 or len(prompts) != len(clips) or len(seeds) != len(clips):
        raise ValueError(f"mark_clips takes clips [N, T, H, W, 3] with one prompt and seed each; got "
                         f"{list(clips.shape)}, {len(prompts)} prompts, {len(seeds)} seeds")
    out = [mark_clip(c, p, s, model_hash, watermark, key) for c, p, s in zip(clips, prompts, seeds)]
    return np.stack([f for f, _ in out]), [lab for _, lab in out]


__all__ = ["SCHEMA", "PNG_KEY", "THRESHOLD", "DEFAULT_KEY", "WatermarkResult", "version", "model_hash",
           "label_for", "label_json", "parse_label", "read_label", "file_kind", "mark_clip", "mark_clips",
           "embed_watermark", "detect_watermark", "model_id_of"]
