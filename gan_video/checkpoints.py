"""The one way gan_video reads a checkpoint: tensors and plain Python types only, never code.

A ``.ckpt`` file is a pickle, and a pickle can name any Python function to call while it loads
(``os.system`` included). Every reader in the project goes through :func:`read_checkpoint`, which
calls ``torch.load(weights_only=True)``: PyTorch's restricted unpickler builds tensors, dicts,
lists, tuples, strings and numbers and refuses every other global *before* calling it. A file that
needs anything else is refused with :class:`UnsafeCheckpointError`, which names the file and what
it asked for; nothing in it runs. gan_video's own checkpoints need nothing else: the module stores
its random-generator states as tensors and plain lists (``TextToVideoGAN.on_save_checkpoint``).

:class:`SafeCheckpointIO` puts the same reader under Lightning (``gan-video fit --ckpt_path``) and
writes checkpoints atomically (a temporary file, then ``os.replace``), so a run killed during a save
keeps its previous checkpoint. :func:`check_compatible` names every architecture setting in which a
checkpoint differs from a config.
"""
from __future__ import annotations

import os
import pickle
import re
from dataclasses import asdict
from typing import Any, Optional

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from .cache import atomic_path
from .models.discriminator import DiscriminatorConfig
from .models.generator import GeneratorConfig
from .models.text import RUNTIME_TEXT_KEYS, TextEncoderConfig

# hyperparameters that change the shapes of saved tensors: a checkpoint must agree on all of them
ARCHITECTURE_KEYS = ("generator", "discriminator", "text", "resolution", "frames")
CONFIGS = {"generator": GeneratorConfig, "discriminator": DiscriminatorConfig, "text": TextEncoderConfig}


class UnsafeCheckpointError(ValueError):
    """A checkpoint that needs more than tensors and plain types to load; nothing in it was run."""


class CheckpointMismatchError(ValueError):
    """A checkpoint whose architecture differs from the config it is loaded into."""


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """The checkpoint at ``path`` as a dict, read with ``torch.load(weights_only=True)``.

    Raises FileNotFoundError (no such file), :class:`UnsafeCheckpointError` (the file asks for a
    Python object other than tensors and plain types: it may be malicious, and nothing of it ran) or
    ValueError (unreadable: truncated, not a PyTorch file)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist; train one with `gan-video fit "
                                "--config configs/shapes.yaml` or pass the path of a .ckpt file "
                                "(runs/<name>/checkpoints/last.ckpt)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        wanted = re.search(r"GLOBAL ([\w.]+)", str(err))
        if wanted is None:   # not a pickle torch can read at all (garbage, truncated)
            detail = re.search(r"WeightsUnpickler error: *(.+)", str(err))
            raise ValueError(f"checkpoint {path!r} cannot be read ({detail.group(1) if detail else 'UnpicklingError'}); "
                             "it may be truncated or not a gan_video checkpoint; nothing in it was run") from None
        raise UnsafeCheckpointError(
            f"refusing to load checkpoint {path!r}: it asks to build a Python object ({wanted.group(1)}) that a "
            "gan_video checkpoint never holds (only tensors and plain types). It may be unsafe: a "
            "pickle can run code when it is loaded, and nothing in this file was run. Use checkpoints "
            "written by `gan-video fit` (or exported models) from a source you trust") from None
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same advice
        raise ValueError(f"checkpoint {path!r} cannot be read ({type(err).__name__}: {err}); it may be "
                         "truncated or not a gan_video checkpoint") from None
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path!r} holds a {type(ckpt).__name__}, not a checkpoint dict; pass a .ckpt "
                         "written by `gan-video fit`")
    return ckpt


def model_hparams(ckpt: dict, path: str = "the checkpoint") -> dict:
    """The TextToVideoGAN hyperparameters of a checkpoint read by :func:`read_checkpoint`."""
    hp = ckpt.get("hyper_parameters")
    if not isinstance(hp, dict) or "generator" not in hp or "state_dict" not in ckpt:
        raise ValueError(f"{path!r} is not a gan_video TextToVideoGAN checkpoint (no generator "
                         "hyperparameters or state_dict)")
    return dict(hp)


def architecture_diffs(saved: dict, current: dict, names: tuple[str, str] = ("checkpoint", "config")) -> list[str]:
    """Every architecture setting (:data:`ARCHITECTURE_KEYS`) in which two model hyperparameter dicts
    differ, as ``"generator.z_content: checkpoint 64 vs config 32"`` (``names`` label the sides)."""
    first, second = names
    diffs = []
    for key in ARCHITECTURE_KEYS:
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            # checkpoints from before a setting existed were trained with its default; runtime-only
            # text settings (the embedding cache) may differ
            defaults = asdict(CONFIGS[key]())
            skip = RUNTIME_TEXT_KEYS if key == "text" else ()
            a = {k: v for k, v in {**defaults, **a}.items() if k not in skip}
            b = {k: v for k, v in {**defaults, **b}.items() if k not in skip}
            diffs += [f"{key}.{k}: {first} {a.get(k)!r} vs {second} {b.get(k)!r}"
                      for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            diffs.append(f"{key}: {first} {a!r} vs {second} {b!r}")
    return diffs


def check_compatible(saved: dict, current: dict, path: str = "the checkpoint") -> None:
    """Raise :class:`CheckpointMismatchError` naming every architecture setting that differs."""
    diffs = architecture_diffs(saved, current)
    if diffs:
        raise CheckpointMismatchError(
            f"{path} was trained with another model config ({'; '.join(diffs)}); resume it with the "
            "config it was trained with (saved as config.yaml in its run folder) or start a new run")


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O with :func:`read_checkpoint` as its reader and atomic saves.

    ``TextToVideoGAN.setup`` installs it on the trainer's strategy when that strategy uses Lightning's
    plain ``TorchCheckpointIO``, so ``--ckpt_path`` runs no code from the file it resumes."""

    def load_checkpoint(self, path, map_location: Optional[Any] = None, weights_only: Optional[bool] = None) -> dict:
        return read_checkpoint(path, map_location=map_location if map_location is not None
                               else (lambda storage, loc: storage))

    def save_checkpoint(self, checkpoint: dict, path, storage_options: Optional[Any] = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        with atomic_path(path) as tmp:      # a kill mid-write leaves the previous file whole
            torch.save(checkpoint, tmp)
            with open(tmp, "rb") as f:      # on disk before the rename makes it the checkpoint
                os.fsync(f.fileno())


__all__ = ["read_checkpoint", "model_hparams", "check_compatible", "architecture_diffs", "SafeCheckpointIO",
           "UnsafeCheckpointError", "CheckpointMismatchError", "ARCHITECTURE_KEYS"]
