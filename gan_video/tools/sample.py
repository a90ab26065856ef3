"""Write clips for prompts from a trained checkpoint (or an export folder of gan-video-export).

    gan-video-sample --checkpoint runs/shapes/checkpoints/last.ckpt \\
        --prompt "a red circle moving left" --prompt "a blue square moving up" \\
        --num-samples 2 --seed 0 --out samples/ [--gif] [--grid]

One H.264 mp4 (yuv420p) per clip, optionally a GIF beside it, and ``OUT/manifest.jsonl`` with one
row per clip: ``{"file", "prompt", "seed", "frames_sha1", ...}``. Clip ``j`` of prompt ``i`` uses
seed ``seed + i * num_samples + j``: the same seed gives the same frames (``frames_sha1`` is the hash
of the uint8 frames before encoding; the lossy H.264 file itself may differ by a level here and there).
``--grid`` also writes a prompts x seeds contact sheet (``grid.mp4``, ``grid.png``, ``grid.json``);
every prompt then uses seeds ``seed .. seed + num_samples - 1``, so each column shares its noise.
The sampling and the files are :mod:`gan_video.api`'s (``load``, ``generate_clips``, ``save``,
``save_grid``).
"""
from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from . import one_line_errors


def read_prompts(args) -> list[str]:
    prompts = list(args.prompt or [])
    if args.prompts_file:
        path = Path(args.prompts_file)
        if not path.is_file():
            raise FileNotFoundError(f"prompts file {str(path)!r} does not exist; give a text file "
                                    "with one prompt per line")
        prompts += [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise ValueError("no prompt given; pass --prompt 'a red circle moving left' or --prompts-file FILE")
    for i, p in enumerate(prompts):
        if not p.strip():
            raise ValueError(f"prompt {i} is empty; every --prompt needs some words")
    return prompts


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gan-video-sample", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True,
                   help="a .ckpt written by `gan-video fit`, or an export folder of `gan-video-export`")
    p.add_argument("--prompt", action="append", help="a caption; repeat for several")
    p.add_argument("--prompts-file", help="a text file with one prompt per line (# comments)")
    p.add_argument("--num-samples", type=int, default=1, help="clips per prompt")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--out", default="samples", help="output folder")
    p.add_argument("--frames", type=int, default=None, help="clip length (default: the model's); longer clips continue past the trained length at the same speed (layered, animator)")
    p.add_argument("--fps", type=int, default=8)
    p.add_argument("--gif", action="store_true", help="also write a GIF per clip")
    p.add_argument("--grid", action="store_true",
                   help="also write a contact sheet, prompts (rows) x seeds (columns): grid.mp4 (the clips "
                        "tiled), grid.png (its middle frame) and grid.json (the layout); every prompt then "
                        "uses the seeds seed .. seed + num-samples - 1")
    p.add_argument("--no-ema", action="store_true", help="sample the trained generator, not its EMA")
    p.add_argument("--no-watermark", action="store_true",
                   help="leave out the invisible watermark (gan_video.provenance) that clips get by default")
    p.add_argument("--device", default="cpu")
    return p


def run(args) -> list[dict]:
    from ..api import expand_prompts, load, save, save_grid, slug

    prompts = read_prompts(args)
    if args.num_samples < 1:
        raise ValueError(f"--num-samples must be >= 1, got {args.num_samples}")
    model = load(args.checkpoint, device=args.device, ema=not args.no_ema)
    n = args.num_samples
    if args.grid:   # every row (prompt) uses the same seeds, so that a column compares prompts
        clip_prompts, seeds = [p for p in prompts for _ in range(n)], [args.seed + j for _ in prompts for j in range(n)]
    else:
        clip_prompts, seeds = expand_prompts(prompts, n, args.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        # one clip per forward pass (batch_size=1): a clip is then bit-identical whatever else is
        # sampled with it (batched convolutions may round differently), and the generator is cheap at batch 1
        clips = model.generate_clips(clip_prompts, seeds, frames=args.frames, batch_size=1)
    # every file gets a provenance label, and the frames the invisible watermark (model id from the
    # weights' sha256) unless --no-watermark: gan-video-inspect reads both
    from ..provenance import model_hash
    digest, watermark = model_hash(model), not args.no_watermark
    names = [f"{k // n:03d}_{slug(p)}_s{s}" for k, (p, s) in enumerate(zip(clip_prompts, seeds))]
    rows = save(clips, args.out, clip_prompts, seeds, formats=("mp4", "gif") if args.gif else ("mp4",),
                fps=args.fps, names=names, model=digest, watermark=watermark)
    if args.grid:   # the sheet of the clean clips, marked as a whole (tiling moves the clips' marks off its grid)
        files = save_grid(clips, args.out, rows=len(prompts), cols=n, fps=args.fps, prompts=clip_prompts,
                          seeds=seeds, model=digest, watermark=watermark)
        layout = {**files, "rows": prompts, "columns": [args.seed + j for j in range(n)]}
        (Path(args.out) / "grid.json").write_text(json.dumps(layout, indent=2) + "\n", encoding="utf-8")
    return rows


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with one_line_errors("gan-video-sample"):
        rows = run(args)
    extra = " and grid.mp4/grid.png" if args.grid else ""
    print(f"wrote {len(rows)} clips, manifest.jsonl{extra} to {Path(args.out).resolve()}")


if __name__ == "__main__":
    main()
