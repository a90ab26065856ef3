"""The data layer: built-in moving shapes and real videos, each with a Lightning data module.

``gan_video.data.ShapesDataModule`` and ``gan_video.data.VideoDataModule`` are the configs'
``class_path``s; they are imported on first use, so importing a reader (``gan_video.data.shapes``,
``gan_video.data.io``) does not load them.
"""
from __future__ import annotations

__all__ = ["ShapesDataModule", "VideoDataModule"]


def __getattr__(name: str):
    if name == "ShapesDataModule":
        from .shapes_datamodule import ShapesDataModule
        return ShapesDataModule
    if name == "VideoDataModule":
        from .video_datamodule import VideoDataModule
        return VideoDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
