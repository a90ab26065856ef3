"""Prepared datasets in object storage and resumed runs over prepared data: an S3-compatible server
(moto's server mode) on the loopback address, a dataset prepared into a bucket, training steps
streamed from it; a run over a prepared dataset resumed from its checkpoint ends as an uninterrupted
one does."""
from __future__ import annotations

import copy
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY, tiny_trainer
from gan_video.data import VideoDataModule
from gan_video.data.io import write_mp4
from gan_video.data.prepare import prepare_dataset

moto_server = pytest.importorskip("moto.server", reason="pip install 'moto[server]' (the test extra has it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3(monkeypatch):
    """An S3-compatible server on 127.0.0.1 for this test, with one empty bucket; the AWS_*
    variables point boto3 (and LitData through it) there."""
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    for k, v in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
                 "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    import boto3

    boto3.client("s3").create_bucket(Bucket="videos")
    try:
        yield "s3://videos"
    finally:
        server.stop()


def make_videos(root, n: int = 6, frames: int = 12) -> None:
    """``n`` short mp4s of a moving square in two class folders."""
    for k in range(n):
        cls = root / ("waving" if k % 2 else "jumping")
        cls.mkdir(parents=True, exist_ok=True)
        video = np.zeros((frames, 48, 64, 3), np.uint8)
        for t in range(frames):
            x = 4 + 3 * t + k
            video[t, 10:26, x:x + 16] = (40 * k % 255, 200, 90)
        write_mp4(str(cls / f"v{k}.mp4"), video, fps=12)


def data(root, **kw) -> VideoDataModule:
    args = dict(resolution=64, frames=8, batch_size=2, num_workers=0, seed=0, verbose=False, scan_cache=False)
    args.update(kw)
    return VideoDataModule(root, **args)


def params(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_prepare_into_a_bucket_and_train_streaming_from_it(tmp_path, s3):
    import boto3
    import pytorch_lightning as pl

    from gan_video.module import TextToVideoGAN

    make_videos(tmp_path / "videos")
    url = f"{s3}/weizmann-like/64"
    res = prepare_dataset(url, str(tmp_path / "videos"), size=64, min_frames=8, workers=2, progress=False)
    assert res["videos"] == 6
    keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="videos")["Contents"]}
    assert {"weizmann-like/64/index.json", "weizmann-like/64/gan_video.json"} <= keys
    assert any(k.endswith(".bin") for k in keys)

    local = prepare_dataset(str(tmp_path / "local"), str(tmp_path / "videos"), size=64, min_frames=8, progress=False)
    remote, folder = data(url), data(str(tmp_path / "local"))
    assert remote.index()[0] == "litdata" and len(remote.entries) == 6 == local["videos"]
    remote.setup("fit"), folder.setup("fit")
    for i in (0, 7, 11):       # the same clips from the bucket as from the folder
        a, b = remote.train_set[i], folder.train_set[i]
        assert a["caption"] == b["caption"] and torch.equal(a["video"], b["video"])

    pl.seed_everything(0)
    model = TextToVideoGAN(**TINY)
    before = params(model)
    tiny_trainer(tmp_path, max_steps=4).fit(model, datamodule=data(url))
    assert int(model.batches) == 2
    assert any(not torch.equal(before[k], v) for k, v in params(model).items() if k.startswith("G."))


