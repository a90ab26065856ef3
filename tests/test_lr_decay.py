"""LearningRateDecay: the learning rates fall linearly to `final` between two batches, for both
optimisers, and a resumed run continues the same schedule."""
import pytest
import pytorch_lightning as pl
import torch

from conftest import TINY, tiny_data, tiny_trainer
from gan_video.callbacks import LearningRateDecay
from gan_video.module import TextToVideoGAN


class Rates(pl.Callback):
    """Records (batch, generator lr, discriminator lr) as each batch starts (after the decay set them)."""

    def __init__(self):
        self.seen = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        g, d = (opt.param_groups[0]["lr"] for opt in trainer.optimizers)
        self.seen.append((int(pl_module.batches), g, d))


def test_factor_known_answers():
    decay = LearningRateDecay(start=4, end=8)
    assert [decay.factor(b, 8) for b in (0, 4, 5, 6, 8, 20)] == [1.0, 1.0, 0.75, 0.5, 0.0, 0.0]
    assert LearningRateDecay(start=0, final=0.2).factor(5, 10) == pytest.approx(0.6)


@pytest.mark.parametrize("args", [dict(start=-1), dict(start=5, end=5), dict(start=1, final=1.5)])
def test_bad_arguments_are_refused(args):
    with pytest.raises(ValueError, match="need 0 <= start < end"):
        LearningRateDecay(**args)


def test_both_optimisers_decay_to_the_end_of_the_run(tmp_path):
    pl.seed_everything(0)
    rates = Rates()
    model = TextToVideoGAN(**TINY, lr_g=4e-4, lr_d=2e-4)
    tiny_trainer(tmp_path, max_steps=12, callbacks=[LearningRateDecay(start=2), rates]).fit(
        model, datamodule=tiny_data(train_size=16))
    factors = [1.0, 1.0, 1.0, 0.75, 0.5, 0.25]            # end = 12 optimiser steps / 2 = batch 6
    assert [b for b, _, _ in rates.seen] == list(range(6))
    assert [g for _, g, _ in rates.seen] == pytest.approx([4e-4 * f for f in factors])
    assert [d for _, _, d in rates.seen] == pytest.approx([2e-4 * f for f in factors])


def test_a_resumed_run_continues_the_schedule(tmp_path):
    from pytorch_lightning.callbacks import ModelCheckpoint

    def run(ckpt=None):
        pl.seed_everything(0)
        rates, model = Rates(), TextToVideoGAN(**TINY)
        cbs = [LearningRateDecay(start=1), rates,
               ModelCheckpoint(dirpath=str(tmp_path / "ck"), filename="{step}", save_top_k=-1, every_n_train_steps=2)]
        tiny_trainer(tmp_path, max_steps=12, callbacks=cbs, enable_checkpointing=True).fit(
            model, datamodule=tiny_data(train_size=16), ckpt_path=ckpt)
        return rates.seen, model

    straight, a = run()
    resumed, b = run(str(tmp_path / "ck" / "step=8.ckpt"))    # stopped after batch 4 (lr already decayed)
    assert [r[0] for r in resumed] == [4, 5]
    # the configured rate is kept in the optimiser state, not the decayed one
    assert [lr for r in resumed for lr in r[1:]] == pytest.approx([lr for r in straight[4:] for lr in r[1:]])
    assert straight[4][1] == pytest.approx(2e-4 * 0.4)
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), k


def test_without_max_steps_end_is_required(tmp_path):
    trainer = tiny_trainer(tmp_path, max_steps=-1, max_epochs=1, limit_train_batches=2,
                           callbacks=[LearningRateDecay(start=1)])
    with pytest.raises(ValueError, match="needs `end`"):
        trainer.fit(TextToVideoGAN(**TINY), datamodule=tiny_data(train_size=16))
