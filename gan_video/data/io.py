"""Clips at the project's boundary: the one uint8 <-> float conversion pair, mp4 files, GIFs and PNGs.

Float clips are ``[3, T, H, W]`` in [-1, 1] (what models, datasets and metrics pass around); uint8
clips are ``[T, H, W, 3]`` (what files, shards and real-data statistics hold). Every conversion
between the two in the project goes through :func:`to_uint8` / :func:`from_uint8`, and every GIF
(files and TensorBoard summaries) through :func:`gif_bytes`.

The writers take an optional provenance ``label`` (a dict, see :func:`gan_video.provenance.label_for`)
and store it as JSON in the file's metadata: the mp4 container's ``comment`` tag, the GIF comment
extension, a PNG iTXt chunk. :func:`gan_video.provenance.read_label` reads it back.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """``[..., 3, T, H, W]`` in [-1, 1] -> uint8 ``[..., T, H, W, 3]`` (clamped, rounded)."""
    x = ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.movedim(-4, -1).cpu().numpy()


def from_uint8(frames: Union[np.ndarray, torch.Tensor]) -> torch.Tensor:
    """uint8 ``[..., T, H, W, 3]`` (array or tensor) -> float32 ``[..., 3, T, H, W]`` in [-1, 1]."""
    x = frames if isinstance(frames, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(frames))
    return x.movedim(-1, -4).float().div(127.5).sub(1)


def _label_text(label: Optional[dict]) -> Optional[str]:
    if label is None:
        return None
    from ..provenance import label_json

    return label_json(label)


def write_mp4(path: str | Path, frames: np.ndarray, fps: int = 8, crf: int = 18,
              label: Optional[dict] = None) -> None:
    """Write uint8 ``[T, H, W, 3]`` as H.264 (yuv420p, plays in browsers). H and W must be even.
    ``label``: a provenance label, stored as the container's ``comment`` tag.

    Lossy: the same frames may come out as slightly different files from run to run (seen with
    libx264 through PyAV even single-threaded); compare clips by their frames, not their bytes."""
    import av

    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"H.264 with yuv420p needs even frame sizes, got {w}x{h}")
    text = _label_text(label)
    with av.open(str(path), mode="w") as container:
        if text is not None:
            container.metadata["comment"] = text
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf)}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def read_video(path: str | Path) -> np.ndarray:
    """Decode every frame of a video file to uint8 ``[T, H, W, 3]``."""
    import av

    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24", threads=1) for f in container.decode(video=0)]
    if not frames:
        raise ValueError(f"{path} has no decodable video frames")
    return np.stack(frames)


def gif_bytes(frames: np.ndarray, fps: int = 8, label: Optional[dict] = None) -> bytes:
    """uint8 ``[T, H, W, 3]`` as an animated GIF (looping, ``fps`` frames per second); ``label``: a
    provenance label, stored as the GIF's comment."""
    from PIL import Image

    text = _label_text(label)
    extra = {} if text is None else {"comment": text.encode("ascii")}
    images = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(1000 / fps), loop=0, **extra)
    return buf.getvalue()


def write_gif(path: str | Path, frames: np.ndarray, fps: int = 8, label: Optional[dict] = None) -> None:
    """Write uint8 ``[T, H, W, 3]`` as an animated GIF file (:func:`gif_bytes`)."""
    Path(path).write_bytes(gif_bytes(frames, fps, label))


def write_png(path: str | Path, image: np.ndarray, label: Optional[dict] = None) -> None:
    """Write a uint8 ``[H, W, 3]`` image as PNG; ``label``: a provenance label, stored as an iTXt
    chunk named ``gan_video.provenance``."""
    from PIL import Image, PngImagePlugin

    text = _label_text(label)
    info = None
    if text is not None:
        from ..provenance import PNG_KEY

        info = PngImagePlugin.PngInfo()
        info.add_itxt(PNG_KEY, text)
    Image.fromarray(np.ascontiguousarray(image)).save(str(path), format="PNG", pnginfo=info)
