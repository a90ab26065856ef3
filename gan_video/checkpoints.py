"""The one way gan_video reads a checkpoint: tensors and plain Python types only, never code.

A ``.ckpt`` file is a pickle, and a pickle can name any Python function to call while it loads
(``os.system`` included). Every reader in the project goes through :func:`read_checkpoint`, which
calls ``torch.load(weights_only=True)``: PyTorch's restricted unpickler builds tensors, dicts,
lists, tuples, strings and numbers and refuses every other global *before* calling it. A file that
needs anything else is refused with :class:`UnsafeCheckpointError`, which names the file and what
it asked for; nothing in it runs. gan_video's own checkpoints need nothing else: the random-generator
states go in as tensors and plain lists (:class:`gan_video.random_state.RandomState`).

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
from lightning_fabric.utilities.rank_zero import rank_zero_info

from .cache import atomic_path
from .models.discriminator import DiscriminatorConfig
from .models.generator import GeneratorConfig
from .models.text import RUNTIME_TEXT_KEYS, TextEncoderConfig
from .models.retired import drop_retired

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
    return drop_retired(hp, repr(path))


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
    diffs = architecture_diffs(drop_retired(saved, path), current)
    if diffs:
        raise CheckpointMismatchError(
            f"{path} was trained with another model config ({'; '.join(diffs)}); resume it with the "
            "config it was trained with (saved as config.yaml in its run folder) or start a new run")


# tensors a grown model (generator / discriminator ``grow_from``) adds to the smaller one it starts from
GROWN_PREFIXES = ("G.grow_", "G_ema.grow_", "D.stem.")


def initial_state(ckpt: dict, current: dict, own_state: dict, path: str = "the checkpoint") -> tuple[dict, list[str]]:
    """The state dict a new run starts from when ``model.init_from`` names checkpoint ``ckpt``.

    ``current`` is the new model's hyperparameters, ``own_state`` its freshly initialised state dict.
    The checkpoint's architecture must be the new one's, or, for a grown model (``grow_from: r`` in the
    generator and the discriminator), the same model at ``r`` px without growing, or grown from ``r``
    px to a smaller size (256 px from the 128 px run that grew from 64 px: the discriminator's stem
    gains its first halvings, the checkpoint's follow). Every tensor of the
    checkpoint is taken (the batch counter excepted: the new run counts from 0); the tensors only a
    grown model has keep their initialisation (zero residuals: the grown model starts by drawing and
    judging what the small one did). Returns the merged state and the names of the kept tensors.
    Raises :class:`CheckpointMismatchError` naming every difference."""
    saved = model_hparams(ckpt, path)
    expected = dict(current)
    grow = {current[k].get("grow_from", 0) for k in ("generator", "discriminator")}
    if len(grow) > 1:
        raise CheckpointMismatchError(
            f"model.init_from {path}: generator.grow_from and discriminator.grow_from differ "
            f"({current['generator'].get('grow_from', 0)} vs {current['discriminator'].get('grow_from', 0)}); "
            "a grown model needs both at the size of the checkpoint it starts from")
    (size,) = grow
    shift = 0          # halvings the discriminator's stem gains over the checkpoint's (grown twice)
    saved_res = int(saved.get("resolution", 0))
    saved_grow = {(saved.get(k) or {}).get("grow_from", 0) for k in ("generator", "discriminator")}
    if size and saved_grow == {size} and size < saved_res < current["resolution"]:
        # a grown model grown again (256 px from the 128 px run that grew from 64 px): the same
        # model at the checkpoint's size, its stem's halvings then those of the checkpoint's stem
        expected = {**expected, "resolution": saved_res}
        shift = (current["resolution"] // saved_res).bit_length() - 1
    elif size:
        expected = {**expected, "resolution": size,
                    "generator": {**current["generator"], "grow_from": 0},
                    "discriminator": {**current["discriminator"], "grow_from": 0}}
    diffs = architecture_diffs(saved, expected, names=("checkpoint", "expected"))
    if diffs:
        what = (f"the same model at {size} px without growing, or grown from {size} px to a size below "
                f"{current['resolution']}" if size else "this model")
        raise CheckpointMismatchError(
            f"model.init_from {path} cannot start this run: it must be {what} ({'; '.join(diffs)}). "
            "Start from a checkpoint of that config, or set model.init_from: null")
    state = ckpt["state_dict"]
    if shift:      # the new halvings come first (full size down to the checkpoint's size)
        state = {_shift_stem(k, shift): v for k, v in state.items()}
    merged = dict(own_state)
    for key, value in state.items():
        if key == "batches":
            continue
        if key not in own_state or own_state[key].shape != value.shape:
            raise CheckpointMismatchError(
                f"model.init_from {path}: tensor {key} {tuple(value.shape)} has no place in this model "
                f"({tuple(own_state[key].shape) if key in own_state else 'absent'})")
        merged[key] = value.to(own_state[key].dtype)
    kept = [k for k in own_state if k not in state and k != "batches"]
    strangers = [k for k in kept if not k.startswith(GROWN_PREFIXES)]
    if strangers:
        raise CheckpointMismatchError(f"model.init_from {path} lacks tensors this model needs: {strangers[:5]}")
    return merged, kept


def _shift_stem(key: str, shift: int) -> str:
    """``D.stem.steps.i.*`` -> ``D.stem.steps.(i + shift).*``; other keys as they are."""
    prefix = "D.stem.steps."
    if not key.startswith(prefix):
        return key
    index, rest = key[len(prefix):].split(".", 1)
    return f"{prefix}{int(index) + shift}.{rest}"


def load_initial_weights(model: torch.nn.Module, path: str) -> list[str]:
    """Load checkpoint ``path`` into ``model`` (a TextToVideoGAN) as :func:`initial_state` merges it;
    returns the names of the tensors left as initialised (a grown model's new layers)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"model.init_from {path!r} does not exist: train the run it starts from first (for "
            "configs/shapes_128.yaml: gan-video fit --config configs/shapes.yaml, which writes "
            "runs/shapes/checkpoints/last.ckpt), or set --model.init_from null to train from scratch")
    state, kept = initial_state(read_checkpoint(path), dict(model.hparams), model.state_dict(), path)
    model.load_state_dict(state)
    new = sorted({".".join(k.split(".")[:2]) for k in kept})
    rank_zero_info(f"model.init_from {path}: {len(state) - len(kept)} tensors loaded, {len(kept)} new "
                   f"({', '.join(new) or 'none'})")
    return kept


def write_final_last(trainer) -> None:
    """Write ``last.ckpt`` once more when the run ends between two periodic checkpoints.

    Lightning's ModelCheckpoint with ``every_n_train_steps`` writes ``last.ckpt`` only together
    with a periodic checkpoint, so a run whose ``max_steps`` is not a multiple of it ends with a
    ``last.ckpt`` from before its final batches (the Weizmann config, 4400 steps with a
    checkpoint every 650, lost its last 250 of 2200 batches that way). A run stopped by an error
    or a NaN does not get here: its ``last.ckpt`` stays the last good one."""
    for cb in trainer.checkpoint_callbacks:
        # Lightning keeps the step of its newest write in a private attribute; without it
        # (another version), write anyway: the same state again costs one file write
        if not getattr(cb, "save_last", False) or getattr(cb, "_last_global_step_saved", None) == trainer.global_step:
            continue
        path = cb.format_checkpoint_name(cb._monitor_candidates(trainer), cb.CHECKPOINT_NAME_LAST)
        if trainer.is_global_zero and os.path.islink(path):   # save_last="link": a file now, not the old target
            os.unlink(path)
        cb._save_checkpoint(trainer, path)
        cb.last_model_path = path


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O with :func:`read_checkpoint` as its reader and atomic saves.

    ``TextToVideoGAN.setup`` installs it (:func:`use_safe_checkpoint_io`), so ``--ckpt_path`` runs no
    code from the file it resumes."""

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


def use_safe_checkpoint_io(strategy) -> None:
    """Give ``strategy`` a :class:`SafeCheckpointIO` (safe reads, atomic writes) when it uses
    Lightning's plain ``TorchCheckpointIO``; a checkpoint I/O of its own (FSDP's sharded one, a
    user's plugin) is kept."""
    if type(strategy.checkpoint_io) is TorchCheckpointIO:
        strategy.checkpoint_io = SafeCheckpointIO()


__all__ = ["read_checkpoint", "use_safe_checkpoint_io", "model_hparams", "initial_state", "load_initial_weights", "write_final_last", "check_compatible", "architecture_diffs", "SafeCheckpointIO",
           "UnsafeCheckpointError", "CheckpointMismatchError", "ARCHITECTURE_KEYS"]
