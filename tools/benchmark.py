"""Speed and memory of a config's training step and of sampling, on this machine.

    python tools/benchmark.py --config configs/shapes.yaml [--steps 20] [--device cpu|cuda]
        [--precision 32|bf16] [--threads N] [--json out.json]

Builds the model and data module from the YAML exactly as `gan-video fit` would (same classes, same
arguments), runs a few warm-up batches, then times `--steps` full training batches (one D step and
one G step each, real data loading included) and the EMA generator's sampling throughput. Prints a
table and optionally JSON. Numbers are wall-clock on whatever machine runs it: report the machine.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build(config: str, overrides: list[str]):
    from gan_video.cli import GanVideoCLI
    from gan_video.data.datamodule import ShapesDataModule
    from gan_video.module import TextToVideoGAN

    cli = GanVideoCLI(TextToVideoGAN, ShapesDataModule, subclass_mode_data=True, run=False,
                      args=["--config", config, *overrides, "--trainer.logger", "false",
                            "--trainer.enable_checkpointing", "false", "--trainer.callbacks", "[]"])
    return cli.model, cli.datamodule


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/shapes.yaml")
    p.add_argument("--steps", type=int, default=20, help="timed training batches")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="32", choices=["32", "bf16"])
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--sample-batch", type=int, default=16)
    p.add_argument("--json", default=None)
    p.add_argument("overrides", nargs="*", help="extra CLI overrides, e.g. --data.init_args.batch_size=32")
    args = p.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    model, dm = build(args.config, args.overrides)
    device = torch.device(args.device)
    model = model.to(device)
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
    model.generate(prompts[:2])
    sync()
    t0 = time.perf_counter()
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        model.generate(prompts, batch_size=args.sample_batch)
    sync()
    per_clip = (time.perf_counter() - t0) / args.sample_batch
    res = {
        "config": args.config, "device": str(device), "precision": args.precision,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
        + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""),
        "clip": f"{hp.frames}x{hp.resolution}x{hp.resolution}", "batch_size": dm.hparams.batch_size,
        "seconds_per_batch": round(per_batch, 4), "clips_per_second_train": round(dm.hparams.batch_size / per_batch, 2),
        "seconds_per_sampled_clip": round(per_clip, 5),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2),
    }
    if device.type == "cuda":
        res["peak_cuda_gib"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 2)
    for k, v in res.items():
        print(f"{k:>26s}: {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
