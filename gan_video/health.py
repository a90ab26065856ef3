"""A run's health: non-finite numbers caught at the step they appear, and data faults summed over
worker processes (and ranks) into one summary per epoch. :class:`gan_video.module.TextToVideoGAN`
uses both.

Non-finite values (``model.on_nonfinite``) are :class:`NonFiniteCallback`'s, a Lightning callback
that the module returns from ``configure_callbacks`` (so it is active under any Trainer). After each
optimiser step the module hands it the loss, its terms and the networks it updated
(:meth:`NonFiniteCallback.watch`); :class:`FiniteGuard` keeps them as device flags (no host sync) and
checks them all with one sync at the end of the batch (:meth:`NonFiniteCallback.failed`). When one is
NaN or inf it names the batch, the optimiser step and the first bad value in the order they were
computed (a loss term, the loss, a gradient, a weight), then

- ``stop`` (the default): raises :class:`NonFiniteError`. No checkpoint is written after that, so
  the newest one on disk is the last good state; the message names it and how to resume.
- ``rollback``: reloads the weights, EMA and optimiser states from the newest checkpoint, halves
  both learning rates and goes on (the step counter and the data keep going forward). At most
  ``max_rollbacks`` times; then, or when there is no checkpoint yet, it stops as above.
- ``off``: no checks (a little faster on a GPU: no host sync per batch).
"""
from __future__ import annotations

import glob
import os
from collections import Counter
from typing import Iterable, Literal, Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn

from .checkpoints import read_checkpoint

NonFiniteMode = Literal["stop", "rollback", "off"]
NONFINITE_MODES = ("stop", "rollback", "off")


class NonFiniteError(RuntimeError):
    """A loss, gradient or weight became NaN or inf; the message says where and what to do."""


def _bad(x) -> bool:
    return not bool(torch.isfinite(torch.as_tensor(x, dtype=torch.float32)).all())


class FiniteGuard:
    """Collects finiteness flags during a batch (:meth:`watch`) and checks them once (:meth:`failure`)."""

    def __init__(self, mode: NonFiniteMode = "stop"):
        if mode not in NONFINITE_MODES:
            raise ValueError(f"on_nonfinite must be one of {NONFINITE_MODES}, got {mode!r}")
        self.mode = mode
        self._watched: list[tuple] = []
        self._flags: list[torch.Tensor] = []

    @property
    def active(self) -> bool:
        return self.mode != "off"

    def watch(self, what: str, loss: torch.Tensor, terms: dict, named_params: Iterable) -> None:
        """Note the state after ``what``'s optimiser step: its loss and terms, the gradients and
        the weights of the parameters it updated (``(name, tensor)`` pairs)."""
        if not self.active:
            return
        params = [(n, p) for n, p in named_params]
        grads = [p.grad for _, p in params if p.grad is not None]
        weights = [p.detach() for _, p in params]
        flag = torch.isfinite(loss.detach()).all()
        for group in (grads, weights):
            if group:
                flag = flag & torch.isfinite(torch.stack(torch._foreach_norm(group))).all()
        self._flags.append(flag)
        self._watched.append((what, loss.detach(), dict(terms), params))

    def forget(self) -> None:
        self._watched, self._flags = [], []

    def failure(self, trainer=None) -> Optional[str]:
        """None when everything watched since the last call is finite (on every rank), else what
        went bad first; forgets what it watched either way."""
        watched, flags = self._watched, self._flags
        self.forget()
        if not flags:
            return None
        ok = bool(torch.stack(flags).all())
        strategy = getattr(trainer, "strategy", None)
        if strategy is not None and getattr(trainer, "world_size", 1) > 1:
            ok = strategy.reduce_boolean_decision(ok, all=True)   # every rank stops or rolls back together
        if ok:
            return None
        for what, loss, terms, params in watched:
            for name, value in terms.items():
                if _bad(value):
                    return f"{what} loss term '{name}' is {_describe(value)}"
            if _bad(loss):
                return f"{what} loss is {_describe(loss)}"
            for name, p in params:
                if p.grad is not None and _bad(p.grad):
                    return f"the gradient of {name} ({what} step) has {_describe(p.grad)} values"
            for name, p in params:
                if _bad(p.detach()):
                    return f"the weight {name} ({what} step) has {_describe(p.detach())} values"
        return "another rank saw a non-finite loss, gradient or weight"


def _describe(x) -> str:
    t = torch.as_tensor(x, dtype=torch.float32).detach()
    kinds = [k for k, m in (("NaN", torch.isnan(t)), ("inf", torch.isinf(t))) if bool(m.any())]
    return " and ".join(kinds) or "non-finite"


