"""Video files at the project's boundary: float ``[3, T, H, W]`` in [-1, 1] <-> uint8 ``[T, H, W, 3]``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """``[..., 3, T, H, W]`` in [-1, 1] -> uint8 ``[..., T, H, W, 3]``."""
    x = ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.movedim(-4, -1).cpu().numpy()


def from_uint8(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> float ``[3, T, H, W]`` in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float().div(127.5).sub(1)


def write_mp4(path: str | Path, frames: np.ndarray, fps: int = 8, crf: int = 18) -> None:
    """Write uint8 ``[T, H, W, 3]`` as H.264 (yuv420p, plays in browsers). H and W must be even.

    Lossy: the same frames may come out as slightly different files from run to run (seen with
    libx264 through PyAV even single-threaded); compare clips by their frames, not their bytes."""
    import av

    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"H.264 with yuv420p needs even frame sizes, got {w}x{h}")
    with av.open(str(path), mode="w") as container:
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
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    if not frames:
        raise ValueError(f"{path} has no decodable video frames")
    return np.stack(frames)


def write_gif(path: str | Path, frames: np.ndarray, fps: int = 8) -> None:
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    images[0].save(str(path), format="GIF", save_all=True, append_images=images[1:],
                   duration=int(1000 / fps), loop=0)
