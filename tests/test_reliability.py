"""Runs that survive faults: a NaN stops the run at the batch it appears (or rolls back), with the last
good checkpoint intact; see also test_kill_resume.py for real kills."""
import glob
import os

import pytest
import pytorch_lightning as pl
import torch

from conftest import TINY, tiny_data, tiny_trainer
from gan_video.checkpoints import read_checkpoint
from gan_video.health import DataFaults, FiniteGuard, NonFiniteCallback, NonFiniteError
from gan_video.module import TextToVideoGAN, load_model


def checkpointing(tmp_path):
    from pytorch_lightning.callbacks import ModelCheckpoint

    # a checkpoint after every batch (two optimiser steps), named by step, plus last.ckpt
    return ModelCheckpoint(dirpath=str(tmp_path / "ck"), filename="{step}", save_top_k=-1,
                           every_n_train_steps=2, save_last=True)


def inject_nan_in_d_term(model, at_batch, times=1):
    """Make the discriminator's loss term d_frame_real NaN at batch ``at_batch`` (``times`` times)."""
    real = model.gan_loss.discriminator
    left = [times]

    def poisoned(*args, **kwargs):
        loss, logs = real(*args, **kwargs)
        if int(model.batches) == at_batch and left[0] > 0:
            left[0] -= 1
            logs = dict(logs, d_frame_real=logs["d_frame_real"] * float("nan"))
            loss = loss + logs["d_frame_real"]
        return loss, logs

    model.gan_loss.discriminator = poisoned


def test_nan_in_a_loss_term_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    pl.seed_everything(0)
    model = TextToVideoGAN(**TINY)
    inject_nan_in_d_term(model, at_batch=3)
    # a plain Trainer: the module brings its guard (configure_callbacks), and model.on_nonfinite
    # decides, not a guard given to the Trainer
    trainer = tiny_trainer(tmp_path, max_steps=12, callbacks=[checkpointing(tmp_path), NonFiniteCallback("off")],
                           enable_checkpointing=True)
    with pytest.raises(NonFiniteError, match=r"batch 3 \(optimizer steps 7-8\): discriminator loss term "
                                             r"'d_frame_real' is NaN.*last good checkpoint is .*last\.ckpt"):
        trainer.fit(model, datamodule=tiny_data(train_size=16))
    # batches 0-2 were checkpointed; nothing of batch 3 was saved, and the newest checkpoint is sound
    steps = sorted(int(os.path.basename(p)[5:-5]) for p in glob.glob(str(tmp_path / "ck" / "step=*.ckpt")))
    assert steps == [2, 4, 6]
    last = read_checkpoint(tmp_path / "ck" / "last.ckpt")
    assert int(last["state_dict"]["batches"]) == 3 and last["global_step"] == 6
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
    load_model(str(tmp_path / "ck" / "last.ckpt"))          # loadable
    guards = [cb for cb in trainer.callbacks if isinstance(cb, NonFiniteCallback)]
    assert guards == [model.nonfinite] and model.nonfinite.mode == "stop"


def test_a_script_driving_the_step_without_a_trainer_is_stopped_too():
    """tools/benchmark.py drives training_step without a Trainer: the guard still stops at the NaN."""
    pl.seed_everything(0)
    model = TextToVideoGAN(**TINY)
    inject_nan_in_d_term(model, at_batch=1)
    opts = model.configure_optimizers()
    model.optimizers = lambda: opts
    model.toggle_optimizer = model.untoggle_optimizer = lambda o: None
    model.manual_backward = lambda loss: loss.backward()
    model.log = model.log_dict = lambda *a, **k: None
    dm = tiny_data()
    dm.setup("fit")
    batches = iter(dm.train_dataloader())
    model.training_step(next(batches), 0)
    assert int(model.batches) == 1
    ema = {k: v.clone() for k, v in model.G_ema.state_dict().items()}
    with pytest.raises(NonFiniteError, match=r"training diverged at batch 1 \(optimizer steps 3-4\): discriminator "
                                             r"loss term 'd_frame_real' is NaN.*no checkpoint had been written yet"):
        model.training_step(next(batches), 1)
    assert int(model.batches) == 1                          # nothing of the bad batch was kept
    assert all(torch.equal(v, ema[k]) for k, v in model.G_ema.state_dict().items())


def test_nan_gradient_is_named_with_its_parameter():
    guard = FiniteGuard("stop")
    w = torch.nn.Parameter(torch.ones(3))
    w.grad = torch.tensor([0.0, float("inf"), 1.0])
    guard.watch("generator", torch.tensor(1.0), {"g_frame": torch.tensor(0.5)}, [("G.w", w)])
    assert guard.failure() == "the gradient of G.w (generator step) has inf values"
    assert guard.failure() is None                           # forgets what it checked
    guard.watch("generator", torch.tensor(1.0), {}, [("G.w", torch.nn.Parameter(torch.tensor([float("nan")])))])
    assert guard.failure() == "the weight G.w (generator step) has NaN values"
    off = FiniteGuard("off")
    off.watch("generator", torch.tensor(float("nan")), {}, [])
    assert off.failure() is None
    with pytest.raises(ValueError, match="on_nonfinite must be one of"):
        FiniteGuard("ignore")


