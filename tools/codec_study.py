"""How should prepared clips be stored compressed inside LitData chunks: per-frame JPEG, per-frame
WebP, or H.264 with a short keyframe interval (GOP)?

    python tools/codec_study.py [--root /work/shared/data/weizmann] [--videos 12] [--frames 32]
        [--sizes 64 128 256] [--repeats 3] [--draws 4] [--json out.json]

Clips: the first ``--frames`` frames of ``--videos`` Weizmann strips (picked round-robin over the
class folders, videos shorter than ``--frames`` skipped), read with the project's own ``read_frames``
and fitted with ``fit_frames`` (the resize + centre crop training uses) to each of ``--sizes``.
Every codec setting encodes each fitted uint8 clip, and the script reports, per clip (mean over clips):

* ``bytes``: stored bytes of the clip (JPEG/WebP: the sum of the per-frame images; H.264: the whole
  in-memory MP4, container boxes included; ``box B`` is the part of it that is MP4 boxes, not coded
  frames), and ``ratio``: bytes / raw uint8 bytes (frames * S * S * 3);
* ``PSNR``: dB of the decoded RGB clip against the fitted uint8 clip, over all pixels of the clip;
* ``all ms``: time to decode all frames to uint8 RGB numpy arrays;
* ``3/16 ms``: time to get 3 random frames out of the first 16 (what the sparse-frame configs read):
  JPEG/WebP decode just those 3 images; H.264 opens the MP4 from bytes and, for each GOP holding a
  wanted frame, ``container.seek(pts, backward=True, any_frame=False)`` to the keyframe at or before
  it and decodes forward to the last wanted frame of that GOP (``frames dec`` = frames decoded on
  average). Keyframes sit exactly every ``g`` frames (keyint = min-keyint = g, scenecut off, no
  B-frames), so frame k costs decoding from (k // g) * g.

Times are the best of ``--repeats`` runs per clip (per random draw for 3/16; ``--draws`` draws of 3
frames per clip, the same draws for every codec), averaged over clips, on one thread: torch, PyAV's
codec contexts and libx264 are all set to one thread; Pillow decodes on one thread anyway. Decode to
RGB is included (H.264 pays the YUV -> RGB conversion through one shared swscale context, about
half of its decode time at these sizes; JPEG/WebP pay their own).

The project's targets are checked at 128 px: bytes <= 1/10 of raw uint8 and PSNR >= 38 dB
(``tgt`` column: ``ok``, or which target is missed). Note that the Weizmann frames are 64 px
natively, so 128 and 256 px clips are upsampled and smoother than native footage of that size:
their bytes and PSNR are optimistic for real high-resolution data.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Callable

import av
from av.video.reformatter import VideoReformatter
import numpy as np
import torch
from PIL import Image

TARGET_SIZE, TARGET_RATIO, TARGET_PSNR = 128, 0.10, 38.0


# ----------------------------------------------------------------------------- codecs

@dataclass
class Setting:
    name: str
    encode: Callable[[np.ndarray], object]              # uint8 [T, S, S, 3] -> payload
    size_of: Callable[[object], int]                    # stored bytes of a payload
    decode_all: Callable[[object], np.ndarray]          # payload -> uint8 [T, S, S, 3]
    decode_some: Callable[[object, list], tuple]        # payload, sorted indices -> (frames, n decoded)
    boxes: Callable[[object], int] = lambda p: 0        # container bytes that are not coded frames
    params: dict = field(default_factory=dict)


def image_setting(name: str, fmt: str, **save_kw) -> Setting:
    def encode(clip):
        out = []
        for f in clip:
            buf = io.BytesIO()
            Image.fromarray(f).save(buf, fmt, **save_kw)
            out.append(buf.getvalue())
        return out

    def dec(b):
        with Image.open(io.BytesIO(b)) as im:
            return np.asarray(im.convert("RGB"))

    return Setting(name, encode, lambda p: sum(map(len, p)),
                   lambda p: np.stack([dec(b) for b in p]),
                   lambda p, idx: (np.stack([dec(p[i]) for i in idx]), len(idx)),
                   params={"format": fmt, **save_kw})


@dataclass
class Mp4:
    data: bytes
    pts: list          # pts of frame k (stream time base), recorded at preparation time
    coded: int         # bytes of the coded frames (sum of packet sizes)


_RGB = VideoReformatter()  # one shared converter: a new one per frame (frame.to_ndarray(format=...)) re-inits swscale


def _rgb(frame) -> np.ndarray:
    return _RGB.reformat(frame, format="rgb24").to_ndarray()


def _open(data: bytes):
    c = av.open(io.BytesIO(data), "r")
    st = c.streams.video[0]
    st.codec_context.thread_count = 1
    return c, st


def h264_setting(crf: int, g: int, pix_fmt: str = "yuv420p") -> Setting:
    name = f"h264 {pix_fmt[3:]} crf{crf} g{g}"

    def encode(clip):
        buf = io.BytesIO()
        coded = 0
        with av.open(buf, "w", format="mp4") as c:
            st = c.add_stream("libx264", rate=25)
            st.width, st.height = clip.shape[2], clip.shape[1]
            st.pix_fmt = pix_fmt
            st.codec_context.thread_count = 1
            st.options = {"crf": str(crf), "preset": "medium", "g": str(g), "bf": "0",
                          "x264-params": f"keyint={g}:min-keyint={g}:scenecut=0:threads=1"}
            for f in clip:
                for pkt in st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    coded += pkt.size
                    c.mux(pkt)
            for pkt in st.encode():
                coded += pkt.size
                c.mux(pkt)
        data = buf.getvalue()
        c, st = _open(data)
        with c:
            frames = list(c.decode(st))
            pts = [f.pts for f in frames]
            keys = [i for i, f in enumerate(frames) if f.key_frame]
        assert keys == list(range(0, len(clip), g)), f"{name}: keyframes at {keys}"
        return Mp4(data, pts, coded)

    def decode_all(p: Mp4):
        c, st = _open(p.data)
        with c:
            return np.stack([_rgb(f) for f in c.decode(st)])

    def decode_some(p: Mp4, idx):
        c, st = _open(p.data)
        out, n = {}, 0
        with c:
            groups: dict = {}
            for k in idx:
                groups.setdefault(k // g, []).append(k)
            for ks in groups.values():
                want = {p.pts[k]: k for k in ks}
                last = p.pts[ks[-1]]
                c.seek(p.pts[ks[0]], stream=st, backward=True, any_frame=False)
                for f in c.decode(st):
                    n += 1
                    if f.pts in want:
                        out[want[f.pts]] = _rgb(f)
                    if f.pts >= last:
                        break
        return np.stack([out[k] for k in idx]), n

    return Setting(name, encode, lambda p: len(p.data), decode_all, decode_some,
                   boxes=lambda p: len(p.data) - p.coded,
                   params={"codec": "libx264", "container": "mp4", "pix_fmt": pix_fmt, "crf": crf,
                           "g": g, "bf": 0, "preset": "medium", "scenecut": 0})


def raw_setting() -> Setting:
    return Setting("raw uint8", lambda clip: clip.tobytes(), len,
                   lambda p: np.frombuffer(p, np.uint8).copy(), None, params={})


def settings(yuv444: bool) -> list[Setting]:
    s = [raw_setting(),
         image_setting("jpeg q90", "JPEG", quality=90),
         image_setting("jpeg q95", "JPEG", quality=95),
         image_setting("jpeg q90 444", "JPEG", quality=90, subsampling=0),
         image_setting("jpeg q95 444", "JPEG", quality=95, subsampling=0),
         image_setting("webp q90", "WEBP", quality=90, lossless=False, method=4)]
    s += [h264_setting(crf, g) for crf in (18, 23) for g in (8, 16)]
    if yuv444:
        s += [h264_setting(18, g, "yuv444p") for g in (8, 16)]
    return s


def libx264_has_yuv444() -> bool:
    try:
        return "yuv444p" in {f.name for f in av.codec.Codec("libx264", "w").video_formats}
    except Exception:
        return False


# ----------------------------------------------------------------------------- measuring

def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def load_clips(root: str, videos: int, frames: int) -> tuple[list[np.ndarray], list[str]]:
    """The first ``frames`` frames (uint8, native size) of ``videos`` strips, round-robin over classes."""
    from gan_video.data.video import list_videos, read_frames

    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    _, entries, _ = list_videos("strips", root, None, {c: c for c in classes}, None, None,
                                min_frames=frames, cache=False, progress=False)
    by_class: dict = {}
    for e in entries:
        by_class.setdefault(e.label, []).append(e)
    picked, i = [], 0
    while len(picked) < videos and any(i < len(v) for v in by_class.values()):
        picked += [v[i] for v in by_class.values() if i < len(v)]
        i += 1
    return [read_frames(e, range(frames)) for e in picked[:videos]], [e.path for e in picked[:videos]]


def measure(setting: Setting, clips: list[np.ndarray], draws: list[list[list[int]]], repeats: int) -> dict:
    size, ps, t_all, t_some, n_dec, boxes = [], [], [], [], [], []
    for clip, clip_draws in zip(clips, draws):
        p = setting.encode(clip)
        size.append(setting.size_of(p))
        boxes.append(setting.boxes(p))
        dec = setting.decode_all(p).reshape(clip.shape)
        ps.append(psnr(dec, clip))
        t_all.append(best_time(lambda: setting.decode_all(p), repeats))
        if setting.decode_some is not None:
            ts, ns = [], []
            for idx in clip_draws:
                got, n = setting.decode_some(p, idx)
                assert np.array_equal(got, dec[idx]), f"{setting.name}: random access != full decode"
                ts.append(best_time(lambda: setting.decode_some(p, idx), repeats))
                ns.append(n)
            t_some.append(np.mean(ts))
            n_dec.append(np.mean(ns))
    raw = clips[0].size
    out = {"bytes": float(np.mean(size)), "ratio": float(np.mean(size)) / raw, "psnr": float(np.mean(ps)) if np.isfinite(np.mean(ps)) else None,
           "psnr_min": float(np.min(ps)) if np.isfinite(np.min(ps)) else None, "all_ms": 1e3 * float(np.mean(t_all)),
           "some_ms": 1e3 * float(np.mean(t_some)) if t_some else None,
           "frames_decoded": float(np.mean(n_dec)) if n_dec else None, "box_bytes": float(np.mean(boxes))}
    return out


def verdict(r: dict) -> str:
    miss = []
    if r["ratio"] > TARGET_RATIO:
        miss.append("bytes")
    if r["psnr"] is not None and r["psnr"] < TARGET_PSNR:
        miss.append("psnr")
    return "ok" if not miss else "no:" + "+".join(miss)


def row(size: int, name: str, r: dict, tgt: str) -> str:
    f = lambda v, fmt, none="-": none if v is None else format(v, fmt)
    return (f"{size:>4} {name:<22} {r['bytes']:>9.0f} {r['ratio']:>7.4f} {f(r['psnr'], '.2f', 'inf'):>8} "
            f"{f(r['psnr_min'], '.2f', 'inf'):>6} {r['all_ms']:>8.3f} {f(r['some_ms'], '.3f'):>8} "
            f"{f(r['frames_decoded'], '.2f'):>10} {r['box_bytes']:>6.0f} {tgt:>10}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="/work/shared/data/weizmann")
    ap.add_argument("--videos", type=int, default=12)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--repeats", type=int, default=3, help="timing: best of this many runs")
    ap.add_argument("--draws", type=int, default=4, help="random 3-of-16 draws per clip")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    from gan_video.data.video import fit_frames

    frames, paths = load_clips(args.root, args.videos, args.frames)
    rng = np.random.default_rng(args.seed)
    window = min(16, args.frames)
    draws = [[sorted(rng.choice(window, 3, replace=False).tolist()) for _ in range(args.draws)] for _ in frames]
    yuv444 = libx264_has_yuv444()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"# {len(frames)} clips x {args.frames} frames from {args.root}; CPU {cpu}; 1 thread; "
          f"PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info if hasattr(av, 'ffmpeg_version_info') else '?'}), "
          f"Pillow {Image.__version__}; timing best of {args.repeats}; {args.draws} draws of 3/{window} per clip; "
          f"libx264 yuv444p: {'yes' if yuv444 else 'no'}")
    print(f"# targets at {TARGET_SIZE} px: bytes <= {TARGET_RATIO:g} x raw, PSNR >= {TARGET_PSNR:g} dB")
    head = (f"{'size':>4} {'setting':<22} {'bytes':>9} {'ratio':>7} {'PSNR dB':>8} {'min':>6} "
            f"{'all ms':>8} {'3/16 ms':>8} {'frames dec':>10} {'box B':>6} {'tgt':>10}")
    results = []
    for size in args.sizes:
        clips = [fit_frames(f, size).numpy() for f in frames]
        print(head)
        for s in settings(yuv444):
            r = measure(s, clips, draws, args.repeats)
            r.update(size=size, setting=s.name, params=s.params,
                     meets_targets=(verdict(r) == "ok") if size == TARGET_SIZE else None)
            results.append(r)
            print(row(size, s.name, r, verdict(r) if size == TARGET_SIZE and s.decode_some else ""), flush=True)
        print()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"cpu": cpu, "clips": paths, "frames": args.frames, "draws": draws,
                       "repeats": args.repeats, "pyav": av.__version__, "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
