"""The project's cache folder, file hashes, atomic writes and the "no hub downloads" switch.

A leaf module: it imports nothing of gan_video, so every layer (data, models, metrics, tools) can
use it without an import cycle.

- :func:`cache_dir`: ``$GAN_VIDEO_CACHE``, else ``$XDG_CACHE_HOME/gan_video``, else
  ``~/.cache/gan_video``. Every cache (weights, FVD statistics, text embeddings, video scans, the
  alignment classifier) is a sub-folder of it; deleting any of them is always safe.
- :func:`file_sha256`: the sha256 of a file, remembered per process while size and mtime hold.
- :func:`atomic_write`: write through a temporary file in the same folder and ``os.replace`` it
  into place, so a reader (or a killed writer) never sees half a file.
- :func:`offline_hub`: the Hugging Face hub and transformers told not to touch the network.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Union

PathLike = Union[str, os.PathLike]


def cache_dir(sub: str = "") -> Path:
    """The project's cache folder, or its sub-folder ``sub`` (not created)."""
    root = os.environ.get("GAN_VIDEO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gan_video")
    return Path(root) / sub if sub else Path(root)


def offline() -> bool:
    """True when ``GAN_VIDEO_OFFLINE=1``: nothing may be downloaded (tests, air-gapped machines)."""
    return os.environ.get("GAN_VIDEO_OFFLINE") == "1"


_FILE_HASHES: dict[tuple, str] = {}


def file_sha256(path: PathLike) -> str:
    """sha256 (hex) of a file, remembered for the process while its size and mtime stay the same."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if key not in _FILE_HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 23):
                h.update(block)
        _FILE_HASHES[key] = h.hexdigest()
    return _FILE_HASHES[key]


@contextlib.contextmanager
def atomic_path(dest: PathLike) -> Iterator[Path]:
    """A temporary path beside ``dest`` to write to; on a clean exit it replaces ``dest`` in one
    step (``os.replace``), on an error it is removed and ``dest`` is left as it was."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write(dest: PathLike, data: Union[bytes, str, Callable[[Path], None]]) -> Path:
    """Write ``data`` (bytes, text, or a function that writes a given path) to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        if callable(data):
            data(tmp)
        elif isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
    return Path(dest)


@contextlib.contextmanager
def offline_hub(force: bool = True) -> Iterator[None]:
    """Tell the Hugging Face hub and transformers not to use the network while loading local
    weights (``force``, or whenever ``GAN_VIDEO_OFFLINE=1``). ``huggingface_hub`` reads
    ``HF_HUB_OFFLINE`` once at import, so its constant is switched too when it is imported."""
    if not (force or offline()):
        yield
        return
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: "1" for k in keys})
    hf = None
    try:
        import huggingface_hub.constants as hf
        old_flag, hf.HF_HUB_OFFLINE = hf.HF_HUB_OFFLINE, True
    except ImportError:
        pass
    try:
        yield
    finally:
        if hf is not None:
            hf.HF_HUB_OFFLINE = old_flag
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


__all__ = ["cache_dir", "offline", "file_sha256", "atomic_path", "atomic_write", "offline_hub"]
