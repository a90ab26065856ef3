"""Evaluate a checkpoint (or two folders of videos) with metrics named as in
:mod:`gan_video.metrics.registry`, each printed with its protocol.

    gan-video-evaluate --checkpoint runs/shapes/checkpoints/last.ckpt [--config configs/shapes.yaml]
        [--metrics fvd2048_16f,fvd2048_32f,clipsim,lpips_jitter,lpips_diversity,align] [--json out.json]
    gan-video-evaluate --real real_videos/ --fake generated_videos/ --metrics fvd2048_16f,lpips_jitter

With a checkpoint, the real clips come from the data config (``--config``, else the run folder's
``config.yaml``, else the checkpoint's shapes settings); generated clip ``i`` is made by the EMA
generator from the caption of real clip ``i`` with seed ``i``. CLIPSIM and temporal jitter are
measured on the first of those same generated clips, diversity on ``--lpips-prompts`` captions x
``--lpips-seeds`` seeds. Real FVD statistics are cached per dataset and protocol.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Optional

from . import keep_freed_memory, run_report_tool

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif")
DEFAULT_METRICS = "fvd2048_16f,clipsim,lpips_jitter,lpips_diversity,align"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gan-video-evaluate", description=__doc__.split("\n\n")[0])
    src = p.add_argument_group("what to evaluate (a checkpoint, or two folders of videos)")
    src.add_argument("--checkpoint", help="a TextToVideoGAN .ckpt")
    src.add_argument("--config", help="the training config whose data section gives the real clips")
    src.add_argument("--real", help="folder of real videos (with --fake)")
    src.add_argument("--fake", help="folder of generated videos (with --real)")
    p.add_argument("--metrics", default=None,
                   help="comma list of metric names: fvd<clips>_<frames>f (fvd2048_16f, fvd2048_32f, ...), "
                        "clipsim, lpips_jitter, lpips_diversity, align (default: "
                        f"{DEFAULT_METRICS}, the ones that apply; CLIPSIM is skipped with a note when no "
                        "CLIP weights can be found; with --real/--fake: fvd2048_16f,lpips_jitter)")
    p.add_argument("--num-clips", type=int, default=None,
                   help="clips per side for every FVD protocol (renames it: fvd256_16f)")
    p.add_argument("--stride", type=int, default=None,
                   help="real FVD clips take every N-th frame, like training clips at data stride N "
                        "(renames the protocol: fvd256_16f_s2); default: consecutive frames")
    p.add_argument("--floor", action="store_true",
                   help="also measure real vs real: FVD between the real clips and as many other real "
                        "clips (another seed), the floor a perfect generator would reach at this count")
    p.add_argument("--baselines", action="store_true",
                   help="the floor and, from the same real statistics, other real clips' first frame "
                        "repeated (a perfect still) and their frames shuffled (broken motion): what an "
                        "FVD number means on this data")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--i3d", default=None, help="I3D weights file (default: $GAN_VIDEO_I3D, cache, package)")
    p.add_argument("--precision", default="32", choices=["32", "bf16"],
                   help="I3D arithmetic: 32 (the reference) or bf16 (bf16 weights, first conv as "
                        "space-to-depth): for GPUs and CPUs with bf16 units (AMX), about 2x faster there, FVD "
                        "within about 1%% of fp32 (docs/benchmarks.md); real statistics are cached per precision")
    p.add_argument("--no-cache", action="store_true", help="recompute real FVD statistics")
    p.add_argument("--clip-model", default="ViT-B-32")
    p.add_argument("--clip-weights", default=None, help="open_clip tag or weights file for CLIPSIM")
    p.add_argument("--lpips-net", default="alex", choices=["alex", "vgg"])
    p.add_argument("--lpips-trunk", default=None, help="torchvision ImageNet weights for the LPIPS trunk")
    p.add_argument("--lpips-prompts", type=int, default=16, help="prompts for LPIPS diversity")
    p.add_argument("--lpips-seeds", type=int, default=4, help="clips per prompt for LPIPS diversity")
    p.add_argument("--jitter-clips", type=int, default=256, help="generated clips for temporal jitter")
    p.add_argument("--clipsim-clips", type=int, default=256, help="generated clips for CLIPSIM")
    p.add_argument("--per-prompt", type=int, default=4, help="clips per prompt for text alignment")
    p.add_argument("--first-seed", type=int, default=0,
                   help="generated clip i (FVD, CLIPSIM, jitter) uses seed FIRST_SEED + i (default 0); another "
                        "range gives an independent sample of the model's clips")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


# ------------------------------------------------------------------------------------ data config
def datamodule_from_config(config: Optional[str], checkpoint: str, ckpt: dict, resolution: int, frames: int):
    """The data module of ``config`` (or of the run folder's config.yaml, or the shapes settings of
    the checkpoint ``ckpt`` read from ``checkpoint``), at the model's resolution and clip length."""
    import importlib

    import yaml

    if config is None:
        candidate = Path(checkpoint).resolve().parent.parent / "config.yaml"
        config = str(candidate) if candidate.is_file() else None
    if config is not None:
        if not os.path.isfile(config):
            raise FileNotFoundError(f"config {config!r} does not exist; pass the YAML the model was trained with")
        with open(config, encoding="utf-8") as f:
            data = (yaml.safe_load(f) or {}).get("data")
        if not isinstance(data, dict) or "class_path" not in data:
            raise ValueError(f"{config} has no data section with a class_path; pass the training config")
        module, _, name = data["class_path"].rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        args = dict(data.get("init_args") or {})
    else:
        # the checkpoint's own data settings (a checkpoint moved out of its run folder, or shared):
        # `gan-video fit` stores the class path beside them; only gan_video's data modules are built
        # from a checkpoint, never a module it names from elsewhere (nothing of a stranger's file runs)
        args = dict(ckpt.get("datamodule_hyper_parameters") or {})
        args.pop("_instantiator", None)
        class_path = args.pop("_class_path", "gan_video.data.ShapesDataModule")
        module, _, name = class_path.rpartition(".")
        if module != "gan_video.data" and not module.startswith("gan_video.data."):
            raise ValueError(f"{checkpoint} was trained on data of class {class_path!r}, which is not one of "
                             "gan_video's data modules: pass --config with the YAML it was trained with")
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            cls = None
        if cls is None:
            raise ValueError(f"{checkpoint} names the data module {class_path!r}, which this gan_video does not "
                             "have: pass --config with the YAML it was trained with")
    args.update(resolution=resolution, frames=frames)
    dm = cls(**args)
    for method in ("real_clips", "dataset_id"):
        if not hasattr(dm, method):
            raise ValueError(f"{cls.__name__} has no {method}(); FVD needs a data module that serves real clips")
    return dm


