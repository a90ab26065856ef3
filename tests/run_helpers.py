"""A callback for the kill tests (test_kill_resume.py), loaded by ``gan-video fit`` in a subprocess
(``class_path: run_helpers.Recorder``, with tests/ on PYTHONPATH).

It appends one JSON line per batch to ``$GV_RECORD``: the batch, the optimiser step, both losses as
exact hex floats and a hash of every weight and optimiser state, flushed and fsynced so that a killed
process leaves its lines. With ``$GV_PAUSE_AT_BATCH=N`` it sleeps after batch N (the test kills it
there); with ``$GV_HANG_SAVING=NAME@STEP`` the checkpoint write of file NAME at optimiser step STEP
writes half its bytes, says so in ``$GV_RECORD`` and hangs (the test kills it mid-write).
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch


def state_hash(trainer, module) -> str:
    h = hashlib.sha1()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    for opt in trainer.optimizers:
        for k, state in sorted(opt.state_dict()["state"].items()):
            for key in sorted(state):
                v = state[key]
                h.update(f"{k}.{key}".encode())
                h.update(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
                         if torch.is_tensor(v) else repr(v).encode())
    return h.hexdigest()


def record(line: dict) -> None:
    with open(os.environ["GV_RECORD"], "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
        f.flush()
        os.fsync(f.fileno())


class Recorder(pl.Callback):
    def setup(self, trainer, pl_module, stage):
        hang = os.environ.get("GV_HANG_SAVING")
        if not hang:
            return
        name, step = hang.split("@")
        real_save = torch.save

        def slow_save(obj, f, *args, **kwargs):
            target = os.path.basename(str(f))
            if trainer.global_step != int(step) or not (target == name or target.startswith(f".{name}.")):
                return real_save(obj, f, *args, **kwargs)
            buf = io.BytesIO()
            real_save(obj, buf, *args, **kwargs)
            data = buf.getvalue()
            with open(f, "wb") as out:
                out.write(data[: len(data) // 2])
                out.flush()
                record({"saving": target, "step": trainer.global_step})
                time.sleep(120)
                out.write(data[len(data) // 2:])

        torch.save = slow_save

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        m = trainer.callback_metrics
        record({"batch": int(pl_module.batches) - 1, "step": trainer.global_step,
                "loss_d": float(m["loss_d"]).hex(), "loss_g": float(m["loss_g"]).hex(),
                "state": state_hash(trainer, pl_module)})
        if os.environ.get("GV_PAUSE_AT_BATCH") == str(int(pl_module.batches) - 1):
            time.sleep(120)


def module_hash(module) -> str:
    h = hashlib.sha1()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class RankRecorder(pl.Callback):
    """For the DDP test: each rank appends to ``$GV_RECORD.rank{R}`` the clips of each batch (a hash
    of the frames, the captions, the torch random state) and, at the end, hashes of G, D, the EMA
    generator and the text encoder."""

    def _write(self, trainer, line: dict) -> None:
        with open(f"{os.environ['GV_RECORD']}.rank{trainer.global_rank}", "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._write(trainer, {"batch": int(pl_module.batches), "captions": list(batch["caption"]),
                              "epoch": trainer.current_epoch,
                              "items": batch["index"].tolist() if "index" in batch else None,
                              "video": hashlib.sha1(batch["video"].cpu().numpy().tobytes()).hexdigest(),
                              "rng": hashlib.sha1(torch.get_rng_state().numpy().tobytes()).hexdigest()})

    def on_train_end(self, trainer, pl_module):
        self._write(trainer, {"world": trainer.world_size, "G": module_hash(pl_module.G),
                              "D": module_hash(pl_module.D), "G_ema": module_hash(pl_module.G_ema),
                              "text": module_hash(pl_module.text_d), "batches": int(pl_module.batches)})


def fit_recording_ranks(tmp_path, cfg: dict, ranks: int = 2) -> list[list[dict]]:
    """``gan-video fit`` on the config ``cfg`` (a dict, written as YAML) in a subprocess run from
    ``tmp_path``, with tests/ on PYTHONPATH so that its callbacks can name ``run_helpers.RankRecorder``;
    asserts it succeeded and returns the JSON lines each rank recorded."""
    import yaml

    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo / "tests"), str(repo), os.environ.get("PYTHONPATH", "")]),
           "GV_RECORD": str(tmp_path / "record"), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "gan_video.cli", "fit", "--config", str(tmp_path / "ddp.yaml")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return [[json.loads(x) for x in (tmp_path / f"record.rank{r}").read_text().splitlines()] for r in range(ranks)]
