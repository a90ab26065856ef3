"""Speed and memory of a config's training step and of sampling, or of data loading, on this machine.

    python tools/benchmark.py --config configs/shapes.yaml [--steps 20] [--device cpu|cuda]
        [--precision 32|bf16] [--threads N] [--json out.json]
    python tools/benchmark.py --data --videos DIR [--from-strips DIR | --synthetic N]
        [--prepared DIR] [--resolution 64] [--frames 16] [--stride 1] [--batch-size 16]
        [--batches 20] [--workers 0 2] [--json out.json]

Model mode builds the model and data module from the YAML exactly as `gan-video fit` would (same
classes, same arguments), runs a few warm-up batches, then times `--steps` full training batches (one
D step and one G step each, real data loading included) and the EMA generator's sampling throughput.

Data mode (`--data`) times training clips (and decoded frames) per second from the video files in
`--videos` (any layout VideoDataModule reads) against the same clips read from a prepared dataset
(`--prepared`, prepared from the videos by gan-video-prepare if it is not there yet), in the main
process (one core: `--workers 0`, one thread) and with each `--workers` count of DataLoader workers,
and the bytes per clip of each on disk against raw uint8. `--from-strips DIR` first encodes Weizmann-style frame strips to H.264
mp4 class folders in `--videos`; `--synthetic N` writes N synthetic H.264 videos there instead.

Model mode also counts FLOPs per clip (``torch.utils.flop_counter``: matmuls and convolutions) for a
training batch and for sampling, measures the device's peak with a large matmul (fp32; bf16 on a GPU
in a bf16 run) and reports MFU = counted FLOPs per second / that peak; ``--markdown FILE`` appends
the result as a table row (docs/benchmarks.md).

Prints a table and optionally JSON. Numbers are wall-clock on whatever machine runs it: report it,
with the machine reference figure printed first (fp32 matmul GFLOP/s at 2 threads).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build(config: str, overrides: list[str]):
    from pytorch_lightning import LightningDataModule

    from gan_video.cli import GanVideoCLI
    from gan_video.module import TextToVideoGAN

    cli = GanVideoCLI(TextToVideoGAN, LightningDataModule, subclass_mode_data=True, run=False,
                      args=["--config", config, *overrides, "--trainer.logger", "false",
                            "--trainer.enable_checkpointing", "false", "--trainer.callbacks", "[]"])
    return cli.model, cli.datamodule


def device_peak(device, dtype=None, n: int = 4096, repeats: int = 5) -> float:
    """The device's measured peak in GFLOP/s: an ``n x n`` matmul in ``dtype`` (float32 by default;
    bf16 on a GPU for bf16 runs) with every thread the run uses, the best of ``repeats``."""
    import torch

    dtype = dtype or torch.float32
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device, dtype)
    b = torch.randn(n, n, generator=gen).to(device, dtype)
    best = float("inf")
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:                                    # the first is a warm-up
            best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def counted_flops(fn) -> int:
    """FLOPs of running ``fn()`` once, counted by ``torch.utils.flop_counter`` (matmuls and
    convolutions, forward and backward; elementwise work is not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_reference(threads: int = 2, n: int = 1024, repeats: int = 7) -> float:
    """The machine reference figure: fp32 matmul GFLOP/s (``n x n`` by ``n x n``, ``threads`` torch
    threads, median of ``repeats`` timed runs after a warm-up). Timings from two machines compare
    after dividing by it (machines of one kind differ by up to 1.5x)."""
    import statistics

    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(0)
        a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
        for _ in range(2):
            a @ b
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t0)
        return 2 * n ** 3 / statistics.median(times) / 1e9
    finally:
        torch.set_num_threads(old)


