"""FrozenTextEncoder: the ``nn.Module`` for ``text.name: minilm | clip``, a frozen backbone plus a
trainable head.

Caption strings -> the backbone's cached, fixed embedding (:mod:`.backbones`) -> a small trainable
**head** (LayerNorm -> Linear -> GELU -> Linear) -> ``[B, text.out_dim]``, so the generator and
discriminator are the same as with the trainable token encoders. Only the head is a submodule: the
backbone is not in ``state_dict`` (checkpoints hold the head only), not in any optimiser, not copied
by ``copy.deepcopy`` (the EMA text encoder shares it) and not switched to train mode by Lightning.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from ...weights_text import resolve_clip, resolve_minilm
from ..text_config import TextEncoderConfig
from .backbones import TextBackbone, get_backbone


class FrozenTextEncoder(nn.Module):
    """Caption strings -> ``[B, out_dim]``: a frozen pretrained backbone's cached embedding, then a
    trainable head. Only the head is a submodule (in ``state_dict``, optimisers and EMA copies)."""

    reads_captions = True

    def __init__(self, cfg: TextEncoderConfig):
        super().__init__()
        if cfg.name == "minilm":
            spec = resolve_minilm(cfg.pretrained)
        elif cfg.name == "clip":
            spec = resolve_clip(cfg.clip_model, cfg.pretrained)
        else:
            raise ValueError(f"{cfg.name!r} is not a frozen text encoder; use minilm or clip")
        self.spec = spec                   # a plain dataclass: not a submodule, not in state_dict
        self.disk_cache = cfg.cache
        self.in_dim = get_backbone(spec).dim
        self.out_dim = cfg.out_dim
        self.head = nn.Sequential(nn.LayerNorm(self.in_dim), nn.Linear(self.in_dim, cfg.dim), nn.GELU(),
                                  nn.Linear(cfg.dim, cfg.out_dim))

    @property
    def backbone(self) -> TextBackbone:
        """The shared frozen backbone (outside the module tree)."""
        return get_backbone(self.spec)

    def _device(self) -> torch.device:
        return self.head[1].weight.device

    def embeddings(self, captions: Sequence[str]) -> torch.Tensor:
        """The backbone's fixed embeddings ``[B, in_dim]`` of ``captions`` (no gradient)."""
        return self.backbone.embed(captions, self._device(), disk=self.disk_cache)

    def forward(self, captions: Sequence[str] | str) -> torch.Tensor:
        if isinstance(captions, str):
            captions = [captions]
        if isinstance(captions, torch.Tensor):
            raise TypeError("a frozen pretrained text encoder reads caption strings, not token ids; "
                            "call TextToVideoGAN.embed_text(encoder, captions)")
        x = self.embeddings(list(captions))
        return self.head(x.to(self.head[1].weight.dtype))

    def precompute(self, captions: Sequence[str], progress: Optional[bool] = None) -> int:
        """Embed and cache every distinct caption up front; returns how many were not cached yet."""
        return self.backbone.precompute(captions, self._device(), disk=self.disk_cache, progress=progress)

    def flush(self) -> None:
        """Write embeddings made on the fly to the disk cache (no-op with ``text.cache: false``)."""
        if self.disk_cache:
            self.backbone.flush()

    def extra_repr(self) -> str:
        return f"backbone={self.spec.kind}:{self.spec.arch} ({self.spec.source_kind} {self.spec.source}), frozen"


__all__ = ["FrozenTextEncoder"]
