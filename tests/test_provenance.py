"""Provenance: metadata labels in mp4 / GIF / PNG, the pixel watermark (robust to an H.264 CRF 28
re-encode and a 0.75x resize, keyed, silent on real clips, cheap in PSNR) and gan-video-inspect."""
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gan_video.data.io import gif_bytes, read_video, to_uint8, write_gif, write_mp4, write_png
from gan_video.provenance import (PNG_KEY, label_for, mark_clip, model_hash, parse_label, read_label)
from gan_video.watermark import (ALPHA, SIZES, THRESHOLD, _hypotheses, detect_watermark, embed_watermark,
                                 model_id_of, score_needed, tail_bound)

ROOT = Path(__file__).resolve().parents[1]
WEIZMANN = ROOT.parent / "shared" / "data" / "weizmann"
HASH = "3f2a9c0d41b7e6aa"


def shapes(n, seed, frames=16, res=64):
    from gan_video.data.shapes import MovingShapes

    ds = MovingShapes(size=n, resolution=res, frames=frames, seed=seed)
    return [to_uint8(ds[i]["video"]) for i in range(n)]


def weizmann(n, frames=16):
    """n real clips of the Weizmann strips (entries from the image headers: no full scan)."""
    from PIL import Image

    from gan_video.data.video import Entry, RealClips

    entries = []
    for path in sorted(WEIZMANN.glob("*/*.jpg")):
        with Image.open(path) as im:
            w, h = im.size
        entries.append(Entry(str(path), "strip", (path.parent.name,), frames=w // h))
    clips = RealClips(entries, 64, frames, n, seed=3)
    return [np.asarray(clips[j]["video"]) for j in range(n)]


def h264(clip, crf, tmp_path):
    path = tmp_path / f"re{crf}.mp4"
    write_mp4(path, clip, crf=crf)
    return read_video(path)


def resize(clip, scale):
    """Downscaled (area), not restored: what a site or player does."""
    import cv2

    t, h, w, _ = clip.shape
    return np.stack([cv2.resize(f, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) for f in clip])


def resize_back(clip, scale=0.75):
    import cv2

    t, h, w, _ = clip.shape
    small = (round(w * scale), round(h * scale))
    return np.stack([cv2.resize(cv2.resize(f, small, interpolation=cv2.INTER_AREA), (w, h),
                                interpolation=cv2.INTER_LINEAR) for f in clip])


def psnr(a, b):
    return 10 * np.log10(255.0 ** 2 / max(1e-12, ((a.astype(float) - b) ** 2).mean()))


@pytest.fixture(scope="module")
def clip():
    return shapes(1, seed=99)[0]


@pytest.fixture(scope="module")
def marked(clip):
    return mark_clip(clip, "a red circle moving left", 7, HASH)


# ------------------------------------------------------------------------------------------ labels
def test_label_round_trip_in_mp4_gif_png(marked, tmp_path):
    frames, label = marked
    assert label["synthetic"] is True and label["generator"] == "gan_video" and label["generator_version"]
    assert label["prompt"] == "a red circle moving left" and label["seed"] == 7 and label["model_hash"] == HASH
    assert label["watermark"] == {"scheme": "gan_video-ss/1", "model_id": "3f2a", "key": "default"}
    write_mp4(tmp_path / "a.mp4", frames, label=label)
    write_gif(tmp_path / "a.gif", frames, label=label)
    write_png(tmp_path / "a.png", frames[0], label=label)
    for ext in ("mp4", "gif", "png"):
        assert read_label(tmp_path / f"a.{ext}") == label, ext
    # the label sits where other tools look: the mp4 container's comment tag, the PNG's iTXt chunk
    import av
    from PIL import Image

    with av.open(str(tmp_path / "a.mp4")) as c:
        assert json.loads(c.metadata["comment"])["synthetic"] is True
    with Image.open(tmp_path / "a.png") as im:
        assert json.loads(im.text[PNG_KEY]) == label
    # unlabelled files (and the old call signatures) give None
    write_mp4(tmp_path / "b.mp4", frames, 8, 18)
    (tmp_path / "b.gif").write_bytes(gif_bytes(frames, 8))
    write_png(tmp_path / "b.png", frames[0])
    assert [read_label(tmp_path / f"b.{e}") for e in ("mp4", "gif", "png")] == [None, None, None]


def test_label_errors(tmp_path):
    with pytest.raises(ValueError, match="not a hex digest"):
        label_for("p", 1, "not-a-hash")
    with pytest.raises(ValueError, match="JSON"):
        write_png(tmp_path / "x.png", np.zeros((8, 8, 3), np.uint8), label={"bad": object()})
    with pytest.raises(FileNotFoundError):
        read_label(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all")
    with pytest.raises(ValueError, match="cannot read"):
        read_label(tmp_path / "junk.mp4")
    assert parse_label('{"comment": "from another program"}') is None and parse_label("plain text") is None
    assert model_id_of(HASH) == 0x3F2A and model_id_of(7) == 7
    assert len(model_hash({"w": __import__("torch").ones(3)})) == 12


# --------------------------------------------------------------------------------------- watermark
def test_watermark_survives_crf28_and_resize_once_metadata_is_gone(marked, clip, tmp_path):
    frames, label = marked
    assert frames.shape == clip.shape and frames.dtype == np.uint8 and not np.array_equal(frames, clip)
    write_mp4(tmp_path / "delivered.mp4", frames, label=label)
    delivered = read_video(tmp_path / "delivered.mp4")
    for name, attacked in (("crf28", h264(delivered, 28, tmp_path)), ("resize", resize_back(delivered)),
                           ("both", h264(resize_back(delivered), 28, tmp_path))):
        r = detect_watermark(attacked, expected_id=HASH)
        assert r.detected and r.score >= THRESHOLD and r.id_match, (name, r)
        assert r.p_bound < 0.01
    write_mp4(tmp_path / "stripped.mp4", h264(delivered, 28, tmp_path))   # a re-encode: no metadata
    assert read_label(tmp_path / "stripped.mp4") is None
    assert detect_watermark(read_video(tmp_path / "stripped.mp4")).detected
    assert detect_watermark(clip).detected is False                      # the clean clip is not marked


def test_watermark_on_other_clips_and_sizes(tmp_path):
    others = shapes(2, seed=5, frames=24, res=96)
    if WEIZMANN.is_dir():
        others += weizmann(2)
    for k, c in enumerate(others):
        m = embed_watermark(c, 0xBEEF)
        r = detect_watermark(h264(h264(m, 18, tmp_path), 28, tmp_path), expected_id=0xBEEF)
        assert r.detected and r.score >= r.threshold + 1, (k, r)
        # the model id has an eighth of the cells: after CRF 28 it is confirmed on the built-in clips;
        # on real footage the 1 dB cap keeps the mark weak and the id is not promised (docs/provenance.md)
        assert r.id_match or k >= 2, (k, r)
        assert psnr(m, c) > 38


def test_real_clips_are_not_detected():
    real = shapes(24, seed=0)
    if WEIZMANN.is_dir():
        real += weizmann(24)
    found = [detect_watermark(c) for c in real]
    assert not any(r.detected for r in found), max(r.score for r in found)
    assert all(r.hypotheses == 3 and r.p_bound > ALPHA for r in found)   # as is, from 128 and 256 px
    scores = [detect_watermark(c, search=False).score for c in real]     # "as is" alone
    assert max(scores) < THRESHOLD, max(scores)
    assert abs(np.mean(scores)) < 1.0                                    # centred, as the bound says
    # trimmed (56x56: 81 crop offsets and 4 rescales tried) and downscaled (48x48: 293 hypotheses)
    for size, trim in ((56, lambda c: c[:, 4:60, 4:60]), (48, lambda c: resize(c, 0.75))):
        found = [detect_watermark(trim(c)) for c in real[:12]]
        assert not any(r.detected for r in found), (size, max(r.score for r in found))
        assert {r.hypotheses for r in found} == {len(_hypotheses(size, size, SIZES))}


def test_hypotheses_share_the_bound():
    """Every size's hypotheses have weights summing to 1, so the reported p_bound is a true bound
    for the clip, however many geometries were tried."""
    for h, w in ((64, 64), (128, 128), (256, 256), (56, 56), (48, 48), (58, 62), (200, 300), (33, 40)):
        hyps = _hypotheses(h, w, SIZES)
        assert abs(sum(wt for _, wt in hyps) - 1.0) < 1e-9 and all(wt > 0 for _, wt in hyps), (h, w)
        assert len({hyp for hyp, _ in hyps}) == len(hyps)
    crops = [hyp for hyp, _ in _hypotheses(56, 56, SIZES) if hyp[0] == "crop"]
    assert len(crops) == 81 and {hyp[1] for hyp in crops} == {64}        # 0..8 px from each side, of 64x64
    assert score_needed(1.0) == pytest.approx(THRESHOLD, abs=1e-6) and tail_bound(THRESHOLD) == ALPHA
    assert score_needed(0.5) > THRESHOLD


def test_watermark_survives_rescale_and_trim(marked, clip, tmp_path):
    """A shared clip is shown larger, trimmed and re-encoded: the detector finds where it was."""
    import cv2

    frames, label = marked
    write_mp4(tmp_path / "delivered.mp4", frames, label=label)
    delivered = read_video(tmp_path / "delivered.mp4")
    up4 = np.stack([cv2.resize(f, (256, 256), interpolation=cv2.INTER_LINEAR) for f in delivered])
    cases = {"rescaled from 64x64": h264(up4, 23, tmp_path),
             "cropped from 64x64 at x=4, y=4": h264(delivered[:, 4:60, 4:60], 23, tmp_path),
             "cropped from 64x64 at x=2, y=6": delivered[:, 6:60, 2:58]}
    for geometry, attacked in cases.items():
        r = detect_watermark(attacked, expected_id=HASH)
        assert r.detected and r.id_match, (geometry, r)
        assert r.p_bound <= ALPHA and r.score >= r.threshold > THRESHOLD
        if geometry.startswith("cropped"):       # 4 px luma cells: the fit is as good 1 px either side
            found, true = (tuple(map(int, re.findall(r"[xy]=(\d+)", g))) for g in (r.geometry, geometry))
            assert r.geometry.startswith("cropped from 64x64") and max(abs(a - b) for a, b in zip(found, true)) <= 1, \
                (geometry, r.geometry)
        else:
            assert r.geometry == geometry, r.geometry
    small = resize(delivered, 0.75)                                      # 48x48, not scaled back
    r = detect_watermark(small)
    assert r.detected and r.geometry == "rescaled from 64x64", r
    assert not detect_watermark(h264(up4, 23, tmp_path), search=False).detected   # "as is" alone misses it


def test_layout_gives_the_magic_seven_eighths_and_keeps_version_3_cells():
    """The magic (what detection reads) has 7/8 of each plane's cells; every cell keeps the chip
    version 3 drew for it, and every version-3 magic cell keeps its bit, so version 3 clips still read."""
    from gan_video.watermark import DEFAULT_KEY, PLANES
    from gan_video.watermark_layout import MAGIC_SHARE, NBITS, NMAGIC, _layout

    for plane in PLANES:
        for g in (8, 16, 32):
            n = g * g
            bits, chips = _layout(DEFAULT_KEY, plane, g, g)
            counts = np.bincount(bits, minlength=NBITS)
            assert counts[:NMAGIC].sum() == round(n * MAGIC_SHARE) == n - n // 8
            assert np.ptp(counts[:NMAGIC]) <= 2 and np.ptp(counts[NMAGIC:]) <= 1 and counts[NMAGIC:].min() >= n // 128
            seed = hashlib.sha256(f"{DEFAULT_KEY}|{plane.name}|{plane.cell}|{g}x{g}".encode()).digest()
            rng = np.random.default_rng(int.from_bytes(seed[:8], "little"))      # version 3's draw
            old_bits = (np.arange(n) % NBITS)[rng.permutation(n)]
            old_chips = rng.choice(np.array([-1.0, 1.0]), size=n)
            assert np.array_equal(chips, old_chips)
            magic = old_bits < NMAGIC
            assert np.array_equal(bits[magic], old_bits[magic])
            still_id = bits >= NMAGIC
            assert np.array_equal(bits[still_id], old_bits[still_id])          # an id cell kept is the same bit's


def test_key_matters(clip):
    mine = embed_watermark(clip, 12, key="my secret key")
    assert detect_watermark(mine, key="my secret key").detected
    assert not detect_watermark(mine).detected                           # the default key
    assert not detect_watermark(mine, key="another key").detected
    assert not detect_watermark(embed_watermark(clip, 12), key="my secret key").detected


def test_psnr_cost_under_one_db(tmp_path):
    costs, marks = [], []
    for c in shapes(3, seed=31):
        m = embed_watermark(c, 0x1234)
        marks.append(psnr(m, c))
        costs.append(psnr(c, h264(c, 18, tmp_path)) - psnr(c, h264(m, 18, tmp_path)))
    # the pattern is capped at 40 dB; rounded into whole levels the mark measures up to ~0.5 dB lower
    assert np.mean(costs) < 1.0 and min(marks) > 39.5, (costs, marks)


def test_embedding_is_deterministic_and_idempotent(marked, clip):
    frames, _ = marked
    assert np.array_equal(mark_clip(clip, "x", 1, HASH)[0], frames)
    assert np.array_equal(embed_watermark(frames, HASH), frames)         # already carries this id
    assert np.array_equal(mark_clip(clip, "x", 1, HASH, watermark=False)[0], clip)
    one = embed_watermark(clip[0], HASH)                                 # a single frame [H, W, 3]
    assert one.shape == clip[0].shape and detect_watermark(one).detected
    with pytest.raises(ValueError, match="too small"):
        embed_watermark(clip[:, :16, :16], HASH)
    assert detect_watermark(clip[:, :16, :16]).note


def test_codec_simulation_is_the_portable_c_path():
    """The embedding's H.264 round trip must give the same frames on every machine: it uses only
    x264's SSE2 kernels, which code to the bit like x264's C code (``asm=0``). The CPU's own choice
    of kernels codes this clip differently on an AVX2 machine (SSE3-and-later kernels round apart
    from the C code), so without the restriction this fails there."""
    from gan_video.watermark import h264_roundtrip

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (128, 128, 3))
    moving = np.stack([np.roll(base, 2 * k, axis=1) for k in range(32)])
    clip = np.clip(moving + rng.integers(-60, 60, moving.shape), 0, 255).astype(np.uint8)

    coded = h264_roundtrip(clip)
    assert coded.shape == clip.shape and not np.array_equal(coded, clip)
    assert np.array_equal(coded, h264_roundtrip(clip, asm="0"))      # x264's C code only
    assert np.array_equal(h264_roundtrip(clip), coded)


def test_simulated_delivery_is_how_the_project_writes_clips():
    """The embedding caps the mark against the file gan_video ships (watermark_codec.deliver); its
    CRF and frame rate are io.write_mp4's defaults, and must follow them if those change."""
    import inspect as pyinspect

    from gan_video.watermark_codec import DELIVERY_CRF, DELIVERY_FPS

    defaults = pyinspect.signature(write_mp4).parameters
    assert (defaults["crf"].default, defaults["fps"].default) == (DELIVERY_CRF, DELIVERY_FPS)


# ----------------------------------------------------------------------------------------- inspect
def test_inspect_cli(marked, clip, tmp_path, capsys):
    from gan_video.tools import inspect

    frames, label = marked
    write_mp4(tmp_path / "gen.mp4", frames, label=label)
    write_gif(tmp_path / "gen.gif", frames, label=label)
    write_png(tmp_path / "strip.png", np.concatenate(list(frames[:4]), axis=1), label=label)
    write_mp4(tmp_path / "stripped.mp4", read_video(tmp_path / "gen.mp4"))
    write_mp4(tmp_path / "real.mp4", clip)
    inspect.main([str(tmp_path / n) for n in ("gen.mp4", "gen.gif", "strip.png", "stripped.mp4", "real.mp4")])
    out = capsys.readouterr().out
    blocks = out.split(str(tmp_path))[1:]
    assert len(blocks) == 5
    for b in blocks[:3]:
        assert "label: synthetic=true generator=gan_video" in b and "model=3f2a9c0d41b7e6aa" in b
        assert "watermark: DETECTED" in b and "the label's model 3f2a matches the pixels" in b
    assert "a strip of 4 frames" in blocks[2]
    assert "label: none (" in blocks[3] and "watermark: DETECTED" in blocks[3]
    assert "label: none (" in blocks[4] and "watermark: not detected" in blocks[4]
    # with the metadata gone, a model hash from elsewhere can still be checked against the pixels
    inspect.main(["--model", HASH, str(tmp_path / "stripped.mp4")])
    assert "the given model 3f2a matches the pixels" in capsys.readouterr().out
    inspect.main(["--model", "0123456789ab", str(tmp_path / "stripped.mp4")])
    assert "the given model 0123 does not match the pixels" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        inspect.main(["--model", "xyz", str(tmp_path / "stripped.mp4")])
    assert capsys.readouterr().err.startswith("gan-video-inspect: error: --model")
    # JSON output, and one clear line per missing or unreadable file (exit status 2)
    inspect.main(["--json", str(tmp_path / "gen.mp4")])
    info = json.loads(capsys.readouterr().out)
    assert info["label"] == label and info["watermark"]["detected"]
    assert info["watermark"]["expected_id"] == 0x3F2A and info["watermark"]["id_match"]   # the label's model, checked
    (tmp_path / "junk.gif").write_bytes(b"GIF89a broken")
    with pytest.raises(SystemExit) as e:
        inspect.main([str(tmp_path / "nope.mp4"), str(tmp_path / "junk.gif"), str(tmp_path / "gen.mp4")])
    assert e.value.code == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("gan-video-inspect: error: ") for line in err)
    assert "does not exist" in err[0] and "cannot read" in err[1] and "DETECTED" in captured.out


def test_inspect_script_runs(marked, tmp_path):
    frames, label = marked
    write_gif(tmp_path / "g.gif", frames, label=label)
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "inspect_file.py"), str(tmp_path / "g.gif")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "label: synthetic=true" in res.stdout and "watermark: DETECTED" in res.stdout


