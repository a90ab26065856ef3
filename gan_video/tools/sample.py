"""Write clips for prompts from a trained checkpoint.

    gan-video-sample --checkpoint runs/shapes/checkpoints/last.ckpt \\
        --prompt "a red circle moving left" --prompt "a blue square moving up" \\
        --num-samples 2 --seed 0 --out samples/ [--gif]

One H.264 mp4 (yuv420p) per clip, optionally a GIF beside it, and ``OUT/manifest.jsonl`` with one
row per clip: ``{"file", "prompt", "seed", "frames_sha1", ...}``. Clip ``j`` of prompt ``i`` uses
seed ``seed + i * num_samples + j``: the same seed gives the same frames (``frames_sha1`` is the hash
of the uint8 frames before encoding; the lossy H.264 file itself may differ by a level here and there).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
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


def slug(text: str, n: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:n] or "prompt"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gan-video-sample", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a .ckpt written by `gan-video fit`")
    p.add_argument("--prompt", action="append", help="a caption; repeat for several")
    p.add_argument("--prompts-file", help="a text file with one prompt per line (# comments)")
    p.add_argument("--num-samples", type=int, default=1, help="clips per prompt")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--out", default="samples", help="output folder")
    p.add_argument("--frames", type=int, default=None, help="clip length (default: the model's)")
    p.add_argument("--fps", type=int, default=8)
    p.add_argument("--gif", action="store_true", help="also write a GIF per clip")
    p.add_argument("--no-ema", action="store_true", help="sample the trained generator, not its EMA")
    p.add_argument("--device", default="cpu")
    return p


def run(args) -> list[dict]:
    import numpy as np

    from ..data.io import to_uint8, write_gif, write_mp4
    from ..module import load_model

    prompts = read_prompts(args)
    if args.num_samples < 1:
        raise ValueError(f"--num-samples must be >= 1, got {args.num_samples}")
    model = load_model(args.checkpoint, map_location=args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(p, args.seed + i * args.num_samples + j, i, j)
            for i, p in enumerate(prompts) for j in range(args.num_samples)]
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        # one clip per forward pass: a clip is then bit-identical whatever else is sampled with it
        # (batched convolutions may round differently), and the generator is cheap at batch 1
        video = model.generate([j[0] for j in jobs], [j[1] for j in jobs], ema=not args.no_ema,
                               frames=args.frames, batch_size=1)
    rows = []
    for (prompt, seed, i, j), clip in zip(jobs, to_uint8(video)):
        name = f"{i:03d}_{slug(prompt)}_s{seed}"
        write_mp4(out / f"{name}.mp4", clip, fps=args.fps)
        # the exact same-seed check is on the frames; the mp4 bytes are not reproducible (see io.write_mp4)
        row = {"file": f"{name}.mp4", "prompt": prompt, "seed": seed,
               "frames": int(clip.shape[0]), "height": int(clip.shape[1]), "width": int(clip.shape[2]),
               "frames_sha1": hashlib.sha1(np.ascontiguousarray(clip).tobytes()).hexdigest()}
        if args.gif:
            write_gif(out / f"{name}.gif", clip, fps=args.fps)
            row["gif"] = f"{name}.gif"
        rows.append(row)
    with open(out / "manifest.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return rows


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with one_line_errors("gan-video-sample"):
        rows = run(args)
    print(f"wrote {len(rows)} clips and manifest.jsonl to {Path(args.out).resolve()}")


if __name__ == "__main__":
    main()
