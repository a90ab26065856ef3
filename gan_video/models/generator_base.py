"""What every generator shares: its config (``model.generator`` in the YAML), the
:class:`VideoGenerator` interface (``G(text_embedding, noise, frames=None, times=None) -> [B, 3, T, H, W]``
in [-1, 1]), per-clip noise and Fourier time features. The generators themselves live in
:mod:`.layered`, :mod:`.animator` and :mod:`.t2v2018`; :mod:`.generator` builds one by name.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional, Sequence

import torch
from torch import nn

from .blocks import check_resolution


@dataclass
class GeneratorConfig:
    """Generator hyperparameters (``model.generator`` in the YAML).

    Attributes:
        arch: ``layered`` (default; one rigidly moving object), ``animator`` (non-rigid motion,
            real video) or ``t2v2018`` (the 2018 paper's generator); see :mod:`.generator`.
        z_content: size of the per-clip content noise.
        z_motion: size of the per-clip motion noise (``layered``), of each motion anchor's noise
            (``animator``) / video noise (``t2v2018``).
        style_dim: width of the mapping network's output that conditions every layer.
        base_channels: channels at full resolution; they double at each halving of the size.
        max_channels: cap on the channel count.
        fourier: number of Fourier time frequencies in the motion code (``layered``, ``animator``).
        motion_anchors: ``animator`` only: motion noise vectors spread evenly over a clip and
            interpolated in time (StyleGAN-V's motion codes): more anchors, more changes of motion.
        flow_scale: ``animator`` only: the largest displacement of the generated flow, as a
            fraction of the frame side.
        flow_layers: ``animator`` only: 3x3 convs in the flow net, each followed by a norm that reads
            the motion code ``m(t)`` (1: one, the configs before 2026-12-02).
        flow_pool: ``animator`` only: the flow net works on the content features average-pooled by
            this factor (they are at half the frame size: 1 = half, 2 = a quarter, 4 = an eighth).
        motion_init: ``layered`` only: initial spread of the foreground's position and velocity
            (in half-frames); 0 starts every clip static in the centre.
        background_resolution: ``layered`` only: 0 draws the background layer with the conv trunk
            at full resolution; ``k > 0`` predicts a ``k x k`` background from the content code
            and upsamples it (1 = a uniform colour, right for the built-in shapes).
        foreground_resolution: ``layered`` only: 0 (default) draws the sprite's RGB with the conv
            trunk; ``k > 0`` predicts a ``k x k`` RGB grid from the content code and upsamples it, as
            ``background_resolution`` does for the background (1 = one flat colour: the object's
            outline is then drawn by the alpha alone, right for the built-in shapes).
        layer_alpha: ``layered`` only: ``sigmoid`` (the alpha never reaches 0 or 1) or ``clamp``
            (a clamped linear alpha that reaches exact 0 and 1, times a window that is 0 at the
            layer's edge: crisp objects, and no faint rectangle moving with them).
        outline_harmonics: ``layered`` only: 0 (default) draws the sprite's alpha with the conv
            trunk. ``K > 0``: the alpha is one star-shaped region whose radius around a centre is a
            Fourier series of ``K`` harmonics of the angle, all from the content code
            (:mod:`.outline`): exact circles with the harmonics at 0, corners from the higher ones,
            the same outline at any size. With ``foreground_resolution`` and
            ``background_resolution`` set too, no conv trunk is built. Right for one solid object
            (the built-in shapes); it cannot draw people or scenes.
        block_convs: ``layered``, ``animator``: 3x3 convs per up-block (1, or 2 as in StyleGAN: crisper
            outlines for a little more compute; the layered sprite is drawn once per clip, so a
            second conv there is nearly free).
        grow_from: ``layered`` only: 0 (default) draws the layers with a trunk of the clip's own
            size. ``r`` (64, 128) below the clip size: the trunk of an ``r``-px model draws the
            layers at ``r`` px, and each doubling above it adds an up-block whose output, through a
            zero-initialised conv, is added to the layers of the size below upsampled bilinearly
            (StyleGAN2's skip outputs; ProGAN's growing). Such a model starts by drawing exactly the
            upsampled layers of the small one, so a trained ``r``-px checkpoint can start it
            (``model.init_from``) and it learns only the finer detail (docs/results.md, "128 px").
        kl_weight: weight of the gist VAE's KL term (``t2v2018``).
        recon_weight: weight of the gist VAE's reconstruction term (``t2v2018``).
    """
    arch: Literal["layered", "animator", "t2v2018"] = "layered"
    z_content: int = 64
    z_motion: int = 16
    style_dim: int = 256
    base_channels: int = 16
    max_channels: int = 256
    fourier: int = 4
    motion_anchors: int = 4
    flow_scale: float = 0.25
    flow_layers: int = 1
    flow_pool: int = 2
    motion_init: float = 0.5
    background_resolution: int = 0
    foreground_resolution: int = 0
    layer_alpha: Literal["sigmoid", "clamp"] = "sigmoid"
    block_convs: int = 1
    grow_from: int = 0
    outline_harmonics: int = 0
    kl_weight: float = 0.01
    recon_weight: float = 1.0


class VideoGenerator(nn.Module):
    """Common interface: noise sampling, frame-count checks, optional auxiliary losses."""

    def __init__(self, cfg: GeneratorConfig, text_dim: int, resolution: int, frames: int):
        super().__init__()
        check_resolution(resolution, f"generator {cfg.arch!r}")
        self.cfg, self.text_dim, self.resolution, self.frames = cfg, text_dim, resolution, frames
        self.check_frames(frames)
        for option, arch, lacks, off in (("grow_from", "layered", "grown form", "0"),
                                         ("outline_harmonics", "layered", "sprite outline", "0"),
                                         ("foreground_resolution", "layered", "sprite layer", "0")):
            if getattr(cfg, option) and cfg.arch != arch:
                raise ValueError(f"generator.{option} is for arch: {arch}; {cfg.arch!r} has no {lacks} "
                                 f"(set generator.{option}: {off})")
        for option in ("background_resolution", "foreground_resolution"):
            if getattr(cfg, option) < 0:
                raise ValueError(f"generator.{option} {getattr(cfg, option)} must be >= 0 "
                                 "(0: drawn by the conv trunk; k: a k x k grid from the content code)")

    def check_frames(self, frames: int) -> None:
        if frames < 1:
            raise ValueError(f"generator {self.cfg.arch!r} cannot make {frames} frames; use >= 1")

    def frame_times(self, frames: Optional[int], device) -> torch.Tensor:
        """Times of ``frames`` frames at the training frame rate: a training clip spans [0, 1] in
        ``self.frames`` frames, frame ``i`` is at ``i / (self.frames - 1)``. Fewer frames are the
        first frames of such a clip; more frames go on past 1 at the same speed (a clip longer than
        trained, not the same clip in slow motion). A model trained on single frames draws t = 0.5."""
        frames = self.frames if frames is None else frames
        self.check_frames(frames)
        if self.frames == 1:
            return torch.full((frames,), 0.5, device=device)
        return torch.arange(frames, device=device, dtype=torch.float32) / (self.frames - 1)

    def noise_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"content": (self.cfg.z_content,), "motion": (self.cfg.z_motion,)}

    def noise_group(self, part: str) -> str:
        """The seed that draws noise part ``part``: ``content`` (the appearance) or ``motion``."""
        return part

    def sample_noise(self, batch: int, device=None, generator: Optional[torch.Generator] = None
                     ) -> dict[str, torch.Tensor]:
        """Per-clip noise; with a seeded ``generator`` the same seed gives the same clip."""
        out = {}
        for name, shape in self.noise_shapes().items():
            out[name] = torch.randn((batch, *shape), generator=generator).to(device)
        return out

    def seeded_noise(self, seeds: Sequence[int], device=None) -> dict[str, torch.Tensor]:
        """The noise of one clip per seed, stacked: clip ``i``'s noise comes from its own generator
        seeded with ``seeds[i]``, so it does not depend on the other clips of the batch."""
        noise = [self.sample_noise(1, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
        return {k: torch.cat([n[k] for n in noise]).to(device) for k in noise[0]}

    def auxiliary_loss(self, text: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Extra generator losses that need real clips (the gist VAE); none by default."""
        return text.new_zeros(()), {}


def fourier_features(t: torch.Tensor, n: int) -> torch.Tensor:
    """``[N] -> [N, 2n]`` sines and cosines of ``t`` at frequencies 1..n (periods within a clip)."""
    freqs = torch.arange(1, n + 1, device=t.device, dtype=t.dtype) * math.pi
    ang = t[:, None] * freqs[None]
    return torch.cat([ang.sin(), ang.cos()], dim=1)
