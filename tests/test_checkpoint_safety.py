"""A checkpoint never runs code: a pickle that calls os.system is refused by every reader, and the
command it carries never runs. Real checkpoints still load everywhere (the other tests use them)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


class Evil:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def evil(tmp_path):
    """A checkpoint-shaped file whose unpickling would create ``marker``."""
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.ckpt"
    torch.save({"x": Evil(marker), "hyper_parameters": {"generator": {}}, "state_dict": {}}, path)
    return path, marker


def assert_refused(err_text: str, path: Path, marker: Path):
    assert f"refusing to load checkpoint {str(path)!r}" in err_text, err_text
    assert "posix.system" in err_text and "may be unsafe" in err_text and "nothing in this file was run" in err_text
    assert not marker.exists(), "the checkpoint ran its command"


def test_load_model_refuses_it(evil):
    from gan_video.checkpoints import UnsafeCheckpointError
    from gan_video.module import load_model

    path, marker = evil
    with pytest.raises(UnsafeCheckpointError) as err:
        load_model(str(path))
    assert_refused(str(err.value), path, marker)


@pytest.mark.parametrize("tool,args", [
    ("sample", ["--prompt", "a red circle moving left"]),
    ("evaluate", ["--metrics", "fvd4_10f"]),
    ("alignment", []),
])
def test_tools_refuse_it_with_one_line(evil, tmp_path, capsys, tool, args):
    import importlib

    path, marker = evil
    main = importlib.import_module(f"gan_video.tools.{tool}").main
    extra = ["--out", str(tmp_path / "out")] if tool == "sample" else []
    with pytest.raises(SystemExit) as exit_:
        main(["--checkpoint", str(path), *args, *extra])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gan-video-{tool}: error: refusing to load checkpoint") and err.count("\n") == 1
    assert_refused(err, path, marker)


def test_fit_ckpt_path_refuses_it(evil, tmp_path):
    path, marker = evil
    res = subprocess.run([sys.executable, "-m", "gan_video.cli", "fit", "--config", str(ROOT / "configs/shapes.yaml"),
                          "--data.init_args.num_workers", "0", "--trainer.max_steps", "2",
                          "--ckpt_path", str(path)], capture_output=True, text=True, cwd=str(tmp_path))
    assert res.returncode == 2, res.stderr[-2000:]
    assert "gan-video: error: refusing to load checkpoint" in res.stderr
    assert_refused(res.stderr, path, marker)


def test_a_real_checkpoint_reads_with_weights_only(tiny_checkpoint):
    from gan_video.checkpoints import read_checkpoint

    ckpt = read_checkpoint(tiny_checkpoint)
    assert {"state_dict", "hyper_parameters", "rng", "optimizer_states"} <= set(ckpt)
