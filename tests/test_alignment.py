import pytest
import torch

from gan_video.metrics.alignment import TextAlignment, _render_pool, load_classifier, train_classifier
from gan_video.data.io import from_uint8
from gan_video.data.shapes import MovingShapes


def test_classifier_learns_real_attributes_and_metric_splits_groups(tmp_path):
    model, acc = train_classifier(64, 16, steps=150, batch=32, pool=1024, progress=False)
    assert acc["color"] > 0.9 and acc["direction"] > 0.8      # the easy attributes, learnt fast
    video, labels = _render_pool(MovingShapes(64, 64, 16, seed=99), range(64))
    assert video.dtype == torch.uint8 and video.shape == (64, 4, 64, 64, 3)   # the pool is kept as uint8
    video = from_uint8(video)
    metric = TextAlignment(model)
    heldout = torch.arange(64) % 4 == 0
    metric.update(video, labels, heldout)
    res = metric.compute()
    assert set(res) == {f"{g}/{k}" for g in ("seen", "heldout") for k in ("color", "shape", "direction")}
    assert res["seen/color"] > 0.9 and res["heldout/color"] > 0.8
    # random clips are not the prompt: colour accuracy collapses towards chance (1/6)
    metric.reset()
    metric.update(torch.rand(64, 3, 4, 64, 64) * 2 - 1, labels, heldout)
    assert metric.compute()["seen/color"] < 0.5


def test_classifier_is_cached(tmp_path, monkeypatch):
    import gan_video.metrics.alignment as A

    calls = []
    real = A.train_classifier

    def counted(*a, **k):
        calls.append(1)
        return real(a[0], a[1], steps=5, pool=64, progress=False)

    monkeypatch.setattr(A, "train_classifier", counted)
    m1, acc1 = load_classifier(64, 16, steps=5)
    m2, acc2 = load_classifier(64, 16, steps=5)
    assert len(calls) == 1 and acc1 == acc2
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)


def test_alignment_callback_logs_during_validation_with_a_cold_cache(tmp_path, monkeypatch):
    """The judge is trained at fit start (grads enabled) and the callback logs align/* metrics."""
    import pytorch_lightning as pl

    import gan_video.metrics.alignment as A
    from conftest import TINY, tiny_data
    from gan_video.callbacks import TextAlignmentCallback
    from gan_video.module import TextToVideoGAN

    real = A.train_classifier
    monkeypatch.setattr(A, "train_classifier", lambda r, f, steps: real(r, f, steps=steps, pool=64, progress=False))
    pl.seed_everything(0)
    model = TextToVideoGAN(**TINY)
    trainer = pl.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_checkpointing=False, enable_model_summary=False, val_check_interval=1,
                         limit_val_batches=1, num_sanity_val_steps=0,
                         callbacks=[TextAlignmentCallback(classifier_steps=3)])
    trainer.fit(model, datamodule=tiny_data())
    logged = trainer.callback_metrics
    assert {"align/seen/color", "align/seen/shape", "align/seen/direction"} <= set(logged)
    assert all(0.0 <= float(logged[k]) <= 1.0 for k in logged if k.startswith("align/"))


def test_shipped_judge_loads_without_training_and_reads_real_clips(monkeypatch, tmp_path):
    """The default size's judge ships as safetensors: no training (and no cache) when it is used, and
    it reads fresh real clips (another seed than its training pool) nearly perfectly."""
    import gan_video.metrics.alignment as A
    from gan_video.data.shapes import MovingShapes

    def refuse(*a, **k):
        raise AssertionError("the shipped judge must not be retrained")

    monkeypatch.setattr(A, "train_classifier", refuse)
    model, stored = load_classifier(64, 32)
    assert set(stored) == set(A.ATTRIBUTES) and all(v >= 0.95 for v in stored.values())
    assert not (tmp_path / "cache" / "alignment").exists()
    video, labels = _render_pool(MovingShapes(192, 64, 32, seed=777), range(192))
    acc = A.accuracy(model, video, labels)
    assert all(v >= 0.93 for v in acc.values()), acc
    # so does the 128 px judge of configs/shapes_128.yaml
    model128, stored128 = load_classifier(128, 32)
    assert all(v >= 0.95 for v in stored128.values())
    video, labels = _render_pool(MovingShapes(64, 128, 32, seed=777), range(64))
    acc = A.accuracy(model128, video, labels)
    assert all(v >= 0.9 for v in acc.values()), acc
    # and the 256 px judge of configs/shapes_256.yaml (its real clips rendered at 256 px)
    model256, stored256 = load_classifier(256, 32)
    assert all(v >= 0.95 for v in stored256.values())
    video, labels = _render_pool(MovingShapes(48, 256, 32, seed=778), range(48))
    acc = A.accuracy(model256, video, labels)
    assert all(v >= 0.9 for v in acc.values()), acc
    # a judge of another version is refused with the fix in the message
    A.save_classifier(model, stored, tmp_path / "old.safetensors")
    monkeypatch.setattr(A, "CLASSIFIER_VERSION", A.CLASSIFIER_VERSION + 1)
    with pytest.raises(ValueError, match="delete it to retrain"):
        A.read_classifier(tmp_path / "old.safetensors")