def video_folder_clips(folder: str, frames: int, limit: int, stride: int = 1):
    """uint8 ``[T, H, W, 3]`` clips: the first ``frames`` frames (every ``stride``-th) of each video
    in ``folder`` (sorted); shorter or unreadable files are skipped and counted."""
    import torch

    from ..data.io import read_video

    if not os.path.isdir(folder):
        raise FileNotFoundError(f"video folder {folder!r} does not exist")
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    if not files:
        raise ValueError(f"no videos ({', '.join(VIDEO_SUFFIXES)}) in {folder!r}")
    skipped: dict[str, int] = {}

    def clips():
        used = 0
        for path in files:
            if used >= limit:
                return
            try:
                video = read_video(path)
            except Exception:  # noqa: BLE001 - any undecodable file is skipped and counted
                skipped["unreadable"] = skipped.get("unreadable", 0) + 1
                continue
            span = (frames - 1) * stride + 1
            if len(video) < span:
                skipped[f"shorter than {span} frames"] = skipped.get(f"shorter than {span} frames", 0) + 1
                continue
            used += 1
            yield torch.from_numpy(video[:span:stride].copy())

    return clips, skipped, len(files)


# ------------------------------------------------------------------------------------ evaluation
def metric_names(args, have_model: bool) -> tuple[list[str], bool]:
    """(metric names, whether they were asked for explicitly), FVD renamed by ``--num-clips``."""
    from ..metrics.fvd import FVDProtocol

    explicit = bool(args.metrics)
    names = [n.strip() for n in (args.metrics or (DEFAULT_METRICS if have_model else "fvd2048_16f,lpips_jitter"))
             .split(",") if n.strip()]
    out = []
    for name in names:
        if name.startswith("fvd"):
            p = FVDProtocol.parse(name)
            n = args.num_clips or p.num_fake
            p = FVDProtocol(num_real=n, num_fake=n, frames=p.frames, stride=args.stride or p.stride, offset=p.offset)
            name = p.name
        out.append(name)
    return out, explicit


def options_from_args(args):
    from ..metrics.registry import EvalOptions

    return EvalOptions(batch_size=args.batch_size, progress=not args.quiet, use_cache=not args.no_cache,
                       i3d=args.i3d, fvd_precision=args.precision, fvd_floor=args.floor, fvd_baselines=args.baselines, clip_model=args.clip_model,
                       clip_weights=args.clip_weights, clipsim_clips=args.clipsim_clips,
                       lpips_net=args.lpips_net, lpips_trunk=args.lpips_trunk, jitter_clips=args.jitter_clips,
                       lpips_prompts=args.lpips_prompts, lpips_seeds=args.lpips_seeds,
                       align_per_prompt=args.per_prompt, first_seed=args.first_seed)


