"""TextToVideoGAN: the LightningModule that trains a text-conditioned generator adversarially.

The networks are plain ``nn.Module``s built from typed configs (:mod:`gan_video.models`) and the
losses live in one object (:class:`gan_video.losses.GANLoss`); this module only wires them to the
optimisers (manual optimisation: one D step then one G step per batch), keeps an EMA copy of the
generator and its text encoder for sampling, and checks checkpoints against the config.
:func:`load_model` reads a checkpoint for sampling and evaluation through the safe reader of
:mod:`gan_video.checkpoints`.
"""
from __future__ import annotations

import copy
import logging
import os
import random
from dataclasses import asdict, fields
from typing import Optional, Sequence, Union

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.utilities import rank_zero_warn
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from .checkpoints import (CheckpointMismatchError, SafeCheckpointIO, check_compatible, load_initial_weights,
                          model_hparams, read_checkpoint, write_final_last)
from .health import DataFaults, FiniteGuard, NonFiniteError, NonFiniteMode, newest_checkpoint
from .losses import GANLoss, LossKind, MismatchKind, mode_seeking
from .speed import SpeedConfig, apply_speed, cpu_bf16_conv3d_broken
from .models.discriminator import Discriminator, DiscriminatorConfig
from .models.generator import GeneratorConfig, build_generator
from .models.text import TextEncoderConfig, build_text_encoder, embed_captions, tokenizer_for


log = logging.getLogger(__name__)


def _as_config(value, cls):
    if isinstance(value, cls):
        return value
    if value is None:
        return cls()
    if isinstance(value, dict):
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**value)
    raise TypeError(f"expected {cls.__name__} or dict, got {type(value).__name__}")


