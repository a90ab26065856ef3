"""Export a trained checkpoint as a shareable model: safetensors weights and a JSON model card.

    gan-video-export --checkpoint runs/shapes/checkpoints/last.ckpt --out exports/shapes \\
        [--metrics eval.json] [--force]

Writes ``OUT/model.safetensors`` (the EMA generator and its EMA text encoder) and
``OUT/model_card.json`` (the config that rebuilds them, the data config, training length, the
weights' sha256, gan_video's version and the measured metrics known: the run's logged ``eval/*`` and
``align/*`` values up to this checkpoint, plus a ``gan-video-evaluate --json`` report if given).
``gan_video.load(OUT)`` and ``gan-video-sample --checkpoint OUT`` read it without any pickle.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from . import one_line_errors


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gan-video-export", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a .ckpt written by `gan-video fit`")
    p.add_argument("--out", required=True, help="the export folder to write")
    p.add_argument("--metrics", default=None,
                   help="a `gan-video-evaluate --json` (or `gan-video-alignment --json`) report to record "
                        "in the model card")
    p.add_argument("--force", action="store_true", help="replace an export already in --out")
    return p


def run(args) -> dict:
    from ..export import export_model

    return export_model(args.checkpoint, args.out, metrics=args.metrics, overwrite=args.force)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with one_line_errors("gan-video-export"):
        card = run(args)
    w = card["weights"]
    print(f"exported {card['description']} ({sum(w['parameters'].values()):,} parameters, "
          f"{len(card['metrics'])} metrics) to {Path(args.out).resolve()}: model.safetensors "
          f"(sha256 {w['sha256'][:16]}...), model_card.json")


if __name__ == "__main__":
    main()
