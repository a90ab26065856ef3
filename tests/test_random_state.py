"""Each rank's random stream (gan_video.random_state.RandomState): saved under the checkpoint's
top-level ``rng`` / ``rng_ranks`` keys, restored on resume, seeded apart under DDP; and the module
brings it (and its non-finite guard) to any Trainer. Real resumes: test_kill_resume.py, test_ddp.py,
test_training.py::test_resumed_run_continues_identically."""
import random
from types import SimpleNamespace

import numpy as np
import pytorch_lightning as pl
import torch

from conftest import TINY, tiny_data, tiny_trainer
from gan_video.checkpoints import read_checkpoint
from gan_video.health import NonFiniteCallback
from gan_video.module import TextToVideoGAN
from gan_video.random_state import RandomState, rng_state


def draws():
    return torch.rand(4), np.random.rand(4), [random.random() for _ in range(4)]


def same(a, b) -> bool:
    return torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_plain_trainer_gets_both_callbacks_and_the_checkpoint_holds_the_streams(tmp_path):
    pl.seed_everything(0)
    model = TextToVideoGAN(**TINY)
    trainer = tiny_trainer(tmp_path, max_steps=2)
    trainer.fit(model, datamodule=tiny_data(train_size=8))
    assert model.nonfinite in trainer.callbacks
    assert sum(isinstance(cb, RandomState) for cb in trainer.callbacks) == 1
    path = tmp_path / "a.ckpt"
    trainer.save_checkpoint(path)
    ckpt = read_checkpoint(path)                      # tensors and plain types only
    assert torch.equal(ckpt["rng"]["torch"], torch.get_rng_state()) and "rng_ranks" not in ckpt
    want = draws()
    # a resume (Lightning calls on_load_checkpoint) continues the streams where the checkpoint left them
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    RandomState().on_load_checkpoint(trainer, model, ckpt)
    assert same(draws(), want)


def test_each_rank_restores_its_own_stream_and_is_not_reseeded():
    saved = []
    for seed in (1, 2):
        torch.manual_seed(seed), np.random.seed(seed), random.seed(seed)
        saved.append(rng_state())
    want = draws()                                    # what rank 1 draws next (seed 2)
    rank1 = SimpleNamespace(world_size=2, global_rank=1)
    cb = RandomState()
    cb.on_load_checkpoint(rank1, None, {"rng": saved[0], "rng_ranks": saved})
    cb.on_train_start(rank1, None)                    # restored: no reseeding
    assert cb.restored and same(draws(), want)
    # a checkpoint of one process resumed on two: the streams are seeded apart at the start
    streams = []
    for rank in (0, 1):
        cb = RandomState()
        trainer = SimpleNamespace(world_size=2, global_rank=rank)
        cb.on_load_checkpoint(trainer, None, {"rng": saved[0]})
        cb.on_train_start(trainer, None)
        assert not cb.restored
        streams.append(draws())
    assert not same(*streams)


def test_one_process_is_never_reseeded():
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    want = draws()
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    RandomState().on_train_start(SimpleNamespace(world_size=1, global_rank=0), None)
    assert same(draws(), want)


def test_module_guard_replaces_one_given_to_the_trainer(tmp_path):
    model = TextToVideoGAN(**{**TINY, "on_nonfinite": "rollback"})
    trainer = tiny_trainer(tmp_path, max_steps=2, callbacks=[NonFiniteCallback("off")])
    trainer.fit(model, datamodule=tiny_data(train_size=8))
    assert [cb for cb in trainer.callbacks if isinstance(cb, NonFiniteCallback)] == [model.nonfinite]
    assert model.nonfinite.mode == "rollback"
