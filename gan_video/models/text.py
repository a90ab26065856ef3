"""Tokenizer, the trainable text encoders, and the registry that builds any text encoder.

The tokenizer is open_clip's BPE tokenizer (its vocabulary ships inside the package, so it works
offline). Two kinds of encoder are built from a :class:`TextEncoderConfig`
(:mod:`gan_video.models.text_config`) through :func:`build_text_encoder`:

- trainable token encoders (``small``, ``bag``; here) map token ids ``[B, L]`` to sentence
  embeddings ``[B, out_dim]``;
- frozen pretrained encoders (``minilm``, ``clip``; :mod:`gan_video.models.pretrained`) read the
  caption strings themselves (``reads_captions = True``): a frozen backbone gives cached embeddings
  and a small trainable head maps them to ``out_dim``.

:meth:`gan_video.module.TextToVideoGAN.embed_text` calls either kind.
"""
from __future__ import annotations

import warnings
from typing import Callable, Sequence

import torch
from torch import nn

from .pretrained.encoder import FrozenTextEncoder
from .text_config import (FROZEN_TEXT_ENCODERS, RUNTIME_TEXT_KEYS, PromptError, TextEncoderConfig,
                          check_prompts)


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


class HybridTextEncoder(FrozenTextEncoder):
    """``text.token_branch``: a frozen pretrained encoder's head plus a trainable token branch.

    Caption strings -> (frozen backbone -> head) + (tokenizer ids -> :class:`SmallTextEncoder`)
    -> ``[B, out_dim]``. It reads captions like any frozen encoder (``reads_captions``), shares the
    backbone and its embedding cache the same way, and keeps both trainable parts (head and branch)
    in ``state_dict``. The branch's last projection starts at zero, so at step 0 the encoder is the
    frozen encoder alone and the branch adds only what training finds the backbone lacks."""

    def __init__(self, cfg: TextEncoderConfig, vocab_size: int):
        super().__init__(cfg)
        self.tokenizer = Tokenizer(cfg.context_length)   # a plain object: not in state_dict
        self.branch = SmallTextEncoder(vocab_size, cfg.context_length, cfg.out_dim, cfg.out_dim,
                                       cfg.layers, cfg.heads, cfg.vocab_buckets)
        nn.init.zeros_(self.branch.proj.weight)
        nn.init.zeros_(self.branch.proj.bias)

    def forward(self, captions: Sequence[str] | str) -> torch.Tensor:
        if isinstance(captions, str):
            captions = [captions]
        frozen = super().forward(captions)
        return frozen + self.branch(self.tokenizer(list(captions)).to(frozen.device))

    def extra_repr(self) -> str:
        return super().extra_repr() + ", plus a trainable token branch"


def _frozen(cfg: TextEncoderConfig, vocab_size: int) -> nn.Module:
    return HybridTextEncoder(cfg, vocab_size) if cfg.token_branch else FrozenTextEncoder(cfg)


TEXT_ENCODERS: dict[str, Callable[[TextEncoderConfig, int], nn.Module]] = {
    "small": lambda c, v: SmallTextEncoder(v, c.context_length, c.dim, c.out_dim, c.layers, c.heads,
                                           c.vocab_buckets),
    "bag": lambda c, v: SmallTextEncoder(v, c.context_length, c.dim, c.out_dim, 0, c.heads, c.vocab_buckets),
    "minilm": _frozen,
    "clip": _frozen,
}


def tokenizer_for(cfg: TextEncoderConfig) -> Tokenizer:
    """The tokenizer a text config reads with. Beside a frozen pretrained encoder (which reads the
    full caption) the ids only feed caption comparisons, so truncating them is not worth a warning."""
    return Tokenizer(cfg.context_length, warn_truncation=cfg.name not in FROZEN_TEXT_ENCODERS)


def embed_captions(encoder: nn.Module, tokenizer: Tokenizer, captions: Sequence[str], device=None,
                   tokens: torch.Tensor | None = None) -> torch.Tensor:
    """Sentence embeddings ``[B, out_dim]`` of ``captions`` by ``encoder``, whichever kind it is: a
    frozen pretrained encoder (``reads_captions``) reads the strings; a token encoder reads the
    tokenizer's ids (``tokens`` when the caller has them already), moved to ``device``. Empty
    captions raise :class:`PromptError` either way."""
    if getattr(encoder, "reads_captions", False):
        return encoder(list(captions))
    if tokens is None:
        tokens = tokenizer(list(captions))
    return encoder(tokens.to(device))


def build_text_encoder(cfg: TextEncoderConfig, vocab_size: int) -> nn.Module:
    """The encoder ``cfg.name`` names; ``vocab_size`` sizes the token encoders' embedding table."""
    if cfg.name not in TEXT_ENCODERS:
        raise ValueError(f"unknown text encoder {cfg.name!r}; choose from {sorted(TEXT_ENCODERS)}")
    if cfg.token_branch and cfg.name not in FROZEN_TEXT_ENCODERS:
        raise ValueError(f"text.token_branch adds a trainable token encoder beside a frozen one "
                         f"({' or '.join(FROZEN_TEXT_ENCODERS)}); text.name {cfg.name!r} is a token "
                         "encoder already: set text.token_branch false, or text.name minilm")
    return TEXT_ENCODERS[cfg.name](cfg, vocab_size)


__all__ = ["FROZEN_TEXT_ENCODERS", "RUNTIME_TEXT_KEYS", "PromptError", "TextEncoderConfig", "Tokenizer",
           "SmallTextEncoder", "HybridTextEncoder", "TEXT_ENCODERS", "build_text_encoder", "check_prompts", "embed_captions",
           "tokenizer_for"]