def test_rollback_reloads_the_last_checkpoint_and_halves_the_learning_rates(tmp_path):
    pl.seed_everything(0)
    model = TextToVideoGAN(**{**TINY, "on_nonfinite": "rollback"})
    inject_nan_in_d_term(model, at_batch=3)
    trainer = tiny_trainer(tmp_path, max_steps=12, callbacks=[checkpointing(tmp_path)], enable_checkpointing=True)
    with pytest.warns(UserWarning, match=r"batch 3 .*rolled back to .*\(batch 3\) with the learning rates "
                                         r"halved \(generator 0\.0001, discriminator 0\.0001\); rollback 1 of 3"):
        trainer.fit(model, datamodule=tiny_data(train_size=16))
    assert trainer.global_step == 12 and model.nonfinite.rollbacks == 1
    assert int(model.batches) == 5            # 6 batches ran; the poisoned one did not count
    assert [g["lr"] for opt in trainer.optimizers for g in opt.param_groups] == [1e-4, 1e-4]
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # the lowered learning rates are in the checkpoints written after the rollback
    last = read_checkpoint(tmp_path / "ck" / "last.ckpt")
    assert [s["param_groups"][0]["lr"] for s in last["optimizer_states"]] == [1e-4, 1e-4]


def test_rollback_gives_up_after_max_rollbacks_and_without_a_checkpoint(tmp_path):
    pl.seed_everything(0)
    model = TextToVideoGAN(**{**TINY, "on_nonfinite": "rollback"})
    inject_nan_in_d_term(model, at_batch=0)
    with pytest.raises(NonFiniteError, match="no checkpoint to roll back to yet.*no checkpoint had been written"):
        tiny_trainer(tmp_path, max_steps=12, callbacks=[checkpointing(tmp_path)],
                     enable_checkpointing=True).fit(model, datamodule=tiny_data(train_size=16))
    pl.seed_everything(0)
    model = TextToVideoGAN(**{**TINY, "on_nonfinite": "rollback"})
    inject_nan_in_d_term(model, at_batch=2, times=100)      # NaN every time batch 2 comes round
    with pytest.warns(UserWarning, match="rollback 3 of 3"), \
            pytest.raises(NonFiniteError, match="stopped after 3 rollbacks"):
        tiny_trainer(tmp_path / "b", max_steps=40, callbacks=[checkpointing(tmp_path / "b")],
                     enable_checkpointing=True).fit(model, datamodule=tiny_data(train_size=16))


def test_fit_cli_reports_divergence_in_one_line(tmp_path, capsys, monkeypatch):
    from gan_video.cli import main

    config = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "shapes.yaml")
    monkeypatch.chdir(tmp_path)                 # the CLI writes config.yaml where it runs
    args = ["fit", "--config", config, "--trainer.max_steps", "2", "--trainer.logger", "false",
            "--trainer.enable_checkpointing", "false", "--trainer.callbacks", "[]", "--data.train_size", "8",
            "--data.batch_size", "4", "--data.num_workers", "0", "--trainer.enable_progress_bar", "false",
            "--model.lr_d", "1e30", "--trainer.limit_val_batches", "0"]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 3
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("gan-video: error: training diverged at batch 0 (optimizer steps 1-2): ")
    assert "no checkpoint had been written yet" in err


def test_data_faults_count_paths_across_batches():
    faults = DataFaults()
    faults.update({"faults": ["", "/d/bad.mp4", "/d/bad.mp4\n/d/worse.mp4"]})
    faults.update({"faults": ["/d/bad.mp4", ""]})
    faults.update({"video": None})                         # shapes batches carry no faults
    total, message = faults.epoch_summary()
    assert total == 4 and "4 clips from 2 files" in message and "bad.mp4 (3), worse.mp4 (1)" in message
    assert faults.epoch_summary() == (0, None)             # reset for the next epoch


@pytest.mark.parametrize("save_last", [True, "link"])
def test_last_checkpoint_holds_the_final_batch_when_max_steps_is_not_a_multiple(tmp_path, save_last):
    """A checkpoint every 4 optimiser steps (2 batches) and max_steps 10 (5 batches): ModelCheckpoint
    alone would leave last.ckpt at step 8; it must hold the run's final state (step 10, 5 batches,
    the weights the trainer ends with), and the periodic checkpoints stay as they were."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    pl.seed_everything(0)
    model = TextToVideoGAN(**TINY)
    ck = ModelCheckpoint(dirpath=str(tmp_path / "ck"), filename="{step}", save_top_k=-1,
                         every_n_train_steps=4, save_last=save_last)
    trainer = tiny_trainer(tmp_path, max_steps=10, callbacks=[ck], enable_checkpointing=True)
    trainer.fit(model, datamodule=tiny_data(train_size=64))
    assert trainer.global_step == 10
    last_path = tmp_path / "ck" / "last.ckpt"
    assert not last_path.is_symlink()
    last = read_checkpoint(last_path)
    assert last["global_step"] == 10 and int(last["state_dict"]["batches"]) == 5
    final = model.state_dict()
    assert all(torch.equal(last["state_dict"][k], v) for k, v in final.items())
    step8 = read_checkpoint(tmp_path / "ck" / "step=8.ckpt")
    assert step8["global_step"] == 8 and int(step8["state_dict"]["batches"]) == 4
    assert not all(torch.equal(step8["state_dict"][k], v) for k, v in final.items())
