"""Real video data: readers, clip sampling, bad inputs, shards, the datamodule, a few training steps
on every dataset kind. Videos are real H.264 mp4s written with PyAV; frame k of every test video has
brightness BASE + STEP * k (plus a brighter left half), so a clip's frame indices can be read back."""
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from conftest import TINY, tiny_trainer
from gan_video.data import VideoDataModule
from gan_video.data.io import write_mp4
from gan_video.data.prepare import prepare_dataset
from gan_video.data.video import (EpochIndexSampler, RealClips, VideoClips, caption_variants,
                                  check_templates, class_caption, fit_frames, list_videos, read_frames,
                                  shard_entries)

REPO = Path(__file__).resolve().parents[1]
WEIZMANN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "weizmann"
BASE, STEP, LEFT = 12, 9, 20


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def ramp(n, h=48, w=64):
    """uint8 [n, h, w, 3]: brightness encodes the frame index, the left half is brighter."""
    f = np.empty((n, h, w, 3), np.uint8)
    for k in range(n):
        f[k] = BASE + STEP * k
        f[k, :, : w // 2] += LEFT
    return f


def indices(video):
    """Frame indices of a clip (float [3,T,H,W] in [-1,1] or uint8 [T,H,W,3]) from its brightness."""
    v = video.float().permute(1, 2, 3, 0) if video.dtype != torch.uint8 else video.float()
    v = (v + 1) * 127.5 if video.dtype != torch.uint8 else v
    return [round((float(m) - BASE - LEFT / 2) / STEP) for m in v.mean(dim=(1, 2, 3))]


def left_brighter(video):
    return bool(video[:, :, :, : video.shape[-1] // 2].mean() > video[:, :, :, video.shape[-1] // 2:].mean())


def mp4(path, n=24, h=48, w=64, faststart=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    if faststart:
        import av

        with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
            s = c.add_stream("libx264", rate=8)
            s.width, s.height, s.pix_fmt, s.options = w, h, "yuv420p", {"crf": "18", "g": "4"}
            for f in ramp(n, h, w):
                for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
    else:
        write_mp4(path, ramp(n, h, w), fps=8)
    return path


def strip(path, n=20, size=32):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(list(ramp(n, size, size)), axis=1)).save(path, quality=98)


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """One folder of each layout, with bad inputs in the class folders and the caption file."""
    root = tmp_path_factory.mktemp("videos")
    cls = root / "classes"
    for name in ("a", "b", "c"):
        mp4(cls / "playing_golf" / f"{name}.mp4")
    for name in ("d", "e"):
        mp4(cls / "Swimming" / f"{name}.mp4", h=64, w=48)
    (cls / "playing_golf" / "zero.mp4").write_bytes(b"")
    good = (cls / "playing_golf" / "a.mp4").read_bytes()
    (cls / "playing_golf" / "trunc.mp4").write_bytes(good[: len(good) // 2])
    (cls / "Swimming" / "junk.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    (cls / "Swimming" / "codec.mp4").write_bytes(good.replace(b"avc1", b"zzzz"))
    (cls / "Swimming" / "notes.txt").write_text("not a video, ignored")
    mp4(cls / "Swimming" / "short.mp4", n=4)
    (cls / "empty_class").mkdir()

    cap = root / "captions"
    for name in ("v1", "v2", "v3", "v4", "v5", "v6"):
        mp4(cap / "clips" / f"{name}.mp4")
    rows = [b"path,caption,start,end", b"clips/v1.mp4,a cat jumping,,", b"clips/v1.mp4,a cat leaps,,",
            b"clips/v2.mp4,a dog running,1.0,2.5", b"clips/missing.mp4,nothing here,,",
            b"clips/v3.mp4,,,", b"clips/v4.mp4,caf\xe9 \xff bad,,", b"clips/v5.mp4,a bird flying,2,1",
            b"clips/v5.mp4,a bird flying,,", b"clips/v6.mp4,a horse trotting,,"]
    (cap / "captions.csv").write_bytes(b"\n".join(rows) + b"\n")

    frames = root / "frames"
    for v in ("walking_dog", "running_man", "jumping_cat", "rowing_boat"):
        for k, f in enumerate(ramp(14)):
            (frames / v).mkdir(parents=True, exist_ok=True)
            Image.fromarray(f).save(frames / v / f"f{k + 1}.png")  # unpadded: natural sort needed
    (frames / "empty_video").mkdir()
    (frames / "empty_video" / "readme.txt").write_text("no frames")

    strips = root / "strips"
    for c in ("0", "1"):
        for k in range(2):
            strip(strips / c / f"{k}.jpg")
    (root / "strip_captions.json").write_text(json.dumps({"0": "a person waving", "1": ["a person jumping",
                                                                                      "someone jumps"]}))
    return root


def dm(root, **kw):
    args = dict(root=str(root) if root else None, resolution=32, frames=8, batch_size=4, num_workers=0, verbose=False)
    args.update(kw)
    return VideoDataModule(**args)


# -------------------------------------------------------------------------------- layouts and skips
def test_class_folders_skip_bad_files_and_report_once(trees, capsys):
    d = dm(trees / "classes", verbose=True)
    d.setup("fit")
    fmt, entries, skips = d.index()
    assert fmt == "classes" and len(entries) == 5
    assert dict(skips.counts) == {"zero-byte": 1, "truncated": 1, "corrupt": 1, "unreadable codec": 1,
                                  "too short (<8 frames)": 1, "empty class folder": 1}
    out = capsys.readouterr().out
    assert out.count("video data: 5 usable, skipped 6:") == 1 and "corrupt (Swimming/junk.mp4)" in out
    assert {e.captions for e in entries} == {("playing golf",), ("swimming",)}
    d.setup("validate")  # the scan runs once per datamodule
    assert "video data" not in capsys.readouterr().out


def test_clip_shape_range_order_and_stride(trees):
    _, entries, _ = list_videos(root=str(trees / "classes"), min_frames=13)
    ds = VideoClips(entries, resolution=32, frames=5, stride=3, train=True, seed=1)
    for i in range(6):
        item = ds[i]
        v = item["video"]
        assert v.shape == (3, 5, 32, 32) and v.dtype == torch.float32
        assert -1 <= float(v.min()) and float(v.max()) <= 1
        assert indices(v) == [item["start"] + 3 * k for k in range(5)], "frames out of order or wrong stride"
        assert 0 <= item["start"] <= 24 - 13
    portrait = [e for e in entries if e.label == "Swimming"][0]
    assert fit_frames(read_frames(portrait, [0]), 32).shape == (1, 32, 32, 3)


def test_seeking_decodes_the_same_frames_as_a_full_decode(tmp_path):
    import av

    from gan_video.data.io import read_video
    from gan_video.data.video import decode_video

    frames = np.random.default_rng(0).integers(0, 256, (60, 32, 48, 3), dtype=np.uint8)
    for gop in ("250", "5"):  # one keyframe, or one every 5 frames
        path = tmp_path / f"g{gop}.mp4"
        with av.open(str(path), "w") as c:
            s = c.add_stream("libx264", rate=30)
            s.width, s.height, s.pix_fmt, s.options = 48, 32, "yuv420p", {"crf": "10", "g": gop}
            for f in frames:
                for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        full = read_video(path)
        for idx in ([0, 1, 2], [13, 15, 17], [40, 50, 59]):
            assert np.array_equal(decode_video(str(path), idx, 30.0), full[idx]), (gop, idx)
        # a frame count from metadata that was too high: the window moves back to the last frames
        assert np.array_equal(decode_video(str(path), [58, 59, 60, 61], 30.0), full[56:60])


def test_sampling_is_a_function_of_seed_and_index(trees):
    _, entries, _ = list_videos(root=str(trees / "classes"), min_frames=8)
    a = VideoClips(entries, 32, 8, train=True, hflip=True, seed=5)
    b = VideoClips(entries, 32, 8, train=True, hflip=True, seed=5)
    for i in (0, 3, 17):
        x, y = a[i], b[i]
        assert torch.equal(x["video"], y["video"]) and x["caption"] == y["caption"] and x["start"] == y["start"]
    n = len(a)
    # the same video in later epochs: other starts / flips
    assert len({(a.params(i + e * n)["start"], a.params(i + e * n)["flip"]) for i in range(n) for e in range(4)}) > n
    assert {left_brighter(a[i]["video"]) for i in range(12)} == {True, False}  # hflip flips some clips
    plain = VideoClips(entries, 32, 8, train=True, hflip=False, seed=5)
    assert all(left_brighter(plain[i]["video"]) for i in range(8))
    ev = VideoClips(entries, 32, 8, train=False)
    assert torch.equal(ev[1]["video"], ev[1 + n]["video"]) and ev[1]["start"] == (24 - 8) // 2


def test_epoch_index_sampler_and_resume(trees):
    s = EpochIndexSampler(5, seed=0)
    s.set_epoch(2)
    assert sorted(s) == list(range(10, 15))
    d = dm(trees / "classes", batch_size=2)
    d.setup("fit")
    first = [b["start"].tolist() + b["index"].tolist() for b in d.train_dataloader()]
    d.load_state_dict({"epoch": 0, "batches": 1})
    resumed = [b["start"].tolist() + b["index"].tolist() for b in d.train_dataloader()]
    assert resumed == first[1:]
    longer = dm(trees / "classes", batch_size=2, clips_per_epoch=10)
    longer.setup("fit")
    batches = list(longer.train_dataloader())
    assert len(batches) == 5 and sorted(sum((b["index"].tolist() for b in batches), [])) == sorted(list(range(5)) * 2)


def test_caption_file_rows_segments_and_skips(trees):
    fmt, entries, skips = list_videos(caption_file=str(trees / "captions" / "captions.csv"), min_frames=8)
    assert fmt == "captions"
    assert dict(skips.counts) == {"missing file": 1, "empty caption": 1, "non-UTF-8 caption": 1,
                                  "bad start/end": 1}
    by = {Path(e.path).stem: e for e in entries}
    assert set(by) == {"v1", "v2", "v5", "v6"}
    assert by["v1"].captions == ("a cat jumping", "a cat leaps")
    assert (by["v2"].first, by["v2"].frames) == (8, 12)  # 1.0 s to 2.5 s at 8 fps
    clip = VideoClips([by["v2"]], 32, 8, train=False)[0]
    assert indices(clip["video"]) == list(range(10, 18))  # middle of frames 8..19
    assert {VideoClips(entries, 32, 8, seed=s)[0]["caption"] for s in range(12)} == {"a cat jumping", "a cat leaps"}
    jsonl = trees / "captions" / "captions.jsonl"
    jsonl.write_bytes(b'{"path": "clips/v6.mp4", "caption": "a horse trotting", "start": 0.5}\n'
                      b'{"path": "clips/v1.mp4", "caption": "  "}\nnot json\n')
    fmt, entries, skips = list_videos(caption_file=str(jsonl), min_frames=8)
    assert [e.captions for e in entries] == [("a horse trotting",)] and entries[0].first == 4
    assert dict(skips.counts) == {"empty caption": 1, "bad caption-file row": 1}


def test_frame_folders_strips_and_templates(trees):
    fmt, entries, skips = list_videos(root=str(trees / "frames"), min_frames=8)
    assert fmt == "frames" and len(entries) == 4 and dict(skips.counts) == {"no frames": 1}
    assert {e.captions[0] for e in entries} == {"walking dog", "running man", "jumping cat", "rowing boat"}
    item = VideoClips(entries, 32, 6, stride=2, seed=3)[0]
    assert indices(item["video"]) == [item["start"] + 2 * k for k in range(6)]  # f10.png after f9.png

    caps = str(trees / "strip_captions.json")
    fmt, entries, _ = list_videos(root=str(trees / "strips"), class_captions=caps,
                                  templates=["a video of {}", "{}"], min_frames=8)
    assert fmt == "strips" and len(entries) == 4 and entries[0].frames == 20
    assert entries[-1].captions == ("a video of a person jumping", "a person jumping",
                                    "a video of someone jumps", "someone jumps")
    item = VideoClips(entries, 32, 8, seed=0)[0]
    assert indices(item["video"]) == list(range(item["start"], item["start"] + 8))
    with pytest.raises(ValueError, match="class without caption.*class_captions"):
        list_videos(root=str(trees / "strips"), min_frames=8)  # folders "0", "1" have no words

    assert class_caption("playing_golf") == "playing golf" and class_caption("ApplyEyeMakeup") == "apply eye makeup"
    assert class_caption("0") is None
    assert caption_variants("biking_in_snow", {}, ("a video of {}", "a person {}")) == (
        "a video of biking in snow", "a person biking in snow")
    with pytest.raises(ValueError, match="exactly once"):
        check_templates(["a video of"])


def test_nothing_usable_is_one_clear_error(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "zero.mp4").write_bytes(b"")
    (tmp_path / "x" / "junk.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match=r"no usable videos .* skipped 2: .*re-encode") as err:
        dm(tmp_path, format="classes").setup("fit")
    assert "1 zero-byte (x/zero.mp4)" in str(err.value) and "1 corrupt (x/junk.mp4)" in str(err.value)
    mp4(tmp_path / "y" / "short.mp4", n=6)
    with pytest.raises(ValueError, match="too short.*lower data.frames"):
        list_videos(root=str(tmp_path), classes=["y"], min_frames=8)
    with pytest.raises(ValueError, match="classes \\['nope'\\] have no folder"):
        list_videos(root=str(tmp_path), classes=["nope"])
    with pytest.raises(FileNotFoundError, match="not a folder"):
        dm(tmp_path / "absent").setup("fit")


def test_mid_epoch_decode_failure_warns_once_and_substitutes(tmp_path):
    for name in ("a", "b", "c"):
        mp4(tmp_path / "k" / f"{name}.mp4")
    bad = mp4(tmp_path / "k" / "bad.mp4", faststart=True)  # metadata first: the scan cannot tell
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) * 9 // 10])  # the first ~10 frames still decode
    _, entries, skips = list_videos(root=str(tmp_path), min_frames=8)
    assert len(entries) == 4 and not skips.total
    ds = VideoClips(entries, 32, 8, train=False)
    i = [Path(e.path).name for e in entries].index("bad.mp4")
    with pytest.warns(RuntimeWarning, match="bad.mp4"):
        item = ds[i]
    assert item["index"] != i and item["video"].shape == (3, 8, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = ds[i]  # reported once per file; the same substitute
    assert again["index"] == item["index"] and ds.failures[bad.as_posix()] == 2


def test_scan_cache_avoids_probing_again(trees, monkeypatch):
    import gan_video.data.video.probing as probing

    first = list_videos(root=str(trees / "classes"), min_frames=8)
    monkeypatch.setattr(probing, "probe_video", lambda path: (_ for _ in ()).throw(AssertionError(path)))
    second = list_videos(root=str(trees / "classes"), min_frames=8)
    assert [e.frames for e in first[1]] == [e.frames for e in second[1]]
    assert first[2].counts == second[2].counts


# -------------------------------------------------------------------------------- prepared (LitData)
def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def test_prepared_dataset_gives_the_clips_of_the_videos(trees, tmp_path):
    """Frames fitted as training fits them, stored as JPEG in LitData chunks: the same clips as the
    decoded videos up to the compression (PSNR >= 38 dB), the same captions, order and frame counts;
    a bad file is skipped and counted, the side file written last names every video."""
    from gan_video.data.streaming import load_info

    res = prepare_dataset(str(tmp_path / "p"), str(trees / "classes"), size=32, min_frames=8, progress=False)
    assert res["videos"] == 5 and res["skipped"]["zero-byte"] == 1 and res["bytes"] < res["raw_bytes"]
    info = load_info(str(tmp_path / "p"))
    assert info["videos"][0]["source"] == "playing_golf/a.mp4" and info["videos"][0]["captions"] == ["playing golf"]
    _, videos, _ = list_videos(root=str(trees / "classes"), min_frames=8)
    fmt, prepared, _ = list_videos(root=str(tmp_path / "p"), min_frames=8)
    assert fmt == "litdata" and [e.frames for e in prepared] == [e.frames for e in videos]
    for e, s in zip(videos, prepared):
        decoded = fit_frames(read_frames(e, range(e.frames)), 32).numpy()
        got = read_frames(s, range(s.frames))
        assert got.shape == decoded.shape and psnr(got, decoded) >= 38, psnr(got, decoded)
        assert np.array_equal(read_frames(s, [3, 1]), got[[3, 1]])         # any frames, in any order
    a, b = VideoClips(videos, 32, 8, stride=2, train=False), VideoClips(prepared, 32, 8, stride=2, train=False)
    for i in range(5):
        assert a[i]["caption"] == b[i]["caption"] and a[i]["start"] == b[i]["start"]
        assert (a[i]["video"] - b[i]["video"]).abs().mean() < 0.02
    with pytest.raises(ValueError, match="--size 64"):
        dm(tmp_path / "p", resolution=64).setup("fit")
    with pytest.raises(FileExistsError, match="--overwrite"):
        prepare_dataset(str(tmp_path / "p"), str(trees / "classes"), size=32, progress=False)


def test_old_shards_are_refused_by_name_and_convert(trees, tmp_path):
    """A folder of the .npy shards training used to read: one error naming the conversion command;
    that command (--format shards) turns it into a prepared dataset with the same frames."""
    t, y, x = np.meshgrid(np.arange(12), np.arange(16), np.arange(16), indexing="ij")
    frames = np.stack([(x * 12 + t * 5) % 256, (y * 14) % 256, (x + y) * 7 + t], -1).astype(np.uint8)   # smooth
    old = tmp_path / "old"
    old.mkdir()
    np.save(old / "shard_00000.npy", frames)
    (old / "index.json").write_text(json.dumps({
        "format": "gan_video-shards", "version": 1, "size": 16, "shards": [{"file": "shard_00000.npy", "frames": 12}],
        "videos": [{"shard": 0, "offset": 0, "length": 7, "captions": ["a"], "source": "a.mp4"},
                   {"shard": 0, "offset": 7, "length": 5, "captions": ["b"], "source": "b.mp4"}]}))
    with pytest.raises(ValueError, match=r"gan-video-prepare --format shards --root .*old --out .*old_litdata"):
        dm(old, resolution=16, frames=4).setup("fit")
    res = prepare_dataset(str(tmp_path / "new"), str(old), size=16, format="shards", progress=False, quality=100)
    assert res["videos"] == 2 and res["frames"] == 12
    _, entries, _ = list_videos(root=str(tmp_path / "new"))
    assert [e.captions for e in entries] == [("a",), ("b",)]
    got = np.concatenate([read_frames(e, range(e.frames)) for e in entries])
    assert got.shape == frames.shape and psnr(got, frames) > 38, psnr(got, frames)


def test_prepare_dataset_cli(trees, tmp_path):
    from gan_video.tools.prepare_dataset import main

    main(["--root", str(trees / "strips"), "--out", str(tmp_path / "o"), "--size", "32",
          "--class-captions", str(trees / "strip_captions.json"), "--workers", "2", "--json", str(tmp_path / "r.json")])
    assert json.loads((tmp_path / "r.json").read_text())["frames"] == 4 * 20
    with pytest.raises(SystemExit):
        main(["--root", str(trees / "strips"), "--out", str(tmp_path / "o"), "--size", "32"])


# ----------------------------------------------------------------------------------- datamodule API
def test_real_clips_all_captions_and_dataset_id(trees):
    d = dm(trees / "classes", frames=8, templates=["{}", "a video of {}"])
    clips = d.real_clips(frames=6, count=11, seed=2)
    assert len(clips) == 11
    n = len(d.entries)
    for j in (0, 4, 10):
        item = clips[j]
        assert item["video"].dtype == torch.uint8 and item["video"].shape == (6, 32, 32, 3)
        s = clips.start(j)
        assert indices(item["video"]) == list(range(s, s + 6))  # consecutive, fixed start
    assert clips.start(0) < clips.start(n) < clips.start(2 * n)  # repeated videos: other parts
    strided = d.real_clips(frames=6, count=11, seed=2, stride=2)  # like training clips at stride 2
    for j in (0, 4, 10):
        s = strided.start(j)
        assert indices(strided[j]["video"]) == list(range(s, s + 11, 2))
    assert torch.equal(clips[3]["video"], d.real_clips(6, 11, seed=2)[3]["video"])
    assert d.all_captions() == ["a video of playing golf", "a video of swimming", "playing golf", "swimming"]
    assert d.validation_prompts() == ["playing golf", "swimming"]
    d.setup("validate")
    assert d.val_set[1] == {"caption": "swimming", "seed": 1001} and len(d.val_set) == 2
    ident = d.dataset_id()
    assert ident.startswith("classes-classes-32px-") and ident == dm(trees / "classes").dataset_id()
    assert dm(trees / "classes", resolution=64).dataset_id() != ident
    with pytest.raises(ValueError, match="no video has 99 frames"):
        RealClips(d.entries, 32, 99, 4)


def test_shapes_datamodule_has_the_same_methods():
    from conftest import tiny_data

    d = tiny_data()
    caps = d.all_captions()
    assert "a red circle moving left" in caps and "a red triangle moving up" in caps and len(caps) > 1000
    clips = d.real_clips(frames=4, count=3)
    item = clips[0]
    assert item["video"].dtype == torch.uint8 and item["video"].shape == (4, 64, 64, 3)
    assert item["caption"].split()[1] != "red" or "triangle" not in item["caption"]
    assert d.dataset_id() == "shapes-64px-8f-holdout-blue-circle_green-square_red-triangle"


@pytest.mark.skipif(not WEIZMANN.is_dir(), reason=f"Weizmann strips not found at {WEIZMANN}")
def test_weizmann_strips():
    d = VideoDataModule(root=str(WEIZMANN), class_captions="data/captions/weizmann.json", resolution=64,
                        frames=16, batch_size=8, num_workers=0, verbose=False)
    d.setup("fit")
    assert d.index()[0] == "strips" and len(d.entries) == 72
    assert d.validation_prompts() == ["a person waving one hand", "a person waving both hands",
                                      "a person doing jumping jacks", "a person bending over"]
    batch = next(iter(d.train_dataloader()))
    assert batch["video"].shape == (8, 3, 16, 64, 64) and float(batch["video"].std()) > 0.05
    assert min(e.frames for e in d.entries) >= 51 and d.real_clips(16, 2)[1]["video"].shape == (16, 64, 64, 3)


# ------------------------------------------------------------------------------------ configs, training
def test_video_configs_are_valid():
    import inspect

    params = set(inspect.signature(VideoDataModule).parameters)
    for name in ("kinetics10_t2v_64", "ucf101", "captions_example", "weizmann"):
        cfg = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
        assert cfg["data"]["class_path"] == "gan_video.data.VideoDataModule"
        assert set(cfg["data"]["init_args"]) <= params, name
    res = subprocess.run([sys.executable, "-m", "gan_video.cli", "fit", "--config", "configs/weizmann.yaml",
                          "--print_config"], capture_output=True, text=True, cwd=str(REPO))
    assert res.returncode == 0, res.stderr
    cfg = yaml.safe_load(res.stdout)
    assert cfg["data"]["init_args"]["frames"] == 16 and cfg["data"]["init_args"]["resolution"] == 64


@pytest.mark.parametrize("kind", ["captions", "classes", "frames", "strips", "litdata"])
def test_training_steps_on_each_kind(trees, tmp_path, kind):
    import pytorch_lightning as pl

    from gan_video.module import TextToVideoGAN

    args = {"captions": dict(root=None, caption_file=str(trees / "captions" / "captions.csv")),
            "classes": dict(root=str(trees / "classes"), num_workers=1, hflip=True),
            "frames": dict(root=str(trees / "frames")),
            "strips": dict(root=str(trees / "strips"), class_captions=str(trees / "strip_captions.json")),
            "litdata": dict(root=str(tmp_path / "p"))}[kind]
    if kind == "litdata":
        prepare_dataset(str(tmp_path / "p"), str(trees / "frames"), size=64, progress=False)
    pl.seed_everything(0)
    model = TextToVideoGAN(**TINY)
    before = [p.detach().clone() for p in model.G.parameters()]
    data = dm(args.pop("root"), resolution=64, frames=8, **args)
    tiny_trainer(tmp_path, max_steps=2).fit(model, datamodule=data)
    assert int(model.batches) == 1 and data.index()[0] == kind
    assert any(not torch.equal(a, b) for a, b in zip(before, model.G.parameters()))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_decode_failures_in_worker_processes_are_summed_once_per_epoch(tmp_path):
    """Two worker processes each meet a file that fails mid-run; the module counts the failures of
    both in the main process and says so once at the end of the epoch (and logs the count)."""
    import pytorch_lightning as pl

    from gan_video.module import TextToVideoGAN

    for name in ("a", "b", "c", "d", "e", "f"):
        mp4(tmp_path / "v" / "waving" / f"{name}.mp4")
    for name in ("bad1", "bad2"):                           # pass the scan, fail to decode a clip
        bad = mp4(tmp_path / "v" / "waving" / f"{name}.mp4", faststart=True)
        data = bad.read_bytes()
        bad.write_bytes(data[: len(data) * 9 // 10])     # the first ~10 of 24 frames still decode
    pl.seed_everything(0)
    model = TextToVideoGAN(**TINY)
    data = dm(tmp_path / "v", resolution=64, frames=8, num_workers=2, batch_size=2, stride=2)
    with pytest.warns(UserWarning, match=r"video data: \d+ clips from 2 files failed to decode this epoch") as rec:
        tiny_trainer(tmp_path, max_steps=8).fit(model, datamodule=data)    # 4 batches: one epoch of 8 videos
    summary = [str(w.message) for w in rec if "this epoch" in str(w.message)]
    assert len(summary) == 1 and "bad1.mp4" in summary[0] and "bad2.mp4" in summary[0]
    total = int(summary[0].split("video data: ")[1].split()[0])
    assert total >= 2                                   # each bad file at least once (a substitute may fail too)
    assert float(model.trainer.callback_metrics["data/decode_failures"]) == total
