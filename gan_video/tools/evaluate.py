"""Evaluate a checkpoint (or two folders of videos): FVD, CLIPSIM, LPIPS and text alignment, each
printed with its protocol.

    gan-video-evaluate --checkpoint runs/shapes/checkpoints/last.ckpt [--config configs/shapes.yaml]
        [--fvd fvd2048_16f,fvd2048_32f] [--metrics fvd,clipsim,lpips,alignment] [--json out.json]
    gan-video-evaluate --real real_videos/ --fake generated_videos/ --fvd fvd2048_16f

With a checkpoint, the real clips come from the data config (``--config``, else the run folder's
``config.yaml``, else the checkpoint's shapes settings); generated clip ``i`` is made by the EMA
generator from the caption of real clip ``i`` with seed ``i``. CLIPSIM and temporal jitter are
measured on those same generated clips, diversity on ``--lpips-prompts`` captions x
``--lpips-seeds`` seeds. Real FVD statistics are cached per dataset and protocol.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Optional

from . import run_report_tool

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif")
ALL_METRICS = ("fvd", "clipsim", "lpips", "alignment")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gan-video-evaluate", description=__doc__.split("\n\n")[0])
    src = p.add_argument_group("what to evaluate (a checkpoint, or two folders of videos)")
    src.add_argument("--checkpoint", help="a TextToVideoGAN .ckpt")
    src.add_argument("--config", help="the training config whose data section gives the real clips")
    src.add_argument("--real", help="folder of real videos (with --fake)")
    src.add_argument("--fake", help="folder of generated videos (with --real)")
    p.add_argument("--metrics", default=None,
                   help=f"comma list from {','.join(ALL_METRICS)} (default: all that apply; CLIPSIM is "
                        "skipped with a note when no CLIP weights can be found)")
    p.add_argument("--fvd", default="fvd2048_16f", help="FVD protocols, e.g. fvd2048_16f,fvd2048_32f")
    p.add_argument("--num-clips", type=int, default=None,
                   help="clips per side for every FVD protocol (renames it: fvd256_16f)")
    p.add_argument("--floor", action="store_true",
                   help="also measure real vs real: FVD between the real clips and as many other real "
                        "clips (another seed), the floor a perfect generator would reach at this count")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--i3d", default=None, help="I3D weights file (default: $GAN_VIDEO_I3D, cache, package)")
    p.add_argument("--no-cache", action="store_true", help="recompute real FVD statistics")
    p.add_argument("--clip-model", default="ViT-B-32")
    p.add_argument("--clip-weights", default=None, help="open_clip tag or weights file for CLIPSIM")
    p.add_argument("--lpips-net", default="alex", choices=["alex", "vgg"])
    p.add_argument("--lpips-trunk", default=None, help="torchvision ImageNet weights for the LPIPS trunk")
    p.add_argument("--lpips-prompts", type=int, default=16, help="prompts for LPIPS diversity")
    p.add_argument("--lpips-seeds", type=int, default=4, help="clips per prompt for LPIPS diversity")
    p.add_argument("--jitter-clips", type=int, default=256, help="generated clips for temporal jitter")
    p.add_argument("--per-prompt", type=int, default=4, help="clips per prompt for text alignment")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


# ------------------------------------------------------------------------------------ data config
def datamodule_from_config(config: Optional[str], checkpoint: str, resolution: int, frames: int):
    """The data module of ``config`` (or of the run folder's config.yaml, or the checkpoint's shapes
    settings), at the model's resolution and clip length."""
    import importlib

    import torch
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
        from ..data.datamodule import ShapesDataModule

        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
        args, cls = dict(ckpt.get("datamodule_hyper_parameters") or {}), ShapesDataModule
    args.update(resolution=resolution, frames=frames)
    dm = cls(**args)
    for method in ("real_clips", "dataset_id"):
        if not hasattr(dm, method):
            raise ValueError(f"{cls.__name__} has no {method}(); FVD needs a data module that serves real clips")
    return dm


def video_folder_clips(folder: str, frames: int, limit: int):
    """uint8 ``[T, H, W, 3]`` clips: the first ``frames`` frames of each video in ``folder`` (sorted);
    shorter or unreadable files are skipped and counted."""
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
            if len(video) < frames:
                skipped[f"shorter than {frames} frames"] = skipped.get(f"shorter than {frames} frames", 0) + 1
                continue
            used += 1
            yield torch.from_numpy(video[:frames].copy())

    return clips, skipped, len(files)


