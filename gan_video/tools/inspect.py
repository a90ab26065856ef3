"""Say whether files are gan_video output: the provenance label in their metadata, and the watermark
in their pixels (which survives when the metadata has been stripped).

    gan-video-inspect samples/*.mp4 samples/*.gif [--key KEY] [--model HASH] [--json]

For each file: ``label:`` the metadata label (or ``none (metadata stripped?)``), ``watermark:`` the
detection from the pixels alone (score, threshold, the bound on a false positive, the model id it
carries and whether it matches the label's model). Videos are decoded with PyAV, GIFs and PNGs read
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


def inspect_file(path: str | os.PathLike, key: str | None = None, model: str | None = None) -> dict:
    """``{"file", "label", "watermark", "read_as", "size"}`` for one file: the watermark checked
    against ``model`` (a model hash), else the label's model hash. Raises FileNotFoundError or
    ValueError with a one-line message for a missing or unreadable file."""
    from ..provenance import detect_watermark, read_label

    label = read_label(path)
    frames, read_as = read_pixels(path)
    expected = model or (label.get("model_hash") if label else None)
    try:
        result = detect_watermark(frames, key=key, expected_id=expected)
    except ValueError:          # a label with a model_hash that is not hex: check the pixels alone
        result = detect_watermark(frames, key=key)
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
    if not w["detected"]:
        return (f"not detected (score {w['score']:.2f} < threshold {w['threshold']:.2f}; "
                "no gan_video watermark with this key, or it was destroyed)")
    text = (f"DETECTED: made by gan_video (score {w['score']:.2f} >= {w['threshold']:.2f}; an unmarked "
            f"clip scores this high with probability <= {w['p_bound']:.1e}), model id {w['model_id']:04x} "
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
    failed = 0
    for path in args.files:
        try:
            info = inspect_file(path, key=args.key, model=args.model)
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