@pytest.mark.parametrize("source", ["videos", "prepared", "sparse"])
def test_resumed_run_over_a_prepared_dataset_continues_identically(tmp_path, source):
    """Checkpoint every batch, resume mid-epoch from one: the same weights after 6 batches (over the
    video folder too, the path the prepared one must match; and with sparse batches)."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint

    from gan_video.module import TextToVideoGAN

    make_videos(tmp_path / "videos", n=8)
    prepare_dataset(str(tmp_path / "p"), str(tmp_path / "videos"), size=64, min_frames=8, progress=False)

    def run(ckpt=None, save=False):
        pl.seed_everything(0)
        cfg = copy.deepcopy(TINY)
        if source == "sparse":
            cfg["discriminator"]["sparse_frames"] = 3
        model = TextToVideoGAN(**cfg)
        cbs = [ModelCheckpoint(dirpath=str(tmp_path / "ck"), filename="{step}", save_top_k=-1,
                               every_n_train_steps=2)] if save else []
        trainer = tiny_trainer(tmp_path, max_steps=12, callbacks=cbs, enable_checkpointing=save)
        root = tmp_path / ("videos" if source == "videos" else "p")
        dm = data(str(root), num_workers=1, hflip=True, sparse_frames=3 if source == "sparse" else 0)
        trainer.fit(model, datamodule=dm, ckpt_path=ckpt)
        return model

    straight = run(save=True)                                   # 4 batches an epoch, 6 batches
    resumed = run(ckpt=str(tmp_path / "ck" / "step=6.ckpt"))     # after batch 3, mid-epoch
    assert int(straight.batches) == int(resumed.batches) == 6
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_two_gloo_ranks_read_disjoint_clips_of_a_prepared_dataset(tmp_path):
    """``gan-video fit`` with 2 CPU processes over a prepared dataset: in every epoch the two ranks
    train on different videos, together every video once."""
    from run_helpers import fit_recording_ranks

    make_videos(tmp_path / "videos", n=8)
    prepare_dataset(str(tmp_path / "p"), str(tmp_path / "videos"), size=64, min_frames=8, progress=False)
    batches = 4                                   # 8 videos / 2 ranks / batch 2: 2 batches an epoch
    cfg = {"seed_everything": 0, "threads": 1,
           "trainer": {"accelerator": "cpu", "devices": 2, "strategy": "ddp", "max_steps": 2 * batches,
                       "logger": False, "enable_progress_bar": False, "enable_model_summary": False,
                       "limit_val_batches": 0, "num_sanity_val_steps": 0, "enable_checkpointing": False,
                       "callbacks": [{"class_path": "run_helpers.RankRecorder"}]},
           "model": {k: v for k, v in TINY.items() if k not in ("resolution", "frames")},
           "data": {"class_path": "gan_video.data.VideoDataModule",
                    "init_args": {"root": str(tmp_path / "p"), "resolution": 64, "frames": 8, "batch_size": 2,
                                  "num_workers": 0, "verbose": False}}}
    ranks = [[x for x in rec if "batch" in x] for rec in fit_recording_ranks(tmp_path, cfg)]
    assert [len(r) for r in ranks] == [batches, batches]
    for epoch in (0, 1):
        mine = [sorted(i for x in r if x["epoch"] == epoch for i in x["items"]) for r in ranks]
        assert len(mine[0]) == len(mine[1]) == 4 and not set(mine[0]) & set(mine[1]), mine
        assert sorted(mine[0] + mine[1]) == list(range(8))


def test_sparse_batches_decode_only_the_frames_the_discriminator_reads(tmp_path):
    """data.sparse_frames: k frames per clip, positions shared by the batch and drawn from the batch's
    first item; they are the dense clip's frames at those positions; a sparse model trains on them,
    and a model whose discriminator reads another number of frames says which settings to match."""
    import pytorch_lightning as pl

    from gan_video.module import TextToVideoGAN

    make_videos(tmp_path / "videos", n=8)
    prepare_dataset(str(tmp_path / "p"), str(tmp_path / "videos"), size=64, min_frames=8, progress=False)
    sparse, dense = data(str(tmp_path / "p"), sparse_frames=3, hflip=True), data(str(tmp_path / "p"), hflip=True)
    sparse.setup("fit"), dense.setup("fit")
    batch = next(iter(sparse.train_dataloader()))
    index = batch["frame_index"].tolist()
    assert batch["video"].shape == (2, 3, 3, 64, 64) and index == sorted(set(index)) and max(index) < 8
    for row, i in enumerate(batch["index"].tolist()):
        item = next(k for k in range(16) if k % 8 == i and sparse.train_set.params(k)["start"] == batch["start"][row])
        assert torch.equal(batch["video"][row], dense.train_set[item]["video"][:, index])
    assert sparse.train_set.sparse_index(5) == sparse.train_set.sparse_index(5)

    cfg = copy.deepcopy(TINY)
    cfg["discriminator"]["sparse_frames"] = 3
    pl.seed_everything(0)
    model = TextToVideoGAN(**cfg)
    tiny_trainer(tmp_path, max_steps=4).fit(model, datamodule=data(str(tmp_path / "p"), sparse_frames=3))
    assert int(model.batches) == 2 and all(torch.isfinite(p).all() for p in model.parameters())
    with pytest.raises(ValueError, match="data.sparse_frames.*model.discriminator.sparse_frames"):
        tiny_trainer(tmp_path, max_steps=2).fit(TextToVideoGAN(**cfg), datamodule=data(str(tmp_path / "p"), sparse_frames=2))


def test_an_unexpected_error_in_a_prepare_worker_skips_that_video(tmp_path, monkeypatch):
    """Any exception while preparing one video (not only a decode error) skips and counts it: an
    exception escaping a LitData worker would leave the whole preparation waiting forever."""
    from gan_video.data import prepare as prep

    make_videos(tmp_path / "videos", n=4)
    real = prep.video_frames

    def flaky(entry, *args, **kw):
        if entry.path.endswith("v2.mp4"):
            raise RuntimeError("out of memory, say")
        return real(entry, *args, **kw)

    monkeypatch.setattr(prep, "video_frames", flaky)
    res = prepare_dataset(str(tmp_path / "p"), str(tmp_path / "videos"), size=64, workers=2, progress=False)
    assert res["videos"] == 3 and res["skipped"] == {"failed to prepare (RuntimeError)": 1}
