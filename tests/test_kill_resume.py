"""Real kills: ``gan-video fit`` in a subprocess, killed with SIGKILL between two checkpoints or in the
middle of writing one, then resumed from its last checkpoint; the resumed run must match an
uninterrupted one bit for bit (losses, weights, optimiser states, EMA, every RNG, the data order)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import TINY
from gan_video.checkpoints import read_checkpoint

REPO = Path(__file__).resolve().parents[1]
BATCHES = 12          # 3 epochs of 4 batches

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")


def config(path: Path, every: int = 8, data: dict | None = None, sparse: int = 0) -> Path:
    """The tiny run: a checkpoint every ``every`` optimiser steps (two per batch) and last.ckpt; ``data``
    replaces the shapes data module, ``sparse`` sets the discriminator's sparse frames."""
    cfg = {
        "seed_everything": 0,
        "threads": 1,
        "trainer": {"accelerator": "cpu", "devices": 1, "max_steps": 2 * BATCHES, "logger": False,
                    "enable_progress_bar": False, "enable_model_summary": False, "limit_val_batches": 0,
                    "num_sanity_val_steps": 0,
                    "callbacks": [
                        {"class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
                         "init_args": {"dirpath": "ck", "filename": "step{step}", "auto_insert_metric_name": False,
                                       "every_n_train_steps": every, "save_top_k": -1, "save_last": True}},
                        {"class_path": "run_helpers.Recorder"}]},
        "model": {k: v for k, v in TINY.items() if k not in ("resolution", "frames")},
        "data": data or {"class_path": "gan_video.data.ShapesDataModule",
                         "init_args": {"resolution": 64, "frames": 8, "batch_size": 4, "train_size": 16, "num_workers": 1}},
    }
    if sparse:
        cfg["model"]["discriminator"] = {**cfg["model"]["discriminator"], "sparse_frames": sparse}
    path.write_text(yaml.safe_dump(cfg))
    return path


