"""The frozen text encoders' embedding cache: caption -> embedding, in memory and on disk.

Each distinct caption is embedded once: embeddings stay in memory, and (``text.cache``, the
default) on disk under ``$GAN_VIDEO_CACHE`` (default ``~/.cache/gan_video``)::

    text_embeddings/v1/<backbone id>/<sha256 of the caption list, 16 hex>.safetensors

``<backbone id>`` names the weights: ``minilm-<sha256 of the model folder>``,
``clip-<model>-<sha256 of the weights file>`` or ``clip-<model>-<open_clip tag>``. A file holds the
tensors ``embeddings`` (float32 ``[N, D]``) and ``captions`` (the UTF-8 JSON list of the N
captions, as uint8); safetensors files carry no code, so loading them is safe. A file is written for
the captions a :meth:`EmbeddingCache.precompute` call (at fit start, for a datamodule with
``all_captions()``) had to embed, and for captions embedded on the fly (written by
:meth:`EmbeddingCache.flush` at the end of each training epoch and of fit, or when 4096 are
waiting). The first miss of a process reads every file of the backbone's folder. Deleting the folder
is always safe.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Optional, Sequence

import torch

from ...cache import atomic_write, cache_dir
from ..text_config import check_prompts

CACHE_FORMAT = 1          # bump when an embedding pipeline changes: older cache files are then ignored
FLUSH_EVERY = 4096        # on-the-fly embeddings waiting for the disk cache before they are written


def captions_key(captions: Sequence[str]) -> str:
    """16 hex digits naming a list of captions (its cache file)."""
    return hashlib.sha256(json.dumps(list(captions)).encode()).hexdigest()[:16]


def embedding_cache_root() -> Path:
    """``<cache>/text_embeddings/v<format>``; ``<cache>`` is ``$GAN_VIDEO_CACHE`` or ``~/.cache/gan_video``."""
    return cache_dir("text_embeddings") / f"v{CACHE_FORMAT}"


class EmbeddingCache:
    """Caption -> fixed embedding ``[dim]``, in memory and (``disk``) in the files described above.

    A base class: the subclass (a frozen backbone) sets ``dim`` and ``identity`` (names its weights,
    and so its cache folder) and implements :meth:`_compute` (captions -> ``[N, dim]`` float32 on
    the CPU), which runs only for captions neither in memory nor on disk.
    """

    dim: int
    identity: str

    def __init__(self):
        self._memory: dict[str, torch.Tensor] = {}
        self._pending: list[str] = []     # embedded on the fly, not yet in the disk cache
        self._scanned: set[Path] = set()  # cache folders already read into memory

    def _compute(self, captions: list[str], device, progress: Optional[bool]) -> torch.Tensor:
        raise NotImplementedError

    # -- files
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
        # atomic: a reader (or another rank) never sees half a file
        atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={"format": str(CACHE_FORMAT),
                                                                              "backbone": self.identity}))
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

    # -- lookups
    def _missing(self, captions: Sequence[str], disk: bool) -> list[str]:
        missing = [c for c in dict.fromkeys(captions) if c not in self._memory]
        if missing and disk:
            self._read_cache()
            missing = [c for c in missing if c not in self._memory]
        return missing

    def _add(self, captions: list[str], device, progress: Optional[bool], disk: bool) -> None:
        emb = self._compute(captions, device, progress)
        for caption, row in zip(captions, emb):
            self._memory[caption] = row.clone()
        if disk:
            self._pending += captions

    def embed(self, captions: Sequence[str], device: torch.device | str | None = None,
              disk: bool = True) -> torch.Tensor:
        """Embeddings ``[N, dim]`` (float32, on ``device``) of ``captions``, from the cache where
        possible; new captions are embedded now and (``disk``) written to the disk cache later."""
        captions = list(captions)
        check_prompts(captions)
        missing = self._missing(captions, disk)
        if missing:
            self._add(missing, device, False, disk)
            if disk and len(self._pending) >= FLUSH_EVERY:
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
            self._add(missing, device, progress, disk)
        if disk:
            self.flush()
        return len(missing)


__all__ = ["EmbeddingCache", "embedding_cache_root", "captions_key", "CACHE_FORMAT", "FLUSH_EVERY"]
