"""What every data module shares: resumable training order and the one DataLoader builder.

- :class:`EpochShuffle`: the training order as a function of (seed, epoch), able to start mid-epoch;
- :class:`ResumableDataModule`: records how far into the epoch a checkpoint was taken, starts the
  next training sampler there, and serves the validation set;
- :func:`data_loader`: the training and validation DataLoaders of every data module.
"""
from __future__ import annotations

from typing import Optional

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class EpochShuffle(Sampler[int]):
    """A shuffle that is a function of (seed, epoch): a run resumed from a checkpoint sees the same
    order as one that never stopped (Lightning calls ``set_epoch`` on samplers that have it)."""

    def __init__(self, size: int, seed: int = 0):
        self.size, self.seed, self.epoch = size, seed, 0
        self.resume: tuple[int, int] | None = None  # (epoch, samples a resumed run already saw)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def positions(self) -> list[int]:
        """This epoch's order (from where a resumed run stopped, the first time after a resume)."""
        start = 0
        if self.resume is not None:
            epoch, seen = self.resume
            self.resume = None
            # A resumed run may build its first iterator before Lightning calls set_epoch (it does
            # when worker processes prefetch): the resume point names the epoch itself.
            if epoch >= self.epoch:
                self.epoch, start = epoch, seen
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.size, generator=gen).tolist()[start:]

    def __iter__(self):
        return iter(self.positions())


def data_loader(dataset: Dataset, batch_size: int, sampler: Optional[EpochShuffle] = None,
                num_workers: int = 0, seed: Optional[int] = None, collate_fn=None) -> DataLoader:
    """The DataLoader of a data module.

    Training (``sampler`` given): batches of ``batch_size`` in the sampler's order, the last partial
    batch dropped, ``num_workers`` persistent worker processes, pinned memory when CUDA is there;
    ``seed`` seeds the loader's own generator (worker seeds), else they come from torch's global RNG;
    ``collate_fn`` replaces the default collation (a sparse video dataset decodes there).
    Validation (no sampler): every item in order, batches of at least 32, in the main process.
    """
    if sampler is None:
        return DataLoader(dataset, batch_size=max(batch_size, 32), shuffle=False)
    return DataLoader(dataset, batch_size=batch_size, drop_last=True, sampler=sampler,
                      num_workers=num_workers, persistent_workers=num_workers > 0,
                      pin_memory=torch.cuda.is_available(), collate_fn=collate_fn,
                      generator=None if seed is None else torch.Generator().manual_seed(seed))


class ResumableDataModule(pl.LightningDataModule):
    """Mid-epoch resumption: the checkpoint records how far into the epoch the run was; the next
    training sampler passed through :meth:`resumed` starts there. Subclasses have the hyperparameters
    ``batch_size``, ``num_workers`` and ``seed`` and set ``train_set`` / ``val_set`` in ``setup``."""

    def __init__(self):
        super().__init__()
        self._resume: dict = {}

    def state_dict(self) -> dict:
        trainer = self.trainer
        if trainer is None:
            return {}
        progress = trainer.fit_loop.epoch_loop.batch_progress.current
        return {"epoch": trainer.current_epoch, "batches": progress.processed}

    def load_state_dict(self, state: dict) -> None:
        self._resume = dict(state)

    def resumed(self, sampler: EpochShuffle) -> EpochShuffle:
        """``sampler``, starting where the checkpoint's epoch stopped (once, after a resume). A
        checkpoint taken after the last full batch of an epoch resumes at the next epoch's start."""
        if self._resume:
            epoch, seen = self._resume["epoch"], self._resume["batches"] * self.hparams.batch_size
            if seen + self.hparams.batch_size > sampler.size:     # no full batch left (drop_last)
                epoch, seen = epoch + 1, 0
            sampler.resume = (epoch, seen)
            self._resume = {}
        return sampler

    def val_dataloader(self) -> DataLoader:
        return data_loader(self.val_set, self.hparams.batch_size)