# ------------------------------------------------------------------------------------ evaluation
def _wanted(args, have_model: bool, is_shapes: bool) -> tuple[set, bool]:
    """(metrics to run, whether they were asked for explicitly)."""
    if args.metrics:
        wanted = {m.strip() for m in args.metrics.split(",") if m.strip()}
        unknown = wanted - set(ALL_METRICS)
        if unknown:
            raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {', '.join(ALL_METRICS)}")
        if not have_model and wanted - {"fvd", "lpips"}:
            raise ValueError("with --real/--fake only fvd and lpips (jitter) can be measured")
        if "alignment" in wanted and not is_shapes:
            raise ValueError("text alignment needs the built-in shapes data (its attribute classifier)")
        return wanted, True
    if not have_model:
        return {"fvd", "lpips"}, False
    return {"fvd", "clipsim", "lpips"} | ({"alignment"} if is_shapes else set()), False


def evaluate(args) -> dict:
    import torch

    from ..metrics.fvd import (FVDProtocol, FrechetVideoDistance, _progress, accumulate_fake, accumulate_real,
                               load_i3d_features, real_clip_batches, real_stats_file)

    if bool(args.real) != bool(args.fake):
        raise ValueError("give both --real and --fake folders, or a --checkpoint")
    if not args.checkpoint and not args.real:
        raise ValueError("nothing to evaluate: pass --checkpoint CKPT or --real DIR --fake DIR")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    protocols = []
    for name in [n.strip() for n in args.fvd.split(",") if n.strip()]:
        p = FVDProtocol.parse(name)
        if args.num_clips:
            p = FVDProtocol(num_real=args.num_clips, num_fake=args.num_clips, frames=p.frames)
        protocols.append(p)
    model = dm = None
    from ..data.datamodule import ShapesDataModule

    if args.checkpoint:
        from ..module import load_model

        model = load_model(args.checkpoint, map_location=device)
        hp = model.hparams
        dm = datamodule_from_config(args.config, args.checkpoint, int(hp.resolution), int(hp.frames))
    wanted, explicit = _wanted(args, model is not None, isinstance(dm, ShapesDataModule))
    results, notes = [], []

    def add(metric, value, protocol, seconds):
        results.append({"metric": metric, "value": None if value is None else round(float(value), 4),
                        "protocol": protocol, "seconds": round(seconds, 1)})

    # every network is loaded before any clip is made, so a missing weight fails in seconds
    i3d = load_i3d_features(args.i3d).to(device) if "fvd" in wanted else None
    clipsim = lpips = None
    if "clipsim" in wanted:
        from ..metrics.clipsim import CLIPSimilarity
        from ..metrics.weights import WeightsNotFoundError

        try:
            clipsim = CLIPSimilarity(model_name=args.clip_model, pretrained=args.clip_weights).to(device)
        except WeightsNotFoundError as err:
            if explicit:
                raise
            notes.append(f"clipsim skipped: {err}")
    if "lpips" in wanted:
        from ..metrics.perceptual import VideoLPIPS

        lpips = VideoLPIPS(args.lpips_net, args.lpips_trunk).to(device)

    jitter_clips: list = []
    first = True
    for protocol in protocols if "fvd" in wanted else []:
        metric = FrechetVideoDistance(i3d).to(device)
        t0 = time.time()
        cached = False
        if model is not None:
            cached = not args.no_cache and real_stats_file(dm.dataset_id(), protocol, i3d.name).is_file()
            captions = accumulate_real(metric, dm, protocol, args.batch_size, not args.no_cache, not args.quiet)
            t_real = time.time() - t0

            def extra(video, prompts, _first=first):
                if _first and clipsim is not None:
                    clipsim.update(video, prompts)
                if _first and lpips is not None and sum(len(v) for v in jitter_clips) < args.jitter_clips:
                    jitter_clips.append(video.cpu())

            accumulate_fake(metric, model, captions, protocol, args.batch_size, not args.quiet, extra=extra)
        else:
            from ..metrics.fvd import clips_from_iterable

            t_real = 0.0
            for side, folder in (("real", args.real), ("fake", args.fake)):
                clips, skipped, total = video_folder_clips(folder, protocol.frames, protocol.num_real)
                n = clips_from_iterable(metric, clips(), side == "real", args.batch_size)
                if skipped:
                    notes.append(f"{folder}: skipped {skipped} of {total} files")
                if n < protocol.num_real:
                    notes.append(f"{folder}: only {n} usable clips of {protocol.frames} frames "
                                 f"(protocol asks {protocol.num_real}); FVD on fewer clips is biased upward")
                if side == "real":
                    t_real = time.time() - t0
        value = metric.compute()
        add(protocol.name, value, protocol.describe()
            + f"; real side {'from cache' if cached else f'{t_real:.0f} s'}",
            time.time() - t0)
        if args.floor and model is not None:
            t1 = time.time()
            floor = FrechetVideoDistance(i3d).to(device)
            floor.set_real_statistics(metric.real_statistics())
            other = FVDProtocol(protocol.num_fake, protocol.num_fake, protocol.frames, protocol.size,
                                seed=protocol.seed + 1)
            loader, total = real_clip_batches(dm, other, args.batch_size)
            for batch in _progress(loader, total, f"{protocol.name} floor (other real clips)", not args.quiet):
                floor.update(batch["video"], real=False)
            add(f"{protocol.name} real-vs-real", floor.compute(), f"floor: the same real statistics vs "
                f"{protocol.num_fake} other real clips (real_clips seed {other.seed})", time.time() - t1)
        first = False
    if clipsim is not None and int(clipsim.count) > 0:
        add("clipsim", clipsim.compute(), f"CLIP {args.clip_model} ({args.clip_weights or 'default weights'}); "
            f"mean over frames of cos(image, text), mean over {int(clipsim.count)} generated clips; "
            "raw cosine, not x100", 0.0)
    if lpips is not None:
        t0 = time.time()
        if model is not None:
            _lpips_for_model(args, model, dm, lpips, jitter_clips, add)
        else:
            clips, _, _ = video_folder_clips(args.fake, 2, args.jitter_clips)
            values = [lpips.jitter(c.permute(3, 0, 1, 2)[None].float().div(127.5).sub(1).to(device)) for c in clips()]
            add("lpips_jitter", sum(values) / max(len(values), 1), f"LPIPS-{args.lpips_net} between consecutive "
                f"frames, mean over {len(values)} clips of {args.fake}", time.time() - t0)
    if "alignment" in wanted:
        from types import SimpleNamespace

        from .alignment import evaluate as alignment

        t0 = time.time()
        r = alignment(SimpleNamespace(checkpoint=args.checkpoint, per_prompt=args.per_prompt, seed=1000,
                                      holdout=None, classifier=None, batch_size=args.batch_size))
        for key, value in r["accuracy"].items():
            add(f"align/{key}", value, f"2018 classifier protocol, {r['clips']} clips, {args.per_prompt} per "
                "prompt; share of clips whose attribute matches the prompt", time.time() - t0)
    return {"checkpoint": args.checkpoint, "real": args.real, "fake": args.fake, "device": str(device),
            "dataset": dm.dataset_id() if dm is not None else None, "results": results, "notes": notes}


