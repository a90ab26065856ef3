import subprocess
import sys

import yaml

ROOT = __import__("pathlib").Path(__file__).parents[1]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "gan_video.cli", *args], capture_output=True, text=True,
                          cwd=str(ROOT))


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


def test_config_typos_fail_when_read_naming_the_allowed_values(tmp_path, capsys, monkeypatch):
    import pytest

    from gan_video.cli import main

    monkeypatch.chdir(ROOT)

    def fails(*args):
        with pytest.raises(SystemExit) as exit_:
            main(["fit", "--config", "configs/shapes.yaml", *args, "--print_config"])
        assert exit_.value.code != 0
        return capsys.readouterr().err

    for arg, value, allowed in (("--model.loss", "hingee", "'hinge', 'nonsaturating'"),
                                ("--model.mismatch", "hardest", "'shift', 'similar'"),
                                ("--model.generator.arch", "layerd", "'layered', 'animator', 't2v2018'"),
                                ("--model.text.name", "minlm", "'small', 'bag', 'minilm', 'clip'")):
        err = fails(arg, value)
        assert f"Literal[{allowed}]. Got value: {value}" in err, err[-800:]
    bad = tmp_path / "bad.yaml"                           # a typo inside a YAML file, not only on the command line
    bad.write_text("model:\n  generator:\n    layer_alpha: clmap\n")
    assert "Literal['sigmoid', 'clamp']. Got value: clmap" in fails("--config", str(bad))


def test_every_config_builds_and_its_generator_makes_its_size():
    """Each config in configs/ parses and builds, and its generator draws frames of the config's size
    (a 2-frame clip above 64 px, to keep this cheap)."""
    import torch
    from pytorch_lightning import LightningDataModule

    from gan_video.cli import GanVideoCLI
    from gan_video.module import TextToVideoGAN

    sizes = {}
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        cli = GanVideoCLI(TextToVideoGAN, LightningDataModule, subclass_mode_data=True, run=False,
                          args=["--config", str(path), "--trainer.logger", "false", "--trainer.callbacks", "[]",
                                "--trainer.enable_checkpointing", "false", "--trainer.accelerator", "cpu"])
        model, hp = cli.model, cli.model.hparams
        sizes[path.stem] = (hp.resolution, hp.frames)
        frames = hp.frames if hp.generator["arch"] == "t2v2018" or hp.resolution <= 64 else 2
        with torch.no_grad():
            e = model.embed_text(model.text_g, ["a red circle moving left"]) if hp.text["name"] in ("small", "bag") else None
            if e is None:
                continue                       # frozen pretrained encoders need their weights: test_pretrained_text
            clip = model.G(e, model.G.sample_noise(1, "cpu"), frames=None if frames == hp.frames else frames)
        assert clip.shape == (1, 3, frames, hp.resolution, hp.resolution), path.name
        assert torch.isfinite(clip).all() and clip.abs().max() <= 1
    for name in ("shapes", "shapes_128", "shapes_256", "ucf101_128", "ucf101_256"):
        assert sizes[name] == ({"shapes": 64}.get(name) or int(name.split("_")[-1]), 32), name