def fit(cwd: Path, cfg: Path, env: dict, *extra: str) -> subprocess.Popen:
    cwd.mkdir(parents=True, exist_ok=True)
    full = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO),
                                                          os.environ.get("PYTHONPATH", "")]),
            "GV_RECORD": str(cwd / "record.jsonl"), **env}
    return subprocess.Popen([sys.executable, "-m", "gan_video.cli", "fit", "--config", str(cfg), *extra],
                            cwd=cwd, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def records(cwd: Path) -> list[dict]:
    path = cwd / "record.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def finish(proc: subprocess.Popen, timeout: float = 300) -> None:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]


def kill_when(proc: subprocess.Popen, cwd: Path, ready, timeout: float = 300) -> None:
    """SIGKILL ``proc`` as soon as its records satisfy ``ready``."""
    end = time.time() + timeout
    while not ready(records(cwd)):
        if proc.poll() is not None:
            raise AssertionError("the run ended before it could be killed:\n" + proc.communicate()[0][-3000:])
        assert time.time() < end, "timed out waiting for the run"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run: its records and final checkpoint."""
    root = tmp_path_factory.mktemp("straight")
    cfg = config(root / "tiny.yaml")
    finish(fit(root / "run", cfg, {}))
    return cfg, root / "run"


def check_same(resumed: Path, straight: Path, from_batch: int) -> None:
    got = [r for r in records(resumed) if "batch" in r]
    want = {r["batch"]: r for r in records(straight) if "batch" in r}
    assert [r["batch"] for r in got] == list(range(from_batch, BATCHES))
    for r in got:     # losses (exact floats), weights + optimiser states (hash) after every batch
        assert r == want[r["batch"]], f"batch {r['batch']} differs after the resume"
    a = read_checkpoint(resumed / "ck" / "last.ckpt")
    b = read_checkpoint(straight / "ck" / "last.ckpt")
    assert a["global_step"] == b["global_step"] == 2 * BATCHES
    for k, v in b["state_dict"].items():
        assert torch.equal(a["state_dict"][k], v), k
    for sa, sb in zip(a["optimizer_states"], b["optimizer_states"]):
        for i, st in sb["state"].items():
            assert all(torch.equal(sa["state"][i][k], v) if torch.is_tensor(v) else sa["state"][i][k] == v
                       for k, v in st.items())
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])


def test_sigkill_between_checkpoints_then_resume_matches_an_uninterrupted_run(straight, tmp_path):
    _, ref = straight
    run = tmp_path / "run"
    cfg = config(tmp_path / "every6.yaml", every=6)     # checkpoints after batches 2, 5, 8, 11
    # killed in batch 7: after the checkpoint of batch 5 (step 12, mid-epoch), before the next (step 18)
    kill_when(fit(run, cfg, {"GV_PAUSE_AT_BATCH": "7"}), run, lambda r: any(x.get("batch") == 7 for x in r))
    assert sorted(p.name for p in (run / "ck").glob("*.ckpt")) == ["last.ckpt", "step12.ckpt", "step6.ckpt"]
    (run / "record.jsonl").unlink()
    finish(fit(run, cfg, {}, "--ckpt_path", "ck/last.ckpt"))
    check_same(run, ref, from_batch=6)


def test_sigkill_while_writing_a_checkpoint_leaves_the_previous_one_intact(straight, tmp_path):
    _, ref = straight
    cfg = config(tmp_path / "every8.yaml", every=8)     # checkpoints after batches 3, 7, 11
    run = tmp_path / "run"
    # killed half-way through overwriting last.ckpt at step 16 (the second checkpoint); the
    # previous one closed epoch 0, so the resumed run starts at the next epoch (with a data worker
    # that prefetches before Lightning sets the sampler's epoch)
    proc = fit(run, cfg, {"GV_HANG_SAVING": "last.ckpt@16"})
    kill_when(proc, run, lambda r: any("saving" in x for x in r))
    last = read_checkpoint(run / "ck" / "last.ckpt")          # the previous one, whole
    assert last["global_step"] == 8
    assert torch.equal(last["state_dict"]["batches"], torch.tensor(4))
    leftovers = list((run / "ck").glob(".last.ckpt.*.tmp"))     # the half-written file went elsewhere
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0
    (run / "record.jsonl").unlink()
    finish(fit(run, cfg, {}, "--ckpt_path", "ck/last.ckpt"))
    check_same(run, ref, from_batch=4)


def test_sigkill_over_a_prepared_dataset_with_sparse_frames_then_resume_matches(tmp_path):
    """The same kill between checkpoints over a prepared (LitData) dataset read sparsely by a data
    worker: the resumed run continues with the same clips, frames and weights."""
    from gan_video.data.prepare import prepare_dataset
    from test_streaming import make_videos

    make_videos(tmp_path / "videos", n=16)
    prepare_dataset(str(tmp_path / "p"), str(tmp_path / "videos"), size=64, min_frames=8, progress=False)
    data = {"class_path": "gan_video.data.VideoDataModule",
            "init_args": {"root": str(tmp_path / "p"), "resolution": 64, "frames": 8, "batch_size": 4,
                          "num_workers": 1, "hflip": True, "sparse_frames": 3, "verbose": False}}
    ref, run = tmp_path / "straight", tmp_path / "run"
    finish(fit(ref, config(tmp_path / "straight.yaml", data=data, sparse=3), {}))
    cfg = config(tmp_path / "every6.yaml", every=6, data=data, sparse=3)
    kill_when(fit(run, cfg, {"GV_PAUSE_AT_BATCH": "7"}), run, lambda r: any(x.get("batch") == 7 for x in r))
    (run / "record.jsonl").unlink()
    finish(fit(run, cfg, {}, "--ckpt_path", "ck/last.ckpt"))
    check_same(run, ref, from_batch=6)
