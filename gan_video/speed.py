"""Training-time speed and memory options: memory layout, ``torch.compile`` and activation
checkpointing (``model.speed`` in the YAML); and the checks of how the Trainer runs the module
(DDP's unused parameters, a CPU whose bfloat16 conv3d is broken) that ``TextToVideoGAN.setup`` makes.

No speed option changes what a network computes or how its weights are named: a checkpoint written
with any of them loads without them, and the other way round. They act on the training module only
(``setup("fit")``); ``gan_video.load`` and the evaluation tools build plain networks.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterable, Literal

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .models.blocks import UpBlock2d, UpBlock3d

COMPILE_BACKENDS = ("off", "inductor", "aot_eager", "eager")


@dataclass
class SpeedConfig:
    """Speed and memory options of a training run.

    Attributes:
        memory_format: ``contiguous`` (default) or ``channels_last``: 4D conv weights in
            ``channels_last`` and 5D ones in ``channels_last_3d``, so that the convolutions of G and D
            run in the NHWC / NDHWC layout (often faster on GPUs with tensor cores, and for some
            oneDNN CPU kernels; measure with ``tools/benchmark.py``).
        compile: ``off`` (default), or a ``torch.compile`` backend for the generator (``inductor``;
            ``aot_eager`` and ``eager`` check the capture without code generation). The
            discriminator is not compiled: its R1 penalty differentiates twice, which
            ``torch.compile`` does not support.
        activation_checkpointing: recompute the activations of each generator up-block and each
            discriminator down-block in the backward pass instead of storing them: less memory for
            about one more forward pass of compute.
    """
    memory_format: Literal["contiguous", "channels_last"] = "contiguous"
    compile: str = "off"
    activation_checkpointing: bool = False

    def __post_init__(self):
        if self.memory_format not in ("contiguous", "channels_last"):
            raise ValueError(f"model.speed.memory_format {self.memory_format!r}: use contiguous or channels_last")
        if self.compile not in COMPILE_BACKENDS:
            raise ValueError(f"model.speed.compile {self.compile!r}: use one of {', '.join(COMPILE_BACKENDS)}")


def to_channels_last(modules: Iterable[nn.Module]) -> int:
    """Put every 4D parameter in ``channels_last`` and every 5D one in ``channels_last_3d``, in
    place (the same tensors, so optimisers built later or earlier keep pointing at them). Returns
    how many parameters were converted."""
    formats = {4: torch.channels_last, 5: torch.channels_last_3d}
    n = 0
    for module in modules:
        for p in module.parameters():
            fmt = formats.get(p.dim())
            if fmt is not None and not p.is_contiguous(memory_format=fmt):
                p.data = p.data.contiguous(memory_format=fmt)
                n += 1
    return n


def _checkpointed(forward):
    def run(*args, **kwargs):
        if torch.is_grad_enabled():
            return checkpoint(forward, *args, use_reentrant=False, **kwargs)
        return forward(*args, **kwargs)
    run.checkpointed = True
    return run


def checkpoint_blocks(generator: nn.Module, discriminator: nn.Module) -> int:
    """Wrap the forward of each generator up-block and each discriminator down-block in
    :func:`torch.utils.checkpoint.checkpoint` (non-reentrant: works with R1's double backward and
    keeps the random state of the recomputation). Parameters and their names are untouched.
    Returns how many blocks were wrapped."""
    blocks = [m for m in generator.modules() if isinstance(m, (UpBlock2d, UpBlock3d))]
    for head in (getattr(discriminator, name, None) for name in ("frame", "video", "motion")):
        if head is not None:
            blocks += list(head.net)
    for block in blocks:
        if not getattr(block.forward, "checkpointed", False):
            block.forward = _checkpointed(block.forward)
    return len(blocks)


def apply_speed(cfg: SpeedConfig, generator: nn.Module, discriminator: nn.Module,
                others: Iterable[nn.Module] = ()) -> dict:
    """Apply ``cfg`` to a training run's networks; returns what was done (for the log)."""
    done = {}
    if cfg.memory_format == "channels_last":
        done["channels_last_params"] = to_channels_last([generator, discriminator, *others])
    if cfg.activation_checkpointing:
        done["checkpointed_blocks"] = checkpoint_blocks(generator, discriminator)
    if cfg.compile != "off":
        generator.compile(backend=cfg.compile)
        done["compiled"] = cfg.compile
    return done


@functools.lru_cache(maxsize=None)
def cpu_bf16_conv3d_broken() -> bool:
    """Whether this CPU's bfloat16 conv3d weight gradient is wrong for finite inputs: non-finite,
    or further from the fp32 gradient of the same numbers than bf16 rounding allows. Seen with
    torch 2.14 on an AMD EPYC with AVX-512 bf16 and no AMX: NaN, or values of 1e38, for some batch
    sizes, not the same from call to call (a kernel reading memory it did not write), which made
    ``precision: bf16-mixed`` on that CPU stop at its first batch as "diverged". Probed once per
    process on small shapes like the discriminator's video head, with a private random stream."""
    gen = torch.Generator().manual_seed(0)
    weight = (torch.randn(16, 8, 3, 4, 4, generator=gen) * 0.1).bfloat16()
    for batch in (4, 8, 12, 32, 4, 8):
        x = torch.randn(batch, 8, 2, 8, 8, generator=gen).bfloat16()
        grads = []
        for dtype in (torch.bfloat16, torch.float32):       # the same numbers, in bf16 and in fp32
            w = weight.to(dtype).clone().requires_grad_(True)
            torch.nn.functional.conv3d(x.to(dtype), w, None, (1, 2, 2), 1).float().sum().backward()
            grads.append(w.grad.float())
        got, ref = grads
        # non-finite, or finite garbage (seen too: values of 1e38): more than bf16 rounding apart
        if not torch.isfinite(got).all() or (got - ref).abs().max() > 0.05 * ref.abs().max() + 1e-3:
            return True
    return False


def refuse_broken_cpu_bf16(trainer) -> None:
    """Raise RuntimeError when ``trainer`` would train in bfloat16 on a CPU whose bf16 conv3d
    gradient is faulty (:func:`cpu_bf16_conv3d_broken`): the first batch would stop as diverged."""
    precision = str(getattr(trainer, "precision", ""))
    if precision.startswith("bf16") and trainer.strategy.root_device.type == "cpu" and cpu_bf16_conv3d_broken():
        raise RuntimeError(
            f"precision {precision} on this CPU: PyTorch's bfloat16 conv3d gradient is NaN or wrong "
            "for finite inputs here (a kernel fault of this CPU's bf16 path, not of the model), so "
            "training would stop at its first batch. Train on the CPU with --trainer.precision "
            "32-true (every config's CPU setting); bf16-mixed is for GPUs")


def find_unused_parameters_under_ddp(strategy) -> None:
    """Under DDP each batch makes two backward passes through a network of which only part is
    trained (D's step leaves G alone, G's step reads a frozen D): DDP must look for the parameters
    a backward pass did not reach. Call before the strategy wraps the module (``setup``); a value
    the user gave is kept."""
    from pytorch_lightning.strategies import DDPStrategy

    if isinstance(strategy, DDPStrategy):
        strategy._ddp_kwargs.setdefault("find_unused_parameters", True)
