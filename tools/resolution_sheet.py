"""The same prompts and seeds from several checkpoints (e.g. the 64, 128 and 256 px shapes chain),
side by side in one PNG, every frame shown at the size of the largest model (the smaller ones
enlarged with nearest-neighbour, so their pixels show as they are).

    python tools/resolution_sheet.py --checkpoint runs/shapes/checkpoints/last.ckpt \\
        --checkpoint runs/shapes_128/checkpoints/last.ckpt --checkpoint runs/shapes_256/checkpoints/last.ckpt \\
        --out docs/shapes_64_128_256.png [--prompt "a red triangle moving up" ...] [--seed 0] [--frames 0,15,31]

Rows: prompts (the default mixes seen and held-out pairs of the shapes configs); columns: for each
checkpoint in the order given, the chosen frames. Clips are sampled with gan_video.load (EMA
generator), without the watermark (this is a picture of the model, not a published clip).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_PROMPTS = ["a red circle moving left", "a blue square moving up", "a yellow triangle moving right",
                   "a red triangle moving down", "a green square moving left", "a blue circle moving right"]
GAP = 6          # pixels of white between models, and between rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", action="append", required=True, help="a .ckpt or export (repeat: one per column group)")
    p.add_argument("--prompt", action="append", default=None, help="a prompt (repeatable; default: six shapes prompts, "
                                                                   "the last three held-out pairs)")
    p.add_argument("--seed", type=int, default=0, help="the seed of every clip")
    p.add_argument("--frames", default="0,15,31", help="comma list of frame indices to show")
    p.add_argument("--out", required=True, help="the PNG to write")
    return p


def sheet(clips: list[np.ndarray], frames: list[int]) -> np.ndarray:
    """``clips[m]`` uint8 ``[P, T, H_m, W_m, 3]`` (model m, P prompts) as one image: a row per prompt,
    the models' chosen frames left to right, each enlarged (nearest) to the largest model's size."""
    size = max(c.shape[2] for c in clips)
    rows = []
    for p in range(clips[0].shape[0]):
        groups = []
        for c in clips:
            k = size // c.shape[2]
            tiles = [np.repeat(np.repeat(c[p, f], k, 0), k, 1) for f in frames]
            groups.append(np.concatenate(tiles, 1))
        gap = np.full((size, GAP, 3), 255, np.uint8)
        rows.append(np.concatenate([x for g in groups for x in (g, gap)][:-1], 1))
    hgap = np.full((GAP, rows[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([x for r in rows for x in (r, hgap)][:-1], 0)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    import torch
    from PIL import Image

    import gan_video

    prompts = args.prompt or DEFAULT_PROMPTS
    try:
        frames = [int(f) for f in args.frames.split(",")]
    except ValueError:
        raise SystemExit(f"resolution_sheet: error: --frames {args.frames!r} is not a comma list of frame indices")
    clips = []
    for path in args.checkpoint:
        if not Path(path).exists():      # a .ckpt file or an export folder
            raise SystemExit(f"resolution_sheet: error: checkpoint {path!r} does not exist")
        model = gan_video.load(path)
        with torch.no_grad():
            video = np.stack([model.generate([p], num_samples=1, seed=args.seed)[0] for p in prompts])
        if max(frames) >= video.shape[1] or min(frames) < -video.shape[1]:
            raise SystemExit(f"resolution_sheet: error: --frames {args.frames}: {path} makes {video.shape[1]} frames")
        clips.append(video)
        print(f"{path}: {video.shape[2]}x{video.shape[2]}, {video.shape[1]} frames", file=sys.stderr)
    largest = max(c.shape[2] for c in clips)
    if any(largest % c.shape[2] for c in clips):
        raise SystemExit("resolution_sheet: error: the models' sizes must divide the largest one (64, 128, 256)")
    image = sheet(clips, frames)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(args.out, optimize=True)
    print(f"wrote {args.out} ({image.shape[1]}x{image.shape[0]}): rows {prompts}, frames {frames} of each of "
          f"{', '.join(str(c.shape[2]) + ' px' for c in clips)}")


if __name__ == "__main__":
    main()
