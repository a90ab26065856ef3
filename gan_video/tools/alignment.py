"""Text alignment of a checkpoint on the built-in shapes (the 2018 paper's classifier protocol).

    gan-video-alignment --checkpoint runs/shapes/checkpoints/last.ckpt [--per-prompt 4] [--json out.json]

Generates ``per-prompt`` clips for every canonical prompt "a {colour} {shape} moving {direction}"
(6 x 3 x 4 = 72 prompts), classifies them with the attribute classifier trained on real clips, and
prints accuracy per attribute for the (colour, shape) pairs seen in training and the held-out ones
(read from the checkpoint's data config unless ``--holdout`` is given). The same clips are then
read by an analytic reader with no learned parts (``gan_video/metrics/geometry.py``): the shape
whose ideal drawing overlaps the object most, how well (IoU), how much of the background is not the
background colour (a layer border, blotches) and how dark the ring around the object is (a halo).
"""
from __future__ import annotations

import argparse
import time

from . import run_report_tool


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gan-video-alignment", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--per-prompt", type=int, default=4, help="clips per prompt (72 prompts)")
    p.add_argument("--seed", type=int, default=1000, help="first seed of the evaluation clips")
    p.add_argument("--holdout", default=None,
                   help="held-out pairs as 'red-triangle,green-square' (default: the checkpoint's)")
    p.add_argument("--classifier", default=None, help="path of a cached classifier (default: cache)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--no-geometry", action="store_true",
                   help="skip the analytic reader (shape by overlap with ideal shapes, background clutter, "
                        "dark halo; about 20 s per 288 clips)")
    p.add_argument("--watermark", action="store_true",
                   help="judge the clips with the model's watermark in them, as gan-video-sample writes them "
                        "(to measure what the watermark does to the figures)")
    return p


def evaluate(args) -> dict:
    from ..checkpoints import read_checkpoint
    from ..data.shapes_datamodule import DEFAULT_HOLDOUT
    from ..metrics.alignment import load_classifier, text_alignment
    from ..sampling import load_sampler

    if args.per_prompt < 1:
        raise ValueError(f"--per-prompt must be >= 1, got {args.per_prompt}")
    ckpt = read_checkpoint(args.checkpoint)          # read once: the model and its data settings
    model = load_sampler(ckpt, path=args.checkpoint)       # the EMA generator and text encoder
    if args.holdout is not None:
        holdout = [p.split("-") for p in args.holdout.split(",") if p]
    else:
        holdout = (ckpt.get("datamodule_hyper_parameters") or {}).get("holdout") or DEFAULT_HOLDOUT
    hp = model.hparams
    classifier, real_acc = load_classifier(hp.resolution, hp.frames, args.classifier)
    t0 = time.time()
    digest = None
    if args.watermark:
        from ..provenance import model_hash

        digest = model_hash(model)       # of the EMA generator and text encoder, as gan_video.load's
    res = text_alignment(model, classifier, holdout, args.per_prompt, args.seed, args.batch_size,
                         watermark=digest, geometry=not args.no_geometry)
    return {"checkpoint": args.checkpoint, **res, "watermark": digest,
            "classifier_accuracy_on_real": {k: round(v, 4) for k, v in real_acc.items()},
            "seconds": round(time.time() - t0, 1)}


def format_table(r: dict) -> str:
    from ..data.shapes import SHAPES
    from ..metrics.geometry import DRAWN_IOU

    marked = f"; watermarked, model {r['watermark']}" if r.get("watermark") else ""
    lines = [f"text alignment of {r['checkpoint']} ({r['clips']} clips, {r['per_prompt']} per prompt; "
             f"held out: {', '.join(' '.join(p) for p in r['holdout'])}{marked})",
             f"{'':10s}{'colour':>9s}{'shape':>9s}{'direction':>11s}"]
    for group in ("seen", "heldout"):
        a = r["accuracy"]
        lines.append(f"{group:10s}{a[group + '/color']:9.1%}{a[group + '/shape']:9.1%}"
                     f"{a[group + '/direction']:11.1%}")
    c = r["classifier_accuracy_on_real"]
    lines.append(f"{'real clips':10s}{c['color']:9.1%}{c['shape']:9.1%}{c['direction']:11.1%}"
                 "   (the classifier on real clips: the ceiling)")
    g = r.get("geometry")
    if g:
        lines += ["", "analytic reader (no learned parts): read = the ideal shape that overlaps the object most; "
                  f"drawn = IoU with the prompt's shape >= {DRAWN_IOU} (every real clip is);",
                  "per shape: share read as it / its mean IoU. Real clips: 100% / IoU 0.97 / 100% / clutter 0 / halo 0",
                  f"{'':10s}{'read':>7s}{'IoU':>7s}{'drawn':>8s}{'circles':>14s}{'squares':>14s}{'triangles':>14s}"
                  f"{'clutter':>9s}{'halo':>7s}"]
        for group in ("seen", "heldout"):
            if f"{group}/shape" not in g:
                continue
            cells = "".join(f"{g[f'{group}/{s}']:8.1%} {g[f'{group}/{s}_iou']:.2f}" if f"{group}/{s}" in g
                            else f"{'-':>14s}" for s in SHAPES)
            lines.append(f"{group:10s}{g[group + '/shape']:7.1%}{g[group + '/iou']:7.3f}{g[group + '/drawn']:8.1%}"
                         f"{cells}{g[group + '/clutter']:9.2%}{g[group + '/halo']:7.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    run_report_tool("gan-video-alignment", build_parser(), evaluate, format_table, argv)


if __name__ == "__main__":
    main()
