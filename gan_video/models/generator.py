"""Text-conditioned video generators by name: ``build_generator(cfg, ...)`` with ``cfg.arch`` one of

* ``layered`` (:mod:`.layered`): one sprite layer moved by a continuous affine trajectory over a
  background; cheap and exact for rigid motion (the built-in shapes);
* ``animator`` (:mod:`.animator`): content features drawn once per clip, warped per frame by a
  generated dense flow and refined at full resolution; non-rigid motion at any frame time (real video);
* ``t2v2018`` (:mod:`.t2v2018`): the AAAI 2018 gist CVAE + Text2Filter + 3D-conv decoder.

All share :class:`~.generator_base.VideoGenerator`'s interface and
:class:`~.generator_base.GeneratorConfig`.
"""
from __future__ import annotations

from typing import Callable

from .animator import AnimatorGenerator
from .generator_base import GeneratorConfig, VideoGenerator
from .layered import LayeredMotionGenerator
from .t2v2018 import T2VGenerator

GENERATORS: dict[str, Callable[..., VideoGenerator]] = {
    "layered": LayeredMotionGenerator,
    "animator": AnimatorGenerator,
    "t2v2018": T2VGenerator,
}


def build_generator(cfg: GeneratorConfig, text_dim: int, resolution: int, frames: int) -> VideoGenerator:
    if cfg.arch not in GENERATORS:
        raise ValueError(f"unknown generator arch {cfg.arch!r}; choose from {sorted(GENERATORS)}")
    return GENERATORS[cfg.arch](cfg, text_dim, resolution, frames)


__all__ = ["GENERATORS", "GeneratorConfig", "VideoGenerator", "build_generator"]
