"""A run's health: non-finite numbers caught at the step they appear, and data faults summed over
worker processes (and ranks) into one summary per epoch. :class:`gan_video.module.TextToVideoGAN`
uses both.

Non-finite values (``model.on_nonfinite``): after each optimiser step the module hands
:class:`FiniteGuard` the loss, its terms, the gradients and the weights of the networks it updated.
The guard keeps them as device flags (no host sync) and checks them all with one sync at the end of
the batch. When one is NaN or inf it names the batch, the optimiser step and the first bad value in
the order they were computed (a loss term, the loss, a gradient, a weight), then

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

import torch

NonFiniteMode = Literal["stop", "rollback", "off"]
NONFINITE_MODES = ("stop", "rollback", "off")


class NonFiniteError(RuntimeError):
    """A loss, gradient or weight became NaN or inf; the message says where and what to do."""


def _bad(x) -> bool:
    return not bool(torch.isfinite(torch.as_tensor(x, dtype=torch.float32)).all())


class FiniteGuard:
    """Collects finiteness flags during a batch (:meth:`watch`) and checks them once (:meth:`failure`)."""

    def __init__(self, mode: NonFiniteMode = "stop", max_rollbacks: int = 3, lr_factor: float = 0.5):
        if mode not in NONFINITE_MODES:
            raise ValueError(f"on_nonfinite must be one of {NONFINITE_MODES}, got {mode!r}")
        self.mode, self.max_rollbacks, self.lr_factor = mode, max_rollbacks, lr_factor
        self.rollbacks = 0
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

    def failure(self, trainer=None) -> Optional[str]:
        """None when everything watched since the last call is finite (on every rank), else what
        went bad first; forgets what it watched either way."""
        watched, flags = self._watched, self._flags
        self._watched, self._flags = [], []
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


def newest_checkpoint(trainer) -> Optional[str]:
    """The newest ``.ckpt`` the trainer's checkpoint callbacks have written (by modification time)."""
    found = []
    for cb in getattr(trainer, "checkpoint_callbacks", []) or []:
        folder = getattr(cb, "dirpath", None)
        if folder and os.path.isdir(folder):
            found += glob.glob(os.path.join(folder, "*.ckpt"))
    return max(found, key=os.path.getmtime) if found else None


class DataFaults:
    """Clips that failed to decode, summed over the batches of an epoch: each batch of the video
    datasets carries a ``faults`` list (the paths that failed on the way to each item, one per line,
    see :mod:`gan_video.data.video.datasets`), so failures in worker processes are counted here, in
    the main process; :meth:`epoch_summary` adds the other ranks' counts."""

    def __init__(self):
        self.counts: Counter = Counter()

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


__all__ = ["FiniteGuard", "NonFiniteError", "NonFiniteMode", "NONFINITE_MODES", "DataFaults", "newest_checkpoint"]
