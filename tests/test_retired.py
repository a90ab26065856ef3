"""Checkpoints and exports written before an option was removed (gan_video.models.retired): with the
option at its "off" value they load, sample the same clips and resume; with any other value they are
refused with a message that names the option and where its result is recorded."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import gan_video
from conftest import TINY
from gan_video.checkpoints import read_checkpoint
from gan_video.export import CARD_FILE, export_model
from gan_video.models.retired import RETIRED, RetiredOptionError, drop_retired

REPO = Path(__file__).resolve().parents[1]
PROMPT = ["a red circle moving left"]


def old_checkpoint(src: str, dst: Path, **changes) -> Path:
    """``src`` as a checkpoint of the version that still had every retired option (each at its "off"
    value, ``changes`` applied as ``section.name=value``)."""
    ckpt = torch.load(src, weights_only=True)
    hp = ckpt["hyper_parameters"]
    for section, removed in RETIRED.items():
        hp[section].update({k: v for k, v in removed.items()})
    for key, value in changes.items():
        section, _, name = key.rpartition("__")
        (hp[section] if section else hp)[name] = value
    torch.save(ckpt, dst)
    return dst


def test_drop_retired_keeps_current_settings_and_names_a_used_option():
    hp = {"generator": {"arch": "layered", "alpha_prior": 0.0, "coords": False}, "mismatch": "shift",
          "discriminator": {"matching": 1.0, "matching_g": 1.0, "conditioning": "projection"}}
    assert drop_retired(hp) == {"generator": {"arch": "layered"}, "mismatch": "shift",
                                "discriminator": {"matching": 1.0}}
    for bad, name in ((("generator", "alpha_prior", 0.3), "generator.alpha_prior"),
                      (("discriminator", "matching_g", 0.5), "discriminator.matching_g"),
                      (("discriminator", "conditioning", "filters"), "discriminator.conditioning")):
        section, key, value = bad
        with pytest.raises(RetiredOptionError, match=rf"{name}: .*docs/results.md.*7aa852a"):
            drop_retired({**hp, section: {**hp[section], key: value}}, "old.ckpt")
    with pytest.raises(RetiredOptionError, match="model.mismatch: 'counterfactual'"):
        drop_retired({**hp, "mismatch": "counterfactual"})


def test_an_old_checkpoint_samples_the_same_clips_and_a_used_option_is_refused(tiny_checkpoint, tmp_path):
    old = old_checkpoint(tiny_checkpoint, tmp_path / "old.ckpt")
    assert "alpha_prior" in read_checkpoint(str(old))["hyper_parameters"]["generator"]
    np.testing.assert_array_equal(gan_video.load(old).generate(PROMPT, seed=4),
                                  gan_video.load(tiny_checkpoint).generate(PROMPT, seed=4))
    export_model(old, tmp_path / "export")                   # the card holds the current settings
    card = json.loads((tmp_path / "export" / CARD_FILE).read_text())
    assert "alpha_prior" not in card["model"]["generator"]
    used = old_checkpoint(tiny_checkpoint, tmp_path / "used.ckpt", generator__texture_noise=True)
    with pytest.raises(RetiredOptionError, match="generator.texture_noise: True"):
        gan_video.load(used)


def test_an_old_export_card_loads_and_one_with_a_used_option_is_refused(tiny_checkpoint, tmp_path):
    export_model(tiny_checkpoint, tmp_path / "export")
    card_path = tmp_path / "export" / CARD_FILE
    card = json.loads(card_path.read_text())
    card["model"]["discriminator"].update(augment="", projected_frames=False)
    card_path.write_text(json.dumps(card))
    np.testing.assert_array_equal(gan_video.load(tmp_path / "export").generate(PROMPT, seed=1),
                                  gan_video.load(tiny_checkpoint).generate(PROMPT, seed=1))
    card["model"]["discriminator"]["projected_frames"] = True
    card_path.write_text(json.dumps(card))
    with pytest.raises(RetiredOptionError, match="discriminator.projected_frames: True"):
        gan_video.load(tmp_path / "export")


def test_gan_video_fit_resumes_an_old_checkpoint(tiny_checkpoint, tmp_path):
    """``--ckpt_path`` of a checkpoint with the retired settings: Lightning's parser merges the saved
    model settings into the config, so they are dropped first; the run continues one more batch."""
    old = old_checkpoint(tiny_checkpoint, tmp_path / "old.ckpt")
    cfg = {"seed_everything": 0, "threads": 1,
           "trainer": {"accelerator": "cpu", "devices": 1, "max_steps": 6, "logger": False,
                       "enable_progress_bar": False, "enable_model_summary": False, "limit_val_batches": 0,
                       "num_sanity_val_steps": 0, "enable_checkpointing": False},
           "model": {k: v for k, v in TINY.items() if k not in ("resolution", "frames")},
           "data": {"class_path": "gan_video.data.ShapesDataModule",
                    "init_args": {"resolution": 64, "frames": 8, "batch_size": 4, "train_size": 64,
                                  "num_workers": 0}}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    run = subprocess.run([sys.executable, "-m", "gan_video.cli", "fit", "--config", "tiny.yaml",
                          "--ckpt_path", str(old)], cwd=tmp_path, capture_output=True, text=True,
                         env={**__import__("os").environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "max_steps=6" in run.stdout + run.stderr