def test_sample_tool_watermarks_by_default(tiny_checkpoint, tmp_path):
    import gan_video
    from gan_video.tools import sample

    args = ["--checkpoint", tiny_checkpoint, "--prompt", "a red circle moving left", "--seed", "3"]
    marked = sample.run(sample.build_parser().parse_args(args + ["--out", str(tmp_path / "w")]))
    plain = sample.run(sample.build_parser().parse_args(args + ["--out", str(tmp_path / "p"), "--no-watermark"]))
    expected = model_hash(gan_video.load(tiny_checkpoint))
    # the tool wrote the model's frames with this model's mark (an untrained model's 8 frames of
    # blotchy noise are too busy a scene to find it in under its 40 dB cap: docs/provenance.md, limits)
    clean = gan_video.load(tiny_checkpoint).generate(["a red circle moving left"], num_samples=1, seed=3)[0]
    assert plain[0]["frames_sha1"] == hashlib.sha1(clean.tobytes()).hexdigest()
    assert marked[0]["frames_sha1"] == hashlib.sha1(embed_watermark(clean, expected).tobytes()).hexdigest()
    assert not detect_watermark(read_video(tmp_path / "p" / plain[0]["file"])).detected


def test_watermark_eval_tool_smoke(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("watermark_eval", ROOT / "tools" / "watermark_eval.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    res = tool.main(["--marked", "shapes", "--num-clips", "2", "--num-real", "3",
                     "--weizmann", str(tmp_path / "absent"), "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert "stand in for generated clips" in out and "Weizmann folder" in out and "| shapes |" in out
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(json.dumps(res))
    (row,) = res["marked"]
    assert row["clips"] == 2 and row["recall"]["crf28"] == 1.0 and row["recall"]["resize"] == 1.0
    assert row["cost_db"] < 1.0 and row["wrong_key_detections"] == 0.0
    assert [r["set"] for r in res["real"]] == ["shapes"] and res["real"][0]["false_positives"] == 0.0


def test_alignment_can_judge_watermarked_clips():
    """gan-video-alignment --watermark judges the clips as written: the marked uint8 frames."""
    import torch

    from gan_video.data.io import to_uint8
    from gan_video.metrics.alignment import _watermarked
    from gan_video.watermark import detect_watermark

    torch.manual_seed(0)
    video = torch.rand(2, 3, 8, 64, 64) * 1.6 - 0.8
    marked = _watermarked(video, "3f2a9c0d41b7")
    assert marked.shape == video.shape and marked.dtype == torch.float32
    assert 0 < (marked - video).abs().max() < 6 / 127.5          # a few levels at most
    for clip, plain in zip(to_uint8(marked), to_uint8(video)):
        assert detect_watermark(clip).detected and not detect_watermark(plain).detected