def evaluate(args) -> dict:
    import torch

    if bool(args.real) != bool(args.fake):
        raise ValueError("give both --real and --fake folders, or a --checkpoint")
    if not args.checkpoint and not args.real:
        raise ValueError("nothing to evaluate: pass --checkpoint CKPT or --real DIR --fake DIR")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu":
        keep_freed_memory()      # I3D's large activations: no page faults per batch
    if args.precision == "bf16":
        from ..metrics.fvd import check_bf16_device

        check_bf16_device(device)
    names, explicit = metric_names(args, bool(args.checkpoint))
    if not args.checkpoint:
        return evaluate_folders(args, names, device)

    from ..checkpoints import read_checkpoint
    from ..data import ShapesDataModule
    from ..metrics.registry import Evaluator
    from ..sampling import load_sampler

    ckpt = read_checkpoint(args.checkpoint)                     # read once: model and data settings
    model = load_sampler(ckpt, map_location=device, path=args.checkpoint)      # the EMA generator
    hp = model.hparams
    dm = datamodule_from_config(args.config, args.checkpoint, ckpt, int(hp.resolution), int(hp.frames))
    if not explicit and not isinstance(dm, ShapesDataModule):
        names = [n for n in names if n != "align"]             # the classifier knows the shapes only
    evaluator = Evaluator(names, options_from_args(args), optional=() if explicit else ("clipsim",))
    evaluator.prepare(dm, device)        # every network and the real statistics before any clip
    results = evaluator.run(model)
    return {"checkpoint": args.checkpoint, "real": None, "fake": None, "device": str(device),
            "dataset": dm.dataset_id(), "results": [r.as_dict() for r in results], "notes": evaluator.notes}


def evaluate_folders(args, names: list[str], device) -> dict:
    """FVD and temporal jitter between two folders of video files."""
    from ..data.io import from_uint8
    from ..metrics.fvd import FVDProtocol, FrechetVideoDistance, clips_from_iterable, load_i3d_features
    from ..metrics.registry import Result

    unknown = [n for n in names if not n.startswith("fvd") and n != "lpips_jitter"]
    windows = [n for n in names if n.startswith("fvd") and FVDProtocol.parse(n).offset]
    if windows:
        raise ValueError(f"{windows}: a window (_w<K>) needs a checkpoint that makes longer clips; with "
                         "--real/--fake folders FVD reads the first frames of each video")
    if unknown:
        raise ValueError(f"with --real/--fake only fvd<N>_<T>f and lpips_jitter can be measured, not {unknown}")
    results, notes = [], []
    i3d = load_i3d_features(args.i3d, precision=args.precision).to(device) if any(n.startswith("fvd") for n in names) else None
    lpips = None
    if "lpips_jitter" in names:
        from ..metrics.perceptual import VideoLPIPS

        lpips = VideoLPIPS(args.lpips_net, args.lpips_trunk).to(device)
    for name in names:
        t0 = time.time()
        if name == "lpips_jitter":
            clips, _, _ = video_folder_clips(args.fake, 2, args.jitter_clips)
            values = [lpips.jitter(from_uint8(c)[None].to(device)) for c in clips()]
            results.append(Result("lpips_jitter", sum(values) / max(len(values), 1), f"LPIPS-{args.lpips_net} "
                                  f"between consecutive frames, mean over {len(values)} clips of {args.fake}",
                                  time.time() - t0))
            continue
        protocol = FVDProtocol.parse(name)
        metric = FrechetVideoDistance(i3d).to(device)
        for side, folder in (("real", args.real), ("fake", args.fake)):
            stride = protocol.stride if side == "real" else 1      # the generated clips as they are
            clips, skipped, total = video_folder_clips(folder, protocol.frames, protocol.num_real, stride)
            n = clips_from_iterable(metric, clips(), side == "real", args.batch_size)
            if skipped:
                notes.append(f"{folder}: skipped {skipped} of {total} files")
            if n < protocol.num_real:
                notes.append(f"{folder}: only {n} usable clips of {protocol.frames} frames "
                             f"(protocol asks {protocol.num_real}); FVD on fewer clips is biased upward")
        results.append(Result(name, float(metric.compute()), protocol.describe(), time.time() - t0))
    return {"checkpoint": None, "real": args.real, "fake": args.fake, "device": str(device), "dataset": None,
            "results": [r.as_dict() for r in results], "notes": notes}


def format_table(r: dict) -> str:
    what = r["checkpoint"] or f"{r['fake']} vs {r['real']}"
    lines = [f"evaluation of {what} on {r['device']}" + (f" (data: {r['dataset']})" if r["dataset"] else "")]
    width = max([len(x["metric"]) for x in r["results"]] + [6])
    for x in r["results"]:
        value = "n/a" if x["value"] is None else f"{x['value']:.4f}"
        lines.append(f"  {x['metric']:<{width}s} {value:>10s}   {x['seconds']:6.0f} s   {x['protocol']}")
    lines += [f"  note: {n}" for n in r["notes"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    run_report_tool("gan-video-evaluate", build_parser(), evaluate, format_table, argv)


if __name__ == "__main__":
    main()
