"""Sampling a trained model: the generator and its text encoder, built alone.

:func:`load_sampler` reads a training checkpoint (with the safe reader) and builds only what sampling
needs (:func:`build_networks`): the generator and a text encoder, loaded strictly from the
checkpoint's ``G_ema.*`` and ``text_g_ema.*`` tensors (``G.*`` and ``text_g.*`` with ``ema=False``);
the discriminator and its text encoder are never built. The :class:`Sampler` it returns makes clips
with :class:`~gan_video.module.TextToVideoGAN`'s ``generate`` (float clips, :func:`sample_clips`),
which the metrics and the evaluation tools call; :func:`gan_video.load` wraps it for users.
"""
from __future__ import annotations

import os
from dataclasses import asdict, fields
from typing import Optional, Sequence, Union

import torch
from lightning_fabric.utilities.data import AttributeDict
from torch import nn

from .checkpoints import CheckpointMismatchError, model_hparams, read_checkpoint
from .models.discriminator import DiscriminatorConfig
from .models.generator import GeneratorConfig, VideoGenerator, build_generator
from .models.text import TextEncoderConfig, Tokenizer, build_text_encoder, embed_captions, tokenizer_for
from .speed import SpeedConfig

CONFIGS = {"generator": GeneratorConfig, "discriminator": DiscriminatorConfig, "text": TextEncoderConfig,
           "speed": SpeedConfig}


def as_config(value, cls):
    """``value`` (a ``cls``, a dict of its fields or None for the defaults) as a ``cls``."""
    if isinstance(value, cls):
        return value
    if value is None:
        return cls()
    if isinstance(value, dict):
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**value)
    raise TypeError(f"expected {cls.__name__} or dict, got {type(value).__name__}")


def build_networks(hparams: dict) -> tuple[VideoGenerator, nn.Module, Tokenizer]:
    """The sampling networks that ``hparams`` describes (untrained): the generator, a text encoder
    and its tokenizer, as :class:`~gan_video.module.TextToVideoGAN` builds ``G`` and ``text_g``."""
    g_cfg = as_config(hparams.get("generator"), GeneratorConfig)
    t_cfg = as_config(hparams.get("text"), TextEncoderConfig)
    tokenizer = tokenizer_for(t_cfg)
    text = build_text_encoder(t_cfg, tokenizer.vocab_size)
    gen = build_generator(g_cfg, t_cfg.out_dim, int(hparams["resolution"]), int(hparams["frames"]))
    return gen, text, tokenizer


@torch.no_grad()
def sample_clips(generator: nn.Module, text_encoder: nn.Module, tokenizer: Tokenizer, prompts: Sequence[str],
                 seeds: Optional[Sequence[int]], device: torch.device, frames: Optional[int] = None,
                 batch_size: int = 16) -> torch.Tensor:
    """Clips ``[N, 3, T, H, W]`` in [-1, 1] for ``prompts``; clip ``i`` depends only on
    ``(prompts[i], seeds[i])`` (each clip's noise comes from its own seeded generator)."""
    seeds = list(range(len(prompts))) if seeds is None else list(seeds)
    if len(seeds) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
    out = []
    for i in range(0, len(prompts), batch_size):
        e = embed_captions(text_encoder, tokenizer, list(prompts[i:i + batch_size]), device)
        noise = generator.seeded_noise(seeds[i:i + batch_size], device)
        out.append(generator(e, noise, frames=frames))
    return out[0] if len(out) == 1 else torch.cat(out)


class Sampler:
    """A trained generator and its text encoder (eval mode, no gradients): what :func:`load_sampler`
    returns. ``hparams`` are the model's (``hparams.frames``, ``hparams.resolution``, ...); ``ema``
    says which generator it holds."""

    def __init__(self, generator: VideoGenerator, text_encoder: nn.Module, tokenizer: Tokenizer, hparams: dict,
                 ema: bool = True, source: str = ""):
        self.generator, self.text_encoder, self.tokenizer = generator, text_encoder, tokenizer
        self.hparams, self.ema, self.source = AttributeDict(hparams), ema, source

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def to(self, device: Union[str, torch.device]) -> "Sampler":
        self.generator.to(device)
        self.text_encoder.to(device)
        return self

    def generate(self, prompts: Sequence[str], seeds: Optional[Sequence[int]] = None, ema: bool = True,
                 frames: Optional[int] = None, batch_size: int = 16) -> torch.Tensor:
        """:meth:`TextToVideoGAN.generate <gan_video.module.TextToVideoGAN.generate>` of the generator
        loaded (``ema`` must name it)."""
        if ema != self.ema:
            which = "EMA" if self.ema else "trained (non-EMA)"
            raise ValueError(f"this sampler holds the {which} generator only; load the checkpoint with ema={ema}")
        return sample_clips(self.generator, self.text_encoder, self.tokenizer, prompts, seeds, self.device,
                            frames, batch_size)


def _load_part(net: nn.Module, state: dict, prefix: str, path: str) -> None:
    have = {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}
    want = net.state_dict()
    missing = [f"{prefix}.{k}" for k in want if k not in have]
    unexpected = [f"{prefix}.{k}" for k in have if k not in want]
    shapes = [f"{prefix}.{k} {tuple(have[k].shape)} vs {tuple(v.shape)}" for k, v in want.items()
              if k in have and have[k].shape != v.shape]
    if missing or unexpected or shapes:
        raise CheckpointMismatchError(f"{path!r} does not match its own config: missing {missing[:5]}, "
                                      f"unexpected {unexpected[:5]}" + (f", other shapes {shapes[:5]}" if shapes else ""))
    net.load_state_dict(have, strict=True)


def load_sampler(checkpoint: Union[str, os.PathLike, dict], map_location: Union[str, torch.device] = "cpu",
                 path: Optional[str] = None, ema: bool = True) -> Sampler:
    """A :class:`Sampler` from a checkpoint file (read with the safe reader: no code in it runs) or a
    checkpoint dict already read by :func:`~gan_video.checkpoints.read_checkpoint` (``path`` then
    names it in messages), on ``map_location``. ``ema``: the EMA generator and text encoder (default)
    or the trained ones. A frozen pretrained text backbone is found as in training (it is in no
    checkpoint); only its trained head is loaded. Raises
    :class:`~gan_video.checkpoints.CheckpointMismatchError` when the tensors do not fit the networks
    the checkpoint's config describes."""
    if isinstance(checkpoint, dict):
        ckpt, path = checkpoint, path or "the checkpoint"
    else:
        path = os.fspath(checkpoint)
        ckpt = read_checkpoint(path)
    hp = model_hparams(ckpt, path)
    gen, text, tokenizer = build_networks(hp)
    # the settings as the training module holds them: every config field, defaults filled in
    hp.update({k: asdict(as_config(hp[k], cls)) for k, cls in CONFIGS.items() if k in hp})
    for net, prefix in zip((gen, text), ("G_ema", "text_g_ema") if ema else ("G", "text_g")):
        _load_part(net, ckpt["state_dict"], prefix, path)
    gen = gen.eval().requires_grad_(False).to(map_location)
    text = text.eval().requires_grad_(False).to(map_location)
    return Sampler(gen, text, tokenizer, hp, ema=ema, source=path)


__all__ = ["Sampler", "load_sampler", "build_networks", "sample_clips", "as_config"]