class TextToVideoGAN(pl.LightningModule):
    """A text-to-video GAN.

    Args:
        generator: generator config (``arch: layered`` or ``t2v2018`` and its sizes).
        discriminator: discriminator config (frame head, video head, text conditioning).
        text: text encoder config; G and D each own an encoder built from it (``name: small`` or
            ``bag``: trainable over tokens; ``minilm`` or ``clip``: a frozen pretrained backbone,
            shared and kept out of checkpoints, with a trainable head; see ``embed_text``).
        resolution: frame size; linked to ``data.resolution`` by the CLI.
        frames: clip length; linked to ``data.frames`` by the CLI.
        loss: ``hinge`` or ``nonsaturating``.
        lr_g: generator (and its text encoder) learning rate.
        lr_d: discriminator (and its text encoder) learning rate.
        betas: Adam betas for both optimisers.
        mismatch_weight: share of the "fake" side given to real clips with a wrong caption.
        mismatch: which wrong caption a real clip is paired with: ``shift`` (another clip's, as in
            the 2018 paper) or ``similar`` (half ``shift``, half the batch caption sharing most
            words with the right one, e.g. same colour but another shape: text hard negatives) or
            ``counterfactual`` (half ``shift``, half the dataset's ``negative_caption`` of each clip:
            for the built-in shapes its caption with one attribute changed, each attribute a third).
        r1_gamma: R1 weight; 0 disables it.
        r1_every: lazy R1: applied every this many steps, scaled up to match.
        ema_decay: the largest EMA decay of the sampling generator.
        ema_start: the decay at batch ``s`` is ``min(ema_decay, (1+s)/(ema_start+s))``, so the EMA
            averages over about the last ``(s + ema_start) / (ema_start - 1)`` batches until that
            reaches ``1 / (1 - ema_decay)``: with 10 and 0.999, the last ~11% of the batches so far
            (184 at batch 1650; 0.999 only from batch ~9000 on).
        reverse_negatives: weight of time-reversed real clips, with their own captions, as extra
            "fake" examples for the video head. They look real frame by frame and differ from the
            caption only in motion, so D must read motion against the text (for the shapes, left vs
            right); 0 disables them (use 0 where most actions look the same backwards).
        share_text: the generator reads the discriminator's text encoder (detached) instead of
            training its own: D learns what the words mean from real/mismatched pairs, and G gets
            that meaning from the first steps (the role a pretrained encoder plays in TFGAN).
        mode_seeking: weight of MSGAN's mode-seeking term for the generator (0: off): over pairs of
            clips of the batch with the same caption, ``1 / (clip distance / noise distance)``, so
            that one caption with two noises gives two different clips (against per-caption mode
            collapse; :func:`gan_video.losses.mode_seeking`).
        init_from: a checkpoint to start training from (its weights, not its optimiser state or
            step): the same model, or the model at the size it grows from (``grow_from`` in the
            generator and discriminator configs: ProGAN-style, a 128 px run starting from a trained
            64 px one). Read with the safe reader; ignored when a run resumes (``--ckpt_path``).
        on_nonfinite: what a NaN or inf in a loss, a gradient or a weight does (checked every
            batch, see :mod:`gan_video.health`): ``stop`` the run naming the batch and the term,
            keeping the last good checkpoint; ``rollback`` to the newest checkpoint with both
            learning rates halved (at most 3 times, then stop); ``off``: no check.

    Note: Lightning counts an optimiser step for D and one for G, so ``trainer.max_steps`` and
    ``global_step`` are twice the number of batches; ``self.batches`` counts batches.
    """

    # The config types are the dataclasses alone (no ``dict`` in the annotation), so that the CLI
    # checks every field, Literal choices included, when it reads a YAML; Python callers (and
    # load_model, with a checkpoint's saved dicts) may still pass plain dicts.
    def __init__(self, generator: Optional[GeneratorConfig] = None,
                 discriminator: Optional[DiscriminatorConfig] = None,
                 text: Optional[TextEncoderConfig] = None,
                 resolution: int = 64, frames: int = 32, loss: LossKind = "hinge",
                 lr_g: float = 2e-4, lr_d: float = 2e-4, betas: tuple[float, float] = (0.0, 0.99),
                 mismatch_weight: float = 0.5, mismatch: MismatchKind = "shift", r1_gamma: float = 0.0,
                 r1_every: int = 16, ema_decay: float = 0.999, ema_start: int = 10,
                 reverse_negatives: float = 0.0, share_text: bool = True, on_nonfinite: NonFiniteMode = "stop",
                 speed: Optional[SpeedConfig] = None, mode_seeking: float = 0.0,
                 init_from: Optional[str] = None):
        super().__init__()
        self.guard, self.data_faults = FiniteGuard(on_nonfinite), DataFaults()
        self.gan_loss = GANLoss(loss, mismatch, mismatch_weight, reverse_negatives, r1_gamma, r1_every)
        g_cfg = _as_config(generator, GeneratorConfig)
        d_cfg = _as_config(discriminator, DiscriminatorConfig)
        if d_cfg.sparse_frames and g_cfg.arch == "t2v2018":
            raise ValueError("discriminator.sparse_frames needs a generator that draws any frame time "
                             "(generator.arch: layered or animator); t2v2018 draws whole clips: set "
                             "discriminator.sparse_frames: 0")
        t_cfg = _as_config(text, TextEncoderConfig)
        self.speed = _as_config(speed, SpeedConfig)
        self.save_hyperparameters({
            "generator": asdict(g_cfg), "discriminator": asdict(d_cfg), "text": asdict(t_cfg),
            "resolution": resolution, "frames": frames, "loss": loss, "lr_g": lr_g, "lr_d": lr_d,
            "betas": list(betas), "mismatch_weight": mismatch_weight, "mismatch": mismatch, "r1_gamma": r1_gamma,
            "r1_every": r1_every, "ema_decay": ema_decay, "ema_start": ema_start,
            "reverse_negatives": reverse_negatives, "share_text": share_text, "on_nonfinite": on_nonfinite,
            "speed": asdict(self.speed), "mode_seeking": mode_seeking, "init_from": init_from})
        if mode_seeking < 0:
            raise ValueError(f"mode_seeking {mode_seeking} must be >= 0 (0: off)")
        self.automatic_optimization = False
        # with a frozen pretrained encoder the token ids only serve caption comparisons (`similar`)
        self.tokenizer = tokenizer_for(t_cfg)
        self.text_d = build_text_encoder(t_cfg, self.tokenizer.vocab_size)
        # with share_text, text_g is the same module as text_d (registered once, trained by D only)
        self.text_g = self.text_d if share_text else build_text_encoder(t_cfg, self.tokenizer.vocab_size)
        self.G = build_generator(g_cfg, t_cfg.out_dim, resolution, frames)
        self.D = Discriminator(d_cfg, t_cfg.out_dim, resolution, frames)
        # a frozen backbone lives outside the module tree: the copy shares it and copies the head only
        self.text_g_ema = copy.deepcopy(self.text_g).requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False)
        self.register_buffer("batches", torch.zeros((), dtype=torch.long))

    # ------------------------------------------------------------------ text
    def embed_text(self, encoder: torch.nn.Module, captions: Sequence[str],
                   tokens: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Sentence embeddings ``[B, text.out_dim]`` of ``captions`` by ``encoder`` (``text_d``,
        ``text_g`` or ``text_g_ema``), whichever kind it is: a frozen pretrained encoder
        (``reads_captions``) reads the strings (cached backbone embeddings + its trainable head); a
        token encoder reads the tokenizer's ids (``tokens`` when the caller has them already).
        Empty captions raise :class:`~gan_video.models.text.PromptError` either way."""
        return embed_captions(encoder, self.tokenizer, captions, self.device, tokens)

    def frozen_text_encoders(self) -> list[torch.nn.Module]:
        """The encoders with a frozen pretrained backbone, one per distinct backbone."""
        out, seen = [], set()
        for enc in (self.text_d, self.text_g, self.text_g_ema):
            if getattr(enc, "reads_captions", False) and enc.spec not in seen:
                seen.add(enc.spec)
                out.append(enc)
        return out

    def on_fit_start(self) -> None:
        """Load ``init_from`` (a new run), then embed the whole dataset's captions once, up front,
        when the text encoder is a frozen pretrained one and the datamodule lists its captions
        (``all_captions()``)."""
        trainer = getattr(self, "_trainer", None)
        # model.init_from, for a new run only: Lightning has restored a resumed run's checkpoint by
        # now (and set ckpt_path), and the file named may be gone since (every rank reads the same)
        if self.hparams.get("init_from") and trainer is not None and trainer.ckpt_path is None:
            self.init_weights(self.hparams.init_from)
        encoders = self.frozen_text_encoders()
        all_captions = getattr(getattr(trainer, "datamodule", None), "all_captions", None)
        if encoders and callable(all_captions):
            captions = list(all_captions())
            for enc in encoders:
                enc.precompute(captions)

    def on_train_epoch_end(self) -> None:
        for enc in self.frozen_text_encoders():   # captions embedded on the fly -> disk cache
            enc.flush()
        # clips that failed to decode, in any worker process or rank: one line per epoch
        failures, message = self.data_faults.epoch_summary(self.trainer)
        if message:
            rank_zero_warn(message)
        self.log("data/decode_failures", float(failures), sync_dist=True, reduce_fx="max")  # already summed

    def on_fit_end(self) -> None:
        for enc in self.frozen_text_encoders():
            enc.flush()

    def on_train_end(self) -> None:
        """Write ``last.ckpt`` once more when the run ends between two periodic checkpoints
        (:func:`gan_video.checkpoints.write_final_last`)."""
        write_final_last(self.trainer)

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def generate(self, prompts: Sequence[str], seeds: Optional[Sequence[int]] = None, ema: bool = True,
                 frames: Optional[int] = None, batch_size: int = 16) -> torch.Tensor:
        """Clips ``[N, 3, T, H, W]`` in [-1, 1] for ``prompts``; clip ``i`` depends only on
        ``(prompts[i], seeds[i])`` (each clip's noise comes from its own seeded generator)."""
        seeds = list(range(len(prompts))) if seeds is None else list(seeds)
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        gen, text_enc = (self.G_ema, self.text_g_ema) if ema else (self.G, self.text_g)
        out = []
        for i in range(0, len(prompts), batch_size):
            chunk = list(prompts[i:i + batch_size])
            e = self.embed_text(text_enc, chunk)
            noise = gen.seeded_noise(seeds[i:i + batch_size], self.device)
            out.append(gen(e, noise, frames=frames))
        return out[0] if len(out) == 1 else torch.cat(out)

    # ------------------------------------------------------------------ training
    def setup(self, stage: str) -> None:
        """Read checkpoints (``--ckpt_path``) with the safe reader and write them atomically, unless
        the strategy brings a checkpoint I/O of its own (FSDP's sharded one, a user's plugin)."""
        strategy = self.trainer.strategy
        if type(strategy.checkpoint_io) is TorchCheckpointIO:
            strategy.checkpoint_io = SafeCheckpointIO()
        # Under DDP each batch makes two backward passes through a network of which only part is
        # trained (D's step leaves G alone, G's step reads a frozen D): DDP must look for the
        # parameters a backward pass did not reach. Set before the strategy wraps the module.
        if isinstance(strategy, DDPStrategy):
            strategy._ddp_kwargs.setdefault("find_unused_parameters", True)
        if stage == "fit":
            precision = str(getattr(self.trainer, "precision", ""))
            if precision.startswith("bf16") and strategy.root_device.type == "cpu" and cpu_bf16_conv3d_broken():
                raise RuntimeError(
                    f"precision {precision} on this CPU: PyTorch's bfloat16 conv3d gradient is NaN or wrong "
                    "for finite inputs here (a kernel fault of this CPU's bf16 path, not of the model), so "
                    "training would stop at its first batch. Train on the CPU with --trainer.precision "
                    "32-true (every config's CPU setting); bf16-mixed is for GPUs")
            self.apply_speed()

    def init_weights(self, path: str) -> list[str]:
        """Load the weights of checkpoint ``path`` (``model.init_from``): see
        :func:`gan_video.checkpoints.load_initial_weights`."""
        return load_initial_weights(self, path)

    def apply_speed(self) -> dict:
        """Apply ``model.speed`` (memory layout, compile, activation checkpointing) to G and D for
        training; the EMA generator stays plain (it is only evaluated). Once per module."""
        if getattr(self, "_speed_applied", None) is None:
            self._speed_applied = apply_speed(self.speed, self.G, self.D, [self.G_ema])
            if self._speed_applied:
                log.info("speed options: %s", self._speed_applied)
        return self._speed_applied

    def on_train_start(self) -> None:
        """Under DDP every rank starts from the same seed (seed_everything): give each rank its own
        random stream (noise, wrong-caption pairs), unless a checkpoint just restored each rank's."""
        if self.trainer.world_size > 1 and not getattr(self, "_rng_restored", False):
            seed = (torch.initial_seed() + 1_000_003 * self.global_rank) % (1 << 63)
            torch.manual_seed(seed)
            np.random.seed(seed % (1 << 32))
            random.seed(seed)

    def configure_optimizers(self):
        betas = tuple(self.hparams.betas)
        g_params = list(self.G.parameters())
        if not self.hparams.share_text:
            g_params += list(self.text_g.parameters())
        opt_g = torch.optim.Adam(g_params, lr=self.hparams.lr_g, betas=betas)
        opt_d = torch.optim.Adam([*self.D.parameters(), *self.text_d.parameters()],
                                 lr=self.hparams.lr_d, betas=betas)
        return [opt_g, opt_d]

    def training_step(self, batch: dict, batch_idx: int):
        hp = self.hparams
        opt_g, opt_d = self.optimizers()
        real, captions = batch["video"], list(batch["caption"])
        self.data_faults.update(batch)
        if real.shape[-1] != hp.resolution or real.shape[2] != hp.frames:
            raise ValueError(f"data clips are {tuple(real.shape[2:])} (T, H, W) but the model makes "
                             f"({hp.frames}, {hp.resolution}, {hp.resolution}); set data.frames and "
                             "data.resolution to match the model (the CLI links them)")
        # token ids: for token encoders, and for `similar` negatives (caption word overlap)
        frozen = getattr(self.text_d, "reads_captions", False)
        tokens = self.tokenizer(captions) if not frozen or self.gan_loss.needs_tokens else None
        b, step = real.shape[0], int(self.batches)

        # One generator pass serves both steps: D trains on it detached, then G backpropagates
        # through the same clips into the updated D (saves a generator forward per batch).
        if self.hparams.share_text:
            with torch.no_grad():
                e_g = self.embed_text(self.text_g, captions, tokens)
        else:
            e_g = self.embed_text(self.text_g, captions, tokens)
        times = None
        if self.D.cfg.sparse_frames:   # StyleGAN-V: D sees a few frames per clip, at random times
            index = torch.randperm(hp.frames)[: self.D.cfg.sparse_frames].sort().values
            times = (index.float() / max(hp.frames - 1, 1)).to(self.device)
            real = real[:, :, index.to(self.device)]
        noise = self.G.sample_noise(b, self.device)
        fake = self.G(e_g, noise, times=times)

        # ---- discriminator step
        self.toggle_optimizer(opt_d)
        e_d = self.embed_text(self.text_d, captions, tokens)
        loss_d, logs = self.gan_loss.discriminator(self.D, real, fake, e_d, captions, tokens, step, times,
                                                   embed=lambda wrong: self.embed_text(self.text_d, wrong),
                                                   negatives=batch.get("negative_caption"))
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        opt_d.step()
        self.untoggle_optimizer(opt_d)
        self.guard.watch("discriminator", loss_d, logs, self._named(self.D, self.text_d))

        # ---- generator step
        self.toggle_optimizer(opt_g)
        loss_g, g_logs = self.gan_loss.generator(self.D, fake, e_d.detach(), times, captions)
        aux, aux_logs = self.G.auxiliary_loss(e_g, real.detach())
        loss_g = loss_g + aux
        if hp.mode_seeking > 0:
            ms = mode_seeking(fake, noise, captions)
            if ms is not None:
                loss_g = loss_g + hp.mode_seeking * ms
                aux_logs["g_mode_seeking"] = ms.detach()
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        self.guard.watch("generator", loss_g, {**g_logs, **aux_logs},
                         self._named(self.G, *(() if self.hparams.share_text else (self.text_g,))))
        problem = self.guard.failure(self._trainer)     # no trainer when a script drives the step
        if problem:
            self.on_nonfinite(problem)
            return
        self.update_ema(step)
        self.batches += 1

        logs.update(g_logs, **aux_logs)
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, on_step=True)
        self.log("loss_d", loss_d.detach(), prog_bar=True)
        self.log("loss_g", loss_g.detach(), prog_bar=True)

    def _named(self, *modules: torch.nn.Module) -> list:
        names = {id(m): n for n, m in self.named_children()}
        return [(f"{names.get(id(m), 'module')}.{n}", p) for m in modules for n, p in m.named_parameters()]

    def on_nonfinite(self, problem: str) -> None:
        """A NaN or inf appeared in this batch (``problem`` says where): roll back to the newest
        checkpoint with halved learning rates (``on_nonfinite: rollback``, while rollbacks are left)
        or stop with :class:`NonFiniteError`. Nothing of this batch reaches the EMA or a checkpoint."""
        trainer = self._trainer
        step = trainer.global_step if trainer is not None else 2 * (int(self.batches) + 1)
        where = f"batch {int(self.batches)} (optimizer steps {step - 1}-{step})"   # D's and G's step
        ckpt = newest_checkpoint(trainer) if trainer is not None else None
        guard = self.guard
        if guard.mode == "rollback" and ckpt and guard.rollbacks < guard.max_rollbacks:
            guard.rollbacks += 1
            state = read_checkpoint(ckpt)
            missing, unexpected = self.load_state_dict(state["state_dict"], strict=False)
            if missing or unexpected:
                raise NonFiniteError(f"{where}: {problem}; cannot roll back: {ckpt} does not match this model")
            lrs = []
            for opt, saved in zip(trainer.optimizers, state["optimizer_states"]):
                opt.load_state_dict(saved)
                for group in opt.param_groups:   # initial_lr: what LearningRateDecay scales
                    group.update({k: group[k] * guard.lr_factor for k in ("lr", "initial_lr") if k in group})
                lrs.append(f"{opt.param_groups[0]['lr']:.3g}")
            rank_zero_warn(f"{where}: {problem}; rolled back to {ckpt} (batch {int(self.batches)}) with the "
                           f"learning rates halved (generator {lrs[0]}, discriminator {lrs[1]}); rollback "
                           f"{guard.rollbacks} of {guard.max_rollbacks}")
            return
        if guard.mode == "rollback" and ckpt:
            why = f" after {guard.rollbacks} rollbacks"
        else:
            why = " (no checkpoint to roll back to yet)" if guard.mode == "rollback" else ""
        keep = (f"the last good checkpoint is {ckpt}: resume from it (--ckpt_path) with lower learning "
                "rates (--model.lr_d, --model.lr_g) or a stronger R1 (--model.r1_gamma), or train with "
                "--model.on_nonfinite rollback" if ckpt else
                "no checkpoint had been written yet: lower the learning rates (--model.lr_d, --model.lr_g) "
                "or add R1 (--model.r1_gamma) and start again")
        raise NonFiniteError(f"training diverged at {where}: {problem}. The run stopped{why}; {keep}")

    @torch.no_grad()
    def update_ema(self, step: int) -> None:
        decay = min(self.hparams.ema_decay, (1 + step) / (self.hparams.ema_start + step))
        for ema, live in ((self.G_ema, self.G), (self.text_g_ema, self.text_g)):
            for pe, p in zip(ema.parameters(), live.parameters()):
                pe.lerp_(p, 1 - decay)
            for be, b in zip(ema.buffers(), live.buffers()):
                be.copy_(b)

    # ------------------------------------------------------------------ validation
    def validation_step(self, batch: dict, batch_idx: int):
        """Generates (with the EMA generator) a clip for every validation prompt and seed; callbacks
        (text alignment, sample logging) consume the returned clips."""
        video = self.generate(list(batch["caption"]), batch["seed"].tolist())
        return {"fake": video}

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # plain types and tensors only, so the checkpoint loads with torch.load(weights_only=True)
        name, keys, pos, has_gauss, cached = np.random.get_state()
        checkpoint["rng"] = {"torch": torch.get_rng_state(),
                             "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos),
                                       int(has_gauss), float(cached)],
                             "python": random.getstate()}
        world = self.trainer.world_size if self._trainer is not None else 1
        if world > 1 and torch.distributed.is_initialized():   # every rank runs this hook; rank 0 writes
            states = [None] * world
            torch.distributed.all_gather_object(states, checkpoint["rng"])
            checkpoint["rng_ranks"] = states

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        check_compatible(checkpoint.get("hyper_parameters", {}), dict(self.hparams))
        rng = checkpoint.get("rng")
        ranks = checkpoint.get("rng_ranks") or []
        world = self.trainer.world_size if self._trainer is not None else 1
        if len(ranks) == world > 1:      # the same number of ranks as when saved: each its own stream
            rng = ranks[self.global_rank]
            self._rng_restored = True
        if rng:  # Lightning calls this hook when it resumes a run: continue the same random stream
            torch.set_rng_state(rng["torch"])
            name, keys, pos, has_gauss, cached = rng["numpy"]
            np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
            random.setstate(rng["python"])


def load_model(checkpoint: Union[str, os.PathLike, dict], map_location: str | torch.device = "cpu",
               path: Optional[str] = None) -> TextToVideoGAN:
    """A TextToVideoGAN from a checkpoint file (read with the safe reader: no code in it runs) or from
    a checkpoint dict already read by :func:`gan_video.checkpoints.read_checkpoint` (``path`` then
    names it in messages), in eval mode on ``map_location``."""
    if isinstance(checkpoint, dict):
        ckpt, path = checkpoint, path or "the checkpoint"
    else:
        path = os.fspath(checkpoint)
        ckpt = read_checkpoint(path)
    model = TextToVideoGAN(**model_hparams(ckpt, path))
    missing, unexpected = model.load_state_dict(ckpt["state_dict"], strict=False)
    if missing or unexpected:
        raise CheckpointMismatchError(f"{path!r} does not match its own config: missing "
                                      f"{missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval().to(map_location)


__all__ = ["TextToVideoGAN", "load_model", "check_compatible", "CheckpointMismatchError"]
