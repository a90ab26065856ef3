"""The FVD callback during training: real statistics once, generated clips every N steps."""
import math

import torch

from conftest import TINY, tiny_data, tiny_trainer


class MeanColour(torch.nn.Module):
    name = "mean-colour"

    def forward(self, videos):              # uint8 [B, T, H, W, 3] -> per-frame mean colour
        return videos.float().mean((2, 3)).flatten(1)


def test_fvd_callback_logs_every_n_steps_and_at_the_end(tmp_path):
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import CSVLogger

    from gan_video.callbacks import FVDCallback
    from gan_video.module import TextToVideoGAN

    pl.seed_everything(0)
    cb = FVDCallback("fvd12_8f", every_n_steps=4, batch_size=6, feature_extractor=MeanColour(),
                     num_features=8 * 3)
    trainer = tiny_trainer(tmp_path, max_steps=6, callbacks=[cb], logger=CSVLogger(str(tmp_path)))
    trainer.fit(TextToVideoGAN(**TINY), datamodule=tiny_data())
    steps = [s for s, _ in cb.history]
    assert steps == [4, 6]                       # every 4 optimiser steps, and at the end
    assert all(math.isfinite(v) and v > 0 for _, v in cb.history)
    assert cb.history[0][1] != cb.history[1][1]  # the generator moved between the two
    logged = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text()
    assert "fvd/fvd12_8f" in logged
