import os
import warnings

import pytest
import torch

torch.set_num_threads(2)
warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*LeafSpec.*")

TINY = dict(
    generator=dict(arch="layered", z_content=8, z_motion=4, style_dim=32, base_channels=4, max_channels=32),
    discriminator=dict(channels=4, video_channels=4, max_channels=16, frame_samples=2,
                       video_resolution=16, video_stride=2),
    text=dict(name="small", dim=16, out_dim=16, layers=1, heads=2, context_length=16, vocab_buckets=512),
    resolution=64, frames=8)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_VIDEO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GAN_VIDEO_OFFLINE", "1")   # no test may download weights


def tiny_trainer(tmp_path, max_steps=2, callbacks=None, **kw):
    import pytorch_lightning as pl

    kw.setdefault("enable_checkpointing", False)
    kw.setdefault("logger", False)
    return pl.Trainer(max_steps=max_steps, accelerator="cpu", enable_progress_bar=False,
                      enable_model_summary=False, limit_val_batches=0,
                      default_root_dir=str(tmp_path), callbacks=callbacks or [], **kw)


def tiny_data(**kw):
    from gan_video.data import ShapesDataModule

    args = dict(resolution=64, frames=8, batch_size=4, train_size=64, num_workers=0)
    args.update(kw)
    return ShapesDataModule(**args)


def _train_tiny(tmp, frames: int) -> str:
    import pytorch_lightning as pl

    from gan_video.module import TextToVideoGAN

    pl.seed_everything(0)
    model = TextToVideoGAN(**{**TINY, "frames": frames})
    trainer = tiny_trainer(tmp)
    trainer.fit(model, datamodule=tiny_data(frames=frames))
    path = os.path.join(tmp, "tiny.ckpt")
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny model trained for 2 steps and saved: for the sampling and loading tests."""
    return _train_tiny(tmp_path_factory.mktemp("ckpt"), TINY["frames"])


@pytest.fixture(scope="session")
def tiny_checkpoint_20f(tmp_path_factory):
    """The same with 20-frame clips: FVD's I3D needs clips of at least 9 frames, and the shapes'
    real clips are taken from training-length clips (10 frames at stride 2 span 19)."""
    return _train_tiny(tmp_path_factory.mktemp("ckpt20"), 20)


def train_generator(g, steps: int = 2, text_dim: int = 8, lr: float = 1e-3):
    """A few Adam steps of generator ``g`` on a toy loss (clip energy plus its auxiliary loss);
    returns the last clip, for tests that check the weights move and nothing turns NaN."""
    opt = torch.optim.Adam(g.parameters(), lr=lr)
    for _ in range(steps):
        text = torch.randn(2, text_dim)
        clip = g(text, g.sample_noise(2))
        loss = clip.square().mean() + g.auxiliary_loss(text, None)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return clip


def mask_iou(mask: torch.Tensor, ideal: torch.Tensor) -> torch.Tensor:
    """Intersection over union of boolean masks over their last two (image) axes."""
    return (mask & ideal).sum(dim=(-2, -1)) / (mask | ideal).sum(dim=(-2, -1))