def _lpips_for_model(args, model, dm, lpips, jitter_clips, add) -> None:
    import torch

    t0 = time.time()
    if not jitter_clips:   # no FVD run to borrow clips from: make some
        prompts = (dm.all_captions() if hasattr(dm, "all_captions") else ["a video"])[:args.jitter_clips]
        jitter_clips.append(model.generate(prompts, list(range(len(prompts))), batch_size=args.batch_size).cpu())
    clips = torch.cat(jitter_clips)[:args.jitter_clips]
    device = next(lpips.parameters()).device
    add("lpips_jitter", lpips.jitter(clips.to(device)), f"LPIPS-{args.lpips_net} between consecutive frames, "
        f"mean over {len(clips)} generated clips", time.time() - t0)
    t0 = time.time()
    captions = list(dict.fromkeys(dm.all_captions() if hasattr(dm, "all_captions") else []))
    if len(captions) > args.lpips_prompts:   # an even spread over the caption list
        captions = [captions[i * len(captions) // args.lpips_prompts] for i in range(args.lpips_prompts)]
    groups = [model.generate([c] * args.lpips_seeds, [100_000 + k for k in range(args.lpips_seeds)],
                             batch_size=args.batch_size).to(device) for c in captions]
    add("lpips_diversity", lpips.diversity(groups), f"LPIPS-{args.lpips_net}, mean pairwise distance between "
        f"{args.lpips_seeds} clips (seeds) of each of {len(groups)} prompts, same frame index; ~0 = mode collapse",
        time.time() - t0)


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