# ---------------------------------------------------------------------------------------- data mode
def strips_to_mp4(strips: str, out: str, fps: int = 25) -> int:
    """Encode every ``<class>/<id>.jpg`` frame strip under ``strips`` as ``out/<class>/<id>.mp4``
    (H.264, yuv420p, the strip's square frames); returns the number of videos written."""
    import numpy as np
    from PIL import Image

    from gan_video.data.io import write_mp4

    n = 0
    for strip in sorted(Path(strips).glob("*/*.jpg")):
        img = np.asarray(Image.open(strip).convert("RGB"))
        h = img.shape[0]
        frames = np.stack([img[:, i * h:(i + 1) * h] for i in range(img.shape[1] // h)])
        dest = Path(out) / strip.parent.name / (strip.stem + ".mp4")
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_mp4(dest, frames, fps=fps, crf=20)
        n += 1
    if not n:
        raise FileNotFoundError(f"no <class>/*.jpg strips under {strips!r}")
    return n


def synthetic_videos(out: str, count: int, size: int = 256, frames: int = 120, fps: int = 25) -> int:
    """Write ``count`` synthetic H.264 videos, ``size`` high and 4/3 as wide, into 4 class folders
    of ``out``: a smooth random texture panning under moving discs (not trivially compressible)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from gan_video.data.io import write_mp4

    h, w = size, (size * 4 // 3) // 2 * 2
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for k in range(count):
        rng = np.random.default_rng(k)
        tex = F.interpolate(torch.from_numpy(rng.random((1, 3, 12, 16), dtype=np.float32)), size=(2 * h, 2 * w),
                            mode="bicubic", align_corners=False)[0].permute(1, 2, 0).numpy()
        colors = rng.random((3, 3), dtype=np.float32)
        clip = np.empty((frames, h, w, 3), np.uint8)
        for t in range(frames):
            oy, ox = int(t * h / frames), int(t * w / frames)
            f = tex[oy:oy + h, ox:ox + w].copy()
            for d in range(3):
                cy = h / 2 + h / 3 * np.sin(0.1 * t + 2 * d + k)
                cx = w / 2 + w / 3 * np.cos(0.07 * t + d)
                f[(yy - cy) ** 2 + (xx - cx) ** 2 < (h / 10) ** 2] = colors[d]
            clip[t] = np.clip(f * 255, 0, 255).astype(np.uint8)
        dest = Path(out) / f"class_{k % 4}" / f"video_{k:03d}.mp4"
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_mp4(dest, clip, fps=fps, crf=23)
    return count


def _endless(loader):
    """Batches of ``loader`` over as many epochs as asked for (persistent workers are reused)."""
    epoch = 0
    while True:
        loader.sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def prepared_psnr(videos, prepared, size: int, count: int = 8, frames: int = 32) -> float:
    """PSNR (dB) of a prepared dataset's frames against the same frames decoded from the videos and
    fitted as training fits them: the first ``frames`` of the first ``count`` videos."""
    import numpy as np

    from gan_video.data.video import fit_frames, read_frames

    by_source = {e.source: e for e in prepared}
    err, n = 0.0, 0
    for e in videos[:count]:
        p = next((q for s, q in by_source.items() if e.path.endswith(s)), None)
        if p is None:
            continue
        k = min(frames, e.frames, p.frames)
        a = fit_frames(read_frames(e, range(k)), size).numpy().astype(np.float64)
        b = read_frames(p, range(k)).astype(np.float64)
        err, n = err + ((a - b) ** 2).sum(), n + a.size
    return float(10 * np.log10(255.0 ** 2 / (err / n))) if n and err else float("inf")


def data_benchmark(args) -> dict:
    """Clips per second of VideoClips over video files vs a prepared dataset (see the module docstring)."""
    import tempfile

    import torch

    from gan_video.data import VideoDataModule
    from gan_video.data.prepare import prepare_dataset
    from gan_video.data.streaming import SIDE_FILE, load_info

    torch.set_num_threads(args.threads or 1)
    videos = Path(args.videos)
    if args.from_strips and not videos.exists():
        print(f"encoding {strips_to_mp4(args.from_strips, videos)} strips as H.264 mp4 in {videos}")
    if args.synthetic and not videos.exists():
        print(f"writing {synthetic_videos(videos, args.synthetic, args.video_size)} synthetic "
              f"{args.video_size}px H.264 videos in {videos}")
    prepared = Path(args.prepared or tempfile.mkdtemp(prefix="gan_video_prepared_"))
    common = dict(resolution=args.resolution, frames=args.frames, stride=args.stride,
                  batch_size=args.batch_size, seed=0, verbose=False, scan_cache=False,
                  class_captions=args.class_captions)
    span = (args.frames - 1) * args.stride + 1
    prep_s = None
    if not (prepared / SIDE_FILE).exists():
        t0 = time.perf_counter()
        prepare_dataset(str(prepared), str(videos), size=args.resolution, min_frames=span,
                        class_captions=args.class_captions, progress=False, workers=args.prepare_workers,
                        quality=args.quality)
        prep_s = time.perf_counter() - t0
    sources = {"videos": dict(root=str(videos)), "prepared": dict(root=str(prepared))}
    if args.sparse_frames:       # today's dense reading of the videos, against sparse reading of both
        sources = {"videos": dict(root=str(videos)), "prepared": dict(root=str(prepared)),
                   f"videos, sparse {args.sparse_frames}": dict(root=str(videos), sparse_frames=args.sparse_frames),
                   f"prepared, sparse {args.sparse_frames}": dict(root=str(prepared), sparse_frames=args.sparse_frames)}
    rows = []
    for workers in args.workers:
        for name, kw in sources.items():
            dm = VideoDataModule(**common, **kw, num_workers=workers)
            t0 = time.perf_counter()
            dm.setup("fit")
            setup_s = time.perf_counter() - t0
            loader = _endless(dm.train_dataloader())
            for _ in range(2):  # warm-up (worker start-up, page cache)
                next(loader)
            t0 = time.perf_counter()
            for _ in range(args.batches):
                next(loader)
            dt = time.perf_counter() - t0
            clips = args.batches * args.batch_size
            decoded = kw.get("sparse_frames") or args.frames          # frames decoded per clip
            rows.append({"source": name, "workers": workers, "clips_per_second": round(clips / dt, 1),
                         "frames_per_second": round(clips * decoded / dt, 1),
                         "ms_per_clip": round(1000 * dt / clips, 2), "setup_s": round(setup_s, 3),
                         "videos": len(dm.entries)})
            del loader
    info = load_info(str(prepared))
    frames_total = sum(v["frames"] for v in info["videos"])
    size = sum(f.stat().st_size for f in videos.rglob("*") if f.is_file() and f.suffix != ".json")
    prepared_size = sum(f.stat().st_size for f in prepared.glob("*.bin"))
    video_frames = sum(e.frames for e in VideoDataModule(**common, root=str(videos)).entries)
    psnr = prepared_psnr(VideoDataModule(**common, root=str(videos)).entries,
                         VideoDataModule(**common, root=str(prepared)).entries, args.resolution)
    per_clip = {"videos": size / video_frames * args.frames, "prepared": prepared_size / frames_total * args.frames,
                "raw uint8": args.frames * args.resolution ** 2 * 3}
    res = {"videos": str(videos), "video_bytes": size, "prepared": str(prepared), "prepared_bytes": prepared_size,
           "bytes_per_clip": {k: round(v) for k, v in per_clip.items()}, "prepared_psnr_db": round(psnr, 2),
           "prepare_seconds": None if prep_s is None else round(prep_s, 2),
           "clip": f"{args.frames}x{args.resolution}x{args.resolution}, stride {args.stride}",
           "batch_size": args.batch_size, "batches": args.batches,
           "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores", "rows": rows}
    print(f"{res['clip']}, batch {args.batch_size}, {args.batches} timed batches; {rows[0]['videos']} "
          f"videos, {size / 2**20:.1f} MiB of video vs {prepared_size / 2**20:.1f} MiB prepared"
          + (f" (prepared in {prep_s:.1f} s)" if prep_s else ""))
    print("bytes per clip: " + ", ".join(f"{k} {v / 1024:.1f} KiB" for k, v in per_clip.items())
          + f"; prepared frames {psnr:.2f} dB PSNR against the videos' decoded frames")
    print(f"{'source':>20s} {'workers':>8s} {'clips/s':>9s} {'frames/s':>9s} {'ms/clip':>9s} {'setup s':>8s}")
    for r in rows:
        print(f"{r['source']:>20s} {r['workers']:>8d} {r['clips_per_second']:>9.1f} {r['frames_per_second']:>9.1f} "
              f"{r['ms_per_clip']:>9.2f} {r['setup_s']:>8.3f}")
    return res


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/shapes.yaml")
    p.add_argument("--steps", type=int, default=20, help="timed training batches")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="32", choices=["32", "bf16"])
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--sample-batch", type=int, default=32, help="clips per generator pass when timing sampling")
    p.add_argument("--json", default=None)
    p.add_argument("--peak-size", type=int, default=4096, help="matmul size of the device peak measurement")
    p.add_argument("--markdown", default=None, help="append the result as a row of a markdown table to this file")
    p.add_argument("overrides", nargs="*", help="extra CLI overrides, e.g. --data.init_args.batch_size=32")
    d = p.add_argument_group("data mode")
    d.add_argument("--data", "--data-only", dest="data_only", action="store_true",
                   help="benchmark data loading, not the model")
    d.add_argument("--videos", default="data/datasets/bench_videos", help="video dataset folder")
    d.add_argument("--from-strips", default=None, help="encode these frame strips to mp4 in --videos first")
    d.add_argument("--synthetic", type=int, default=0, help="write this many synthetic mp4s in --videos first")
    d.add_argument("--video-size", type=int, default=256, help="height of the synthetic videos")
    d.add_argument("--class-captions", default=None)
    d.add_argument("--prepared", default=None, help="prepared dataset folder (prepared from --videos if unfinished)")
    d.add_argument("--prepare-workers", type=int, default=0, help="processes of the preparation (0: one per core)")
    d.add_argument("--quality", type=int, default=95, help="WebP quality of the prepared frames")
    d.add_argument("--resolution", type=int, default=64)
    d.add_argument("--frames", type=int, default=16)
    d.add_argument("--stride", type=int, default=1)
    d.add_argument("--batch-size", type=int, default=16)
    d.add_argument("--batches", type=int, default=20)
    d.add_argument("--sparse-frames", type=int, default=0,
                   help="also time data.sparse_frames: k (only the k frames a sparse D reads are decoded)")
    d.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = p.parse_args(argv)
    reference = round(machine_reference(), 1)
    print(f"machine reference: {reference} GFLOP/s (fp32 1024x1024 matmul, 2 threads; compare timings "
          "from two machines after dividing by it)")
    if args.data_only:
        res = data_benchmark(args)
        res["machine_reference_gflops"] = reference
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=2))
        return

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    model, dm = build(args.config, args.overrides)
    device = torch.device(args.device)
    model = model.to(device)
    speed = model.apply_speed()         # model.speed.* overrides: channels_last, compile, checkpointing
    dm.setup("fit")
    loader = iter(dm.train_dataloader())
    opts = model.configure_optimizers()

    # drive training_step without a Trainer: the optimisers are used as they are
    class _Opt:
        def __init__(self, o):
            self.o = o

        def zero_grad(self, **k):
            self.o.zero_grad(**k)

        def step(self):
            self.o.step()

    model.optimizers = lambda: [_Opt(o) for o in opts]
    model.toggle_optimizer = model.untoggle_optimizer = lambda o: None
    model.manual_backward = lambda loss: loss.backward()
    model.log = model.log_dict = lambda *a, **k: None
    dtype = torch.bfloat16 if args.precision == "bf16" else None

    def batch():
        b = next(loader)
        b["video"] = b["video"].to(device, non_blocking=True)
        return b

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            model.training_step(batch(), 0)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    per_batch = (time.perf_counter() - t0) / args.steps
    hp = model.hparams
    prompts = ["a red circle moving left"] * args.sample_batch
    # sampling: batches of --sample-batch clips, repeated for at least 3 s (and 5 times); the median
    # batch time, since one batch is short enough for a busy machine to upset it
    times, start = [], time.perf_counter()
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        model.generate(prompts, batch_size=args.sample_batch)          # warm-up
        while len(times) < 5 or time.perf_counter() - start < 3.0:
            sync()
            t0 = time.perf_counter()
            model.generate(prompts, batch_size=args.sample_batch)
            sync()
            times.append(time.perf_counter() - t0)
    per_clip = statistics.median(times) / args.sample_batch
    # FLOPs counted on one more batch / sample pass; MFU against the device's measured matmul peak
    train_flops = counted_flops(step)
    sample_flops = counted_flops(lambda: model.generate(prompts, batch_size=args.sample_batch))
    peak = device_peak(device, torch.bfloat16 if (dtype is not None and device.type == "cuda") else None,
                       n=args.peak_size)
    res = {
        "config": args.config, "device": str(device), "precision": args.precision,
        "machine": f"{cpu_name()}, {torch.get_num_threads()} threads"
        + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""),
        "clip": f"{hp.frames}x{hp.resolution}x{hp.resolution}", "batch_size": dm.hparams.batch_size,
        "seconds_per_batch": round(per_batch, 4), "clips_per_second_train": round(dm.hparams.batch_size / per_batch, 2),
        "seconds_per_sampled_clip": round(per_clip, 5),
        "clips_per_second_sample": round(1 / per_clip, 1), "sample_batch": args.sample_batch,
        "train_gflop_per_clip": round(train_flops / dm.hparams.batch_size / 1e9, 3),
        "sample_gflop_per_clip": round(sample_flops / args.sample_batch / 1e9, 3),
        "device_peak_gflops": round(peak, 1),
        "mfu_train": round(train_flops / per_batch / 1e9 / peak, 4),
        "mfu_sample": round(sample_flops / args.sample_batch / per_clip / 1e9 / peak, 4),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2),
        "machine_reference_gflops": reference, "speed": ", ".join(f"{k}={v}" for k, v in speed.items()) or "plain",
    }
    if device.type == "cuda":
        res["peak_cuda_gib"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 2)
    for k, v in res.items():
        print(f"{k:>26s}: {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    if args.markdown:
        append_markdown(args.markdown, res)


MARKDOWN_COLUMNS = ("config", "clip", "device", "machine", "precision", "speed", "batch_size", "clips_per_second_train",
                    "mfu_train", "clips_per_second_sample", "mfu_sample", "train_gflop_per_clip",
                    "sample_gflop_per_clip", "device_peak_gflops", "peak_rss_gib", "peak_cuda_gib",
                    "machine_reference_gflops")


def append_markdown(path: str, res: dict) -> None:
    """Append ``res`` as a row of the markdown table in ``path`` (the header first if the file is new)."""
    file = Path(path)
    lines = [] if file.exists() and file.read_text().strip() else [
        "| " + " | ".join(MARKDOWN_COLUMNS) + " |", "|" + "---|" * len(MARKDOWN_COLUMNS)]
    lines.append("| " + " | ".join(str(res.get(k, "")) for k in MARKDOWN_COLUMNS) + " |")
    with open(file, "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
