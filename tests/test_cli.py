import subprocess
import sys

import yaml


def cli(*args):
    return subprocess.run([sys.executable, "-m", "gan_video.cli", *args], capture_output=True, text=True,
                          cwd=str(__import__("pathlib").Path(__file__).parents[1]))


def test_print_config_has_every_hyperparameter():
    res = cli("fit", "--config", "configs/shapes.yaml", "--print_config")
    assert res.returncode == 0, res.stderr
    cfg = yaml.safe_load(res.stdout)
    data = cfg["data"]["init_args"]
    assert data["resolution"] == 64 and data["frames"] == 32
    assert "resolution" not in cfg["model"]  # linked from data.resolution, not set twice
    assert cfg["model"]["generator"]["arch"] == "layered"
    assert data["holdout"] == [["red", "triangle"], ["green", "square"], ["blue", "circle"]]


def test_bad_resolution_is_one_clear_error():
    res = cli("fit", "--config", "configs/shapes.yaml", "--data.init_args.resolution", "96",
              "--trainer.max_steps", "1")
    assert res.returncode == 2
    assert "resolution 96 is not 64*2^k" in res.stderr and "gan-video: error:" in res.stderr
