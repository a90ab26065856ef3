"""Say whether files are gan_video output: the provenance label in their metadata, and the watermark
in their pixels (which survives when the metadata has been stripped).

    gan-video-inspect samples/*.mp4 samples/*.gif [--key KEY] [--model HASH] [--size N] [--json]

For each file: ``label:`` the metadata label (or ``none (metadata stripped?)``), ``watermark:`` the
detection from the pixels alone (score, threshold, the bound on a false positive, the model id it
carries and whether it matches the label's model), and the geometry it was found at: a clip that
was rescaled or trimmed after it was made is tested as rescaled from each size gan_video makes (64,
128, 256 and ``--size``) and as cut by up to 8 px per side, the false-positive bound shared over
every geometry tried. Videos are decoded with PyAV, GIFs and PNGs read
with Pillow; a PNG whose width is a whole multiple of its height is read as a strip of square frames
(what ``gan_video.save(..., formats=["png"])`` writes). A missing or unreadable file gives one error
line; the exit status is then 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gan-video-inspect", description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", metavar="FILE", help="mp4 (or other video), GIF or PNG files")
    p.add_argument("--key", default=None, help="watermark key (default: the project's public key)")
    p.add_argument("--model", default=None, metavar="HASH",
                   help="check the pixels against this model hash (hex; default: the label's model_hash). "
                        "A loaded model's hash: gan_video.provenance.model_hash(gan_video.load(PATH))")
    p.add_argument("--size", type=int, action="append", default=[], metavar="N",
                   help="a frame size (N x N) the model made besides 64, 128 and 256 (repeatable)")
    p.add_argument("--json", action="store_true", help="one JSON object per file instead of text")
    return p


def read_pixels(path: str | os.PathLike) -> tuple[np.ndarray, str]:
    """The frames of a video, GIF or PNG as uint8 ``[T, H, W, 3]`` and how they were read."""
    from ..data.io import read_video
    from ..provenance import file_kind

    kind = file_kind(path)
    if kind == "video":
        try:
            frames = read_video(path)
        except Exception as err:  # PyAV raises its own error classes for undecodable input
            raise ValueError(f"cannot decode {str(path)!r} as a video: {err}") from None
        return frames, f"{len(frames)} frames"
    from PIL import Image, ImageSequence

    try:
        with Image.open(path) as im:
            frames = np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)])
    except (OSError, ValueError, SyntaxError) as err:
        raise ValueError(f"cannot read {str(path)!r} as a {kind.upper()}: {err}") from None
    if kind == "png":
        h, w = frames.shape[1:3]
        if w % h == 0 and w // h > 1:
            frames = frames[0].reshape(h, w // h, h, 3).transpose(1, 0, 2, 3)
            return np.ascontiguousarray(frames), f"a strip of {w // h} frames"
    return frames, f"{len(frames)} frame{'s' if len(frames) > 1 else ''}"


def inspect_file(path: str | os.PathLike, key: str | None = None, model: str | None = None,
                 sizes: tuple = ()) -> dict:
    """``{"file", "label", "watermark", "read_as", "size"}`` for one file: the watermark checked
    against ``model`` (a model hash), else the label's model hash. Raises FileNotFoundError or
    ValueError with a one-line message for a missing or unreadable file."""
    from ..provenance import detect_watermark, read_label

    label = read_label(path)
    frames, read_as = read_pixels(path)
    expected = model or (label.get("model_hash") if label else None)
    try:
        result = detect_watermark(frames, key=key, expected_id=expected, sizes=sizes)
    except ValueError:          # a label with a model_hash that is not hex: check the pixels alone
        result = detect_watermark(frames, key=key, sizes=sizes)
    return {"file": str(path), "label": label, "watermark": result.as_dict(), "read_as": read_as,
            "size": [int(frames.shape[2]), int(frames.shape[1])]}


def describe_label(label: dict | None) -> str:
    if label is None:
        return "none (no gan_video metadata: never labelled, or stripped by a re-encode or an editor)"
    wm = label.get("watermark") or {}
    bits = [f"synthetic={str(label.get('synthetic')).lower()}",
            f"generator={label.get('generator')} {label.get('generator_version', '')}".rstrip(),
            f"model={label.get('model_hash')}", f"seed={label.get('seed')}",
            f"prompt={json.dumps(label.get('prompt'))}",
            f"watermark={'yes (model id ' + str(wm.get('model_id')) + ', key ' + str(wm.get('key')) + ')' if wm else 'no'}"]
    return " ".join(bits)


def describe_watermark(w: dict, source: str = "label's") -> str:
    if w.get("note"):
        return f"not checked: {w['note']}"
    tried = f"{w.get('hypotheses', 1)} geometr{'y' if w.get('hypotheses', 1) == 1 else 'ies'} tried"
    if not w["detected"]:
        return (f"not detected (best fit {w.get('geometry', 'as is')}: score {w['score']:.2f} < threshold "
                f"{w['threshold']:.2f}, {tried}; no gan_video watermark with this key, or it was destroyed)")
    text = (f"DETECTED: made by gan_video, found {w.get('geometry', 'as is')} (score {w['score']:.2f} >= "
            f"{w['threshold']:.2f}, {tried}; an unmarked clip looks this marked under any of them with "
            f"probability <= {w['p_bound']:.1e}), model id {w['model_id']:04x} "
            f"(weakest id bit {w['id_confidence']:.1f}; under ~2 the id may be misread)")
    if w.get("expected_id") is not None:
        verdict = "matches" if w["id_match"] else "does not match"
        text += (f"; the {source} model {w['expected_id']:04x} {verdict} the pixels "
                 f"(id score {w['id_score']:.2f})")
    return text


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.model is not None:
        from ..provenance import model_id_of

        try:
            model_id_of(args.model)
        except ValueError as err:
            print(f"gan-video-inspect: error: --model: {err}", file=sys.stderr)
            sys.exit(2)
    from ..watermark import MIN_SIZE

    if any(n < MIN_SIZE for n in args.size):
        print(f"gan-video-inspect: error: --size {min(args.size)}: a watermarked frame is at least "
              f"{MIN_SIZE}x{MIN_SIZE} (give the N of the model's N x N clips)", file=sys.stderr)
        sys.exit(2)
    failed = 0
    for path in args.files:
        try:
            info = inspect_file(path, key=args.key, model=args.model, sizes=tuple(args.size))
        except (FileNotFoundError, ValueError) as err:
            if os.environ.get("GAN_VIDEO_DEBUG"):
                raise
            print(f"gan-video-inspect: error: {err}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            print(json.dumps(info))
        else:
            print(f"{Path(path)} ({info['size'][0]}x{info['size'][1]}, {info['read_as']})")
            print(f"  label: {describe_label(info['label'])}")
            source = "given" if args.model else "label's"
            print(f"  watermark: {describe_watermark(info['watermark'], source)}")
        sys.stdout.flush()
    if failed:
        sys.exit(2)


if __name__ == "__main__":
    main()
