"""TextToVideoGAN: the LightningModule that trains a text-conditioned generator adversarially.

The networks are plain ``nn.Module``s built from typed configs (:mod:`gan_video.models`) and the
losses live in one object (:class:`gan_video.losses.GANLoss`); this module only wires them to the
optimisers (manual optimisation: one D step then one G step per batch), keeps an EMA copy of the
generator and its text encoder for sampling, and checks checkpoints against the config. The side
work is in callbacks it brings along (``configure_callbacks``): the non-finite guard and the count
of clips that failed to decode (:mod:`gan_video.health`), and each rank's random stream
(:mod:`gan_video.random_state`); precision and DDP checks are helpers of :mod:`gan_video.speed`.
:func:`load_model` reads a checkpoint into the whole training module (the discriminator included);
sampling needs only :func:`gan_video.sampling.load_sampler`.
"""
from __future__ import annotations

import copy
import logging
import os
from dataclasses import asdict
from typing import Optional, Sequence, Union

import pytorch_lightning as pl
import torch

from .checkpoints import (CheckpointMismatchError, check_compatible, load_initial_weights, model_hparams,
                          read_checkpoint, use_safe_checkpoint_io, write_final_last)
from .health import DataFaults, NonFiniteCallback, NonFiniteMode
from .losses import GANLoss, LossKind, MismatchKind, mode_seeking
from .random_state import RandomState
from .sampling import as_config as _as_config, sample_clips
from .speed import SpeedConfig, apply_speed, find_unused_parameters_under_ddp, refuse_broken_cpu_bf16
from .models.discriminator import Discriminator, DiscriminatorConfig
from .models.generator import GeneratorConfig, build_generator
from .models.text import TextEncoderConfig, build_text_encoder, embed_captions, tokenizer_for


log = logging.getLogger(__name__)


class TextToVideoGAN(pl.LightningModule):
    """A text-to-video GAN.

    Args:
        generator: generator config (``arch: layered``, ``animator`` or ``t2v2018`` and its sizes).
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
            words with the right one, e.g. same colour but another shape: text hard negatives).
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
        speed: speed and memory options of the training run (:class:`gan_video.speed.SpeedConfig`:
            memory layout, ``torch.compile``, activation checkpointing); they change how a run
            computes, never what it computes or how its weights are named.

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
        # a Lightning callback (configure_callbacks) that training_step reports each optimiser step to
        self.nonfinite = NonFiniteCallback(on_nonfinite)
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

    def on_fit_end(self) -> None:
        for enc in self.frozen_text_encoders():
            enc.flush()

    def on_train_end(self) -> None:
        """Write ``last.ckpt`` once more when the run ends between two periodic checkpoints
        (:func:`gan_video.checkpoints.write_final_last`)."""
        write_final_last(self.trainer)

    # ------------------------------------------------------------------ sampling
    def generate(self, prompts: Sequence[str], seeds: Optional[Sequence[int]] = None, ema: bool = True,
                 frames: Optional[int] = None, batch_size: int = 16) -> torch.Tensor:
        """Clips ``[N, 3, T, H, W]`` in [-1, 1] for ``prompts``; clip ``i`` depends only on
        ``(prompts[i], seeds[i])`` (each clip's noise comes from its own seeded generator)."""
        gen, text_enc = (self.G_ema, self.text_g_ema) if ema else (self.G, self.text_g)
        return sample_clips(gen, text_enc, self.tokenizer, prompts, seeds, self.device, frames, batch_size)

    # ------------------------------------------------------------------ training
    def configure_callbacks(self) -> list[pl.Callback]:
        """The callbacks every run of this module needs, whoever builds the Trainer: the non-finite
        guard (``on_nonfinite``), each rank's random stream (:class:`RandomState`) and the count of
        clips that failed to decode (:class:`DataFaults`)."""
        return [self.nonfinite, RandomState(), DataFaults()]

    def setup(self, stage: str) -> None:
        """Safe, atomic checkpoint I/O and DDP's search for unused parameters on the strategy; for a
        fit, refuse a CPU whose bf16 conv3d is broken and apply ``model.speed``."""
        use_safe_checkpoint_io(self.trainer.strategy)
        find_unused_parameters_under_ddp(self.trainer.strategy)
        if stage == "fit":
            refuse_broken_cpu_bf16(self.trainer)
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
        read = batch.get("frame_index") if isinstance(batch, dict) else None     # the loader decoded these only
        if read is not None and len(read) != self.D.cfg.sparse_frames:
            raise ValueError(f"the data decodes {len(read)} frames per clip (data.sparse_frames) but the "
                             f"discriminator reads {self.D.cfg.sparse_frames} (model.discriminator.sparse_frames); "
                             "set both to the same number, or data.sparse_frames: 0")
        if real.shape[-1] != hp.resolution or real.shape[2] != (hp.frames if read is None else len(read)):
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
            if read is not None:       # drawn and decoded by the loader
                index = read.cpu().long()
            else:
                index = torch.randperm(hp.frames)[: self.D.cfg.sparse_frames].sort().values
                real = real[:, :, index.to(self.device)]
            times = (index.float() / max(hp.frames - 1, 1)).to(self.device)
        noise = self.G.sample_noise(b, self.device)
        fake = self.G(e_g, noise, times=times)

        # ---- discriminator step
        self.toggle_optimizer(opt_d)
        e_d = self.embed_text(self.text_d, captions, tokens)
        loss_d, logs = self.gan_loss.discriminator(self.D, real, fake, e_d, captions, tokens, step, times)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        opt_d.step()
        self.untoggle_optimizer(opt_d)
        self.nonfinite.watch(self, "discriminator", loss_d, logs, self.D, self.text_d)

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
        self.nonfinite.watch(self, "generator", loss_g, {**g_logs, **aux_logs},
                             self.G, *(() if hp.share_text else (self.text_g,)))
        if self.nonfinite.failed(self):     # rolled back (or raised): nothing of this batch is kept
            return
        self.update_ema(step)
        self.batches += 1

        logs.update(g_logs, **aux_logs)
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, on_step=True)
        self.log("loss_d", loss_d.detach(), prog_bar=True)
        self.log("loss_g", loss_g.detach(), prog_bar=True)

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
    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """A resumed checkpoint must have this model's architecture (its random streams are
        :class:`RandomState`'s)."""
        check_compatible(checkpoint.get("hyper_parameters", {}), dict(self.hparams))


def load_model(checkpoint: Union[str, os.PathLike, dict], map_location: str | torch.device = "cpu",
               path: Optional[str] = None) -> TextToVideoGAN:
    """The whole training module (discriminator included) from a checkpoint file (read with the safe
    reader: no code in it runs) or from a checkpoint dict already read by
    :func:`gan_video.checkpoints.read_checkpoint` (``path`` then names it in messages), in eval mode
    on ``map_location``. To sample, :func:`gan_video.sampling.load_sampler` builds only G and its text
    encoder."""
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