class NonFiniteCallback(pl.Callback):
    """``model.on_nonfinite`` (see the module docstring) as a callback.

    The module reports each optimiser step with :meth:`watch` and asks :meth:`failed` at the end of
    the batch, before its EMA update: True means the batch was rolled back and must leave no trace;
    ``stop`` (or no rollback left) raises :class:`NonFiniteError`. Works without a Trainer too (a
    script driving ``training_step``): it then has no checkpoint to roll back to."""

    def __init__(self, mode: NonFiniteMode = "stop", max_rollbacks: int = 3, lr_factor: float = 0.5):
        self.flags = FiniteGuard(mode)
        self.mode, self.max_rollbacks, self.lr_factor = mode, max_rollbacks, lr_factor
        self.rollbacks = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.flags.forget()      # a batch starts clean (one that raised half-way left its flags)

    def watch(self, module: torch.nn.Module, what: str, loss: torch.Tensor, terms: dict,
              *networks: torch.nn.Module) -> None:
        """After ``what``'s optimiser step: its loss, its terms and ``networks``, the children of
        ``module`` it updated (their parameters are named as in ``module``'s state dict)."""
        if not self.flags.active:
            return
        names = {id(m): n for n, m in module.named_children()}
        params = [(f"{names.get(id(m), 'module')}.{n}", p) for m in networks for n, p in m.named_parameters()]
        self.flags.watch(what, loss, terms, params)

    def failed(self, module) -> bool:
        """False when every value watched in this batch is finite (on every rank); True when the
        batch went bad and the run rolled back; raises :class:`NonFiniteError` when it stops."""
        trainer = module._trainer                  # None when a script drives the step
        problem = self.flags.failure(trainer)
        if not problem:
            return False
        batches = int(module.batches)
        step = trainer.global_step if trainer is not None else 2 * (batches + 1)
        where = f"batch {batches} (optimizer steps {step - 1}-{step})"     # D's and G's step
        ckpt = newest_checkpoint(trainer) if trainer is not None else None
        if self.mode == "rollback" and ckpt and self.rollbacks < self.max_rollbacks:
            self.rollback(trainer, module, ckpt, where, problem)
            return True
        if self.mode == "rollback" and ckpt:
            why = f" after {self.rollbacks} rollbacks"
        else:
            why = " (no checkpoint to roll back to yet)" if self.mode == "rollback" else ""
        keep = (f"the last good checkpoint is {ckpt}: resume from it (--ckpt_path) with lower learning "
                "rates (--model.lr_d, --model.lr_g) or a stronger R1 (--model.r1_gamma), or train with "
                "--model.on_nonfinite rollback" if ckpt else
                "no checkpoint had been written yet: lower the learning rates (--model.lr_d, --model.lr_g) "
                "or add R1 (--model.r1_gamma) and start again")
        raise NonFiniteError(f"training diverged at {where}: {problem}. The run stopped{why}; {keep}")

    def rollback(self, trainer, module, ckpt: str, where: str, problem: str) -> None:
        """Reload the weights (EMA and batch counter included) and the optimiser states of ``ckpt``,
        with every learning rate times ``lr_factor``."""
        self.rollbacks += 1
        state = read_checkpoint(ckpt)
        missing, unexpected = module.load_state_dict(state["state_dict"], strict=False)
        if missing or unexpected:
            raise NonFiniteError(f"{where}: {problem}; cannot roll back: {ckpt} does not match this model")
        lrs = []
        for opt, saved in zip(trainer.optimizers, state["optimizer_states"]):
            opt.load_state_dict(saved)
            for group in opt.param_groups:
                group["lr"] *= self.lr_factor
            lrs.append(f"{opt.param_groups[0]['lr']:.3g}")
        rank_zero_warn(f"{where}: {problem}; rolled back to {ckpt} (batch {int(module.batches)}) with the "
                       f"learning rates halved (generator {lrs[0]}, discriminator {lrs[1]}); rollback "
                       f"{self.rollbacks} of {self.max_rollbacks}")


def newest_checkpoint(trainer) -> Optional[str]:
    """The newest ``.ckpt`` the trainer's checkpoint callbacks have written (by modification time)."""
    found = []
    for cb in getattr(trainer, "checkpoint_callbacks", []) or []:
        folder = getattr(cb, "dirpath", None)
        if folder and os.path.isdir(folder):
            found += glob.glob(os.path.join(folder, "*.ckpt"))
    return max(found, key=os.path.getmtime) if found else None


class DataFaults(pl.Callback):
    """Clips that failed to decode, summed over the batches of an epoch: each batch of the video
    datasets carries a ``faults`` list (the paths that failed on the way to each item, one per line,
    see :mod:`gan_video.data.video.datasets`), so failures in worker processes are counted here, in
    the main process; :meth:`epoch_summary` adds the other ranks' counts. As a callback (the module
    brings it, ``configure_callbacks``) it reads every training batch and, at each epoch's end, warns
    once with the worst files and logs ``data/decode_failures``."""

    def __init__(self):
        self.counts: Counter = Counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.update(batch)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        failures, message = self.epoch_summary(trainer)
        if message:
            rank_zero_warn(message)
        pl_module.log("data/decode_failures", float(failures), sync_dist=True, reduce_fx="max")  # already summed

    def update(self, batch) -> None:
        faults = batch.get("faults") if isinstance(batch, dict) else None
        for text in faults or ():
            for path in filter(None, str(text).split("\n")):
                self.counts[path] += 1

    def epoch_summary(self, trainer=None) -> tuple[int, Optional[str]]:
        """``(failures, message)`` for the epoch that ended, over all ranks (message None when there
        were none); resets the counts."""
        counts, self.counts = self.counts, Counter()
        if trainer is not None and getattr(trainer, "world_size", 1) > 1 and torch.distributed.is_initialized():
            gathered = [None] * trainer.world_size
            torch.distributed.all_gather_object(gathered, dict(counts))
            counts = sum((Counter(c) for c in gathered), Counter())
        total = sum(counts.values())
        if not total:
            return 0, None
        worst = ", ".join(f"{os.path.basename(p)} ({n})" for p, n in counts.most_common(5))
        more = f" and {len(counts) - 5} more" if len(counts) > 5 else ""
        return total, (f"video data: {total} clip{'s' if total > 1 else ''} from {len(counts)} "
                       f"file{'s' if len(counts) > 1 else ''} failed to decode this epoch and were replaced "
                       f"by other clips: {worst}{more}; run gan-video-prepare on the folder to find the "
                       "bad files and drop them")


__all__ = ["FiniteGuard", "NonFiniteCallback", "NonFiniteError", "NonFiniteMode", "NONFINITE_MODES", "DataFaults", "newest_checkpoint"]
