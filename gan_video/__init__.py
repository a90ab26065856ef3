"""gan_video: text-conditioned video GANs trained with PyTorch Lightning.

The Python API (:mod:`gan_video.api`)::

    import gan_video
    model = gan_video.load("runs/shapes/checkpoints/last.ckpt")   # or an export folder
    clips = model.generate(["a red circle moving left"], num_samples=2, seed=0)
    gan_video.save(clips, "samples/", prompts=["a red circle moving left"] * 2, seeds=[0, 1])

``load``, ``save``, ``save_grid``, ``expand_prompts`` and ``VideoModel`` are imported on first use, so ``import
gan_video`` stays cheap for the submodules (``gan_video.cache``, ``gan_video.data``, ...).
"""
from __future__ import annotations

__all__ = ["load", "save", "save_grid", "expand_prompts", "VideoModel"]


def __getattr__(name: str):
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'gan_video' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
