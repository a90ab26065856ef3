"""``gan-video fit`` under DDP on the CPU: two processes (gloo), each with its own share of the data
and its own noise, the same G, D and EMA weights on both after several steps, checkpoints written once."""
from conftest import TINY
from gan_video.checkpoints import read_checkpoint
from run_helpers import fit_recording_ranks


def test_fit_under_ddp_on_two_cpu_processes(tmp_path):
    batches = 4
    cfg = {
        "seed_everything": 0,
        "threads": 1,
        "trainer": {"accelerator": "cpu", "devices": 2, "strategy": "ddp", "max_steps": 2 * batches,
                    "logger": False, "enable_progress_bar": False, "enable_model_summary": False,
                    "limit_val_batches": 0, "num_sanity_val_steps": 0,
                    "callbacks": [
                        {"class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
                         "init_args": {"dirpath": "ck", "filename": "step{step}", "auto_insert_metric_name": False,
                                       "every_n_train_steps": 4, "save_top_k": -1, "save_last": True}},
                        {"class_path": "run_helpers.RankRecorder"}]},
        "model": {**{k: v for k, v in TINY.items() if k not in ("resolution", "frames")}, "r1_gamma": 1.0,
                  "r1_every": 2},
        "data": {"class_path": "gan_video.data.ShapesDataModule",
                 "init_args": {"resolution": 64, "frames": 8, "batch_size": 2, "train_size": 16, "num_workers": 0}},
    }
    ranks = fit_recording_ranks(tmp_path, cfg)
    steps = [[x for x in rec if "batch" in x] for rec in ranks]
    ends = [rec[-1] for rec in ranks]
    assert [len(s) for s in steps] == [batches, batches] and ends[0]["world"] == ends[1]["world"] == 2
    # each rank trained on its own clips, with its own random stream (noise, wrong captions)
    for a, b in zip(*steps):
        assert a["batch"] == b["batch"]
        assert a["video"] != b["video"] and a["captions"] != b["captions"] and a["rng"] != b["rng"]
    seen = [{c for x in s for c in x["captions"]} for s in steps]
    assert seen[0] != seen[1]
    # gradients were averaged and the EMA followed the same G: identical weights on both ranks
    for key in ("G", "D", "G_ema", "text"):
        assert ends[0][key] == ends[1][key], key
    assert ends[0]["batches"] == batches
    # checkpoints written once, by rank 0, with each rank's random stream for an exact resume
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["last.ckpt", "step4.ckpt", "step8.ckpt"]
    ckpt = read_checkpoint(tmp_path / "ck" / "last.ckpt")
    assert len(ckpt["rng_ranks"]) == 2 and not torch_equal(ckpt["rng_ranks"][0]["torch"], ckpt["rng_ranks"][1]["torch"])


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))
