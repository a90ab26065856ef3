"""Each rank's random stream: seeded apart under DDP, saved in checkpoints, restored on resume.

:class:`RandomState` is a Lightning callback that :class:`gan_video.module.TextToVideoGAN` returns
from ``configure_callbacks``. The torch, numpy and Python random states go into the checkpoint as
tensors and plain types (so :func:`gan_video.checkpoints.read_checkpoint` reads them), under the
top-level keys ``rng`` (this rank's) and, under DDP, ``rng_ranks`` (every rank's, gathered by rank 0's
writer). A resumed run continues the same streams, which is what makes it match an uninterrupted one
bit for bit (``tests/test_kill_resume.py``).
"""
from __future__ import annotations

import random

import numpy as np
import pytorch_lightning as pl
import torch


def rng_state() -> dict:
    """The torch (CPU), numpy and Python random states, as tensors and plain types."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
            "python": random.getstate()}


def set_rng_state(rng: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(rng["torch"])
    name, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(rng["python"])


class RandomState(pl.Callback):
    """Under DDP every rank starts from the same seed (``seed_everything``): at the start of training
    each rank gets its own stream (noise, wrong-caption pairs), unless a checkpoint just restored
    each rank's. Checkpoints carry the streams (``rng``, ``rng_ranks``) and a resume restores them."""

    def __init__(self):
        self.restored = False     # every rank's own stream came back from a checkpoint

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.world_size > 1 and not self.restored:
            seed = (torch.initial_seed() + 1_000_003 * trainer.global_rank) % (1 << 63)
            torch.manual_seed(seed)
            np.random.seed(seed % (1 << 32))
            random.seed(seed)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["rng"] = rng_state()
        world = trainer.world_size
        if world > 1 and torch.distributed.is_initialized():   # every rank runs this hook; rank 0 writes
            states = [None] * world
            torch.distributed.all_gather_object(states, checkpoint["rng"])
            checkpoint["rng_ranks"] = states

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        """Lightning calls this when it resumes a run (after the module's weights are loaded, before
        training starts): continue the same random streams."""
        rng = checkpoint.get("rng")
        ranks = checkpoint.get("rng_ranks") or []
        if len(ranks) == trainer.world_size > 1:     # as many ranks as when saved: each its own stream
            rng = ranks[trainer.global_rank]
            self.restored = True
        if rng:
            set_rng_state(rng)


__all__ = ["RandomState", "rng_state", "set_rng_state"]
