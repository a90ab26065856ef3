"""configs/ucf101_256.yaml trains: ``gan-video fit`` with the config as shipped (the full 32 x 256x256
animator model and discriminator) runs one batch on a few tiny synthetic UCF-style videos, writes
its checkpoint and finite losses, and the checkpoint's generator makes full-size clips.

Only what a CPU and tiny data need is overridden: the data folder, ``32-true`` (the config's own
comment for a CPU; ``bf16-mixed`` is refused on CPUs with a faulty bf16 conv3d, docs/scaling.md),
one clip per batch, no loader workers, no validation, a loss logged every step, and the
EvaluationCallback dropped (FVD-2048 and CLIPSIM need I3D and CLIP weights and hours on a CPU).
Measured on the 2-core CPU VM (shared with other work): 29-55 s; peak RSS 1.95 GB for the training
process and 2.1 GB at most for either process (the config's six end-of-run sample clips would take 4.05 GB).
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "ucf101_256.yaml"
CLASSES = ("ApplyEyeMakeup", "PlayingGuitar")


def ucf_like_videos(root: Path, per_class: int = 2, frames: int = 70, h: int = 240, w: int = 320) -> None:
    """``per_class`` H.264 videos per class folder, laid out like UCF-101 (320x240, 25 fps): a
    coloured block moving right over a flat background."""
    from gan_video.data.io import write_mp4

    for c, name in enumerate(CLASSES):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            video = np.full((frames, h, w, 3), 40 + 60 * c, np.uint8)
            for t in range(frames):
                x = 20 + 3 * t + 10 * k
                video[t, 80:140, x:x + 60] = (200, 80 + 100 * k, 50)
            write_mp4(folder / f"v_{name}_g{k + 1:02d}_c01.mp4", video, fps=25)


def scalars(run: Path) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = {}
    for events in sorted(run.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            out.setdefault(tag, []).extend(e.value for e in acc.Scalars(tag))
    return out


def test_ucf101_256_config_trains_a_batch_and_its_checkpoint_samples_full_size_clips(tmp_path):
    data = tmp_path / "UCF-101"
    ucf_like_videos(data)
    cfg = yaml.safe_load(CONFIG.read_text())
    assert cfg["trainer"]["precision"] == "bf16-mixed" and cfg["model"]["generator"]["arch"] == "animator"
    callbacks = [cb for cb in cfg["trainer"]["callbacks"] if not cb["class_path"].endswith("EvaluationCallback")]
    assert len(callbacks) == len(cfg["trainer"]["callbacks"]) - 1
    for cb in callbacks:                # the end-of-training samples: one clip, not six (6 x 32 x 256x256
        if cb["class_path"].endswith("SampleLogger"):          # in one pass: 2 GB more on a CPU)
            cb["init_args"]["prompts"] = cb["init_args"]["prompts"][:1]

    # from tmp_path, as a user runs it from a project folder: runs/ (logs, checkpoints) lands there
    res = subprocess.run(
        [sys.executable, "-m", "gan_video.cli", "fit", "--config", str(CONFIG),
         "--data.init_args.root", str(data), "--data.init_args.format", "classes",
         "--data.init_args.batch_size", "1", "--data.init_args.num_workers", "0",
         "--trainer.precision", "32-true", "--trainer.accelerator", "cpu",
         "--trainer.max_steps", "2",                        # a D and a G step: one batch
         "--trainer.limit_val_batches", "0", "--trainer.log_every_n_steps", "1",
         "--trainer.enable_progress_bar", "false", "--trainer.callbacks", json.dumps(callbacks)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))})
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-4000:]
    assert "video data: 4 usable, none skipped (classes, 63-frame clips)" in log, log[-4000:]
    assert "`Trainer.fit` stopped: `max_steps=2` reached." in log

    run = tmp_path / "runs" / "ucf101_256"
    logged = scalars(run)
    for tag in ("loss_d", "loss_g", "train/r1", "train/d_motion_real", "train/g_motion"):
        assert logged.get(tag), f"{tag} not logged: {sorted(logged)}"
    assert all(math.isfinite(v) for values in logged.values() for v in values), logged

    ckpt = run / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    from gan_video.checkpoints import read_checkpoint
    from gan_video.sampling import load_sampler

    state = read_checkpoint(str(ckpt))
    assert state["global_step"] == 2
    assert all(torch.isfinite(t).all() for t in state["state_dict"].values() if t.is_floating_point())
    sampler = load_sampler(state, path=str(ckpt))
    del state
    assert (sampler.hparams.resolution, sampler.hparams.frames) == (256, 32)
    assert sampler.hparams.generator["arch"] == "animator"
    with torch.no_grad():
        clip = sampler.generate(["apply eye makeup"], seeds=[0])
    assert clip.shape == (1, 3, 32, 256, 256)
    assert torch.isfinite(clip).all() and clip.abs().max() <= 1
    assert clip.std() > 0                              # not a constant clip
    ckpt.unlink()                                      # 377 MB; pytest keeps its last 3 tmp folders
