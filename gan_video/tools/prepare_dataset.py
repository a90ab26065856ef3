"""``gan-video-prepare --root VIDEOS --out PREPARED --size 64``: decode a video dataset once, fit its
frames to the training size and store them compressed as LitData chunks, in a folder or under
``s3://bucket/prefix`` (see :mod:`gan_video.data.streaming`); then train with
``--data.init_args.root PREPARED`` (the format is detected)."""
from __future__ import annotations

import argparse
import json

from . import one_line_errors


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="prepare_dataset", description=__doc__.split("\n\n")[0].strip("`"))
    p.add_argument("--root", help="dataset folder (class folders, frame folders, strips; or the folder "
                                  "a caption file's paths are relative to)")
    p.add_argument("--out", required=True, help="folder or s3://bucket/prefix to write the prepared dataset to")
    p.add_argument("--size", type=int, default=64, help="frame size: short side resized to it, centre "
                                                       "crop (use the training resolution)")
    p.add_argument("--format", default="auto", choices=["auto", "captions", "classes", "frames", "strips", "shards"],
                   help="layout of --root (shards: a folder of an older gan_video's .npy shards, to convert)")
    p.add_argument("--caption-file", help="CSV or JSONL of path,caption[,start,end] rows")
    p.add_argument("--class-captions", help="JSON file mapping class folder names to captions")
    p.add_argument("--templates", nargs="+", help="caption templates for class captions, e.g. 'a video of {}'")
    p.add_argument("--classes", nargs="+", help="only these class folders")
    p.add_argument("--min-frames", type=int, default=1, help="skip shorter videos (e.g. the training "
                                                             "clip span, (frames-1)*stride+1)")
    p.add_argument("--max-frames", type=int, help="keep only the first frames of longer videos")
    p.add_argument("--quality", type=int, default=95, help="WebP quality of the stored frames (1-100)")
    p.add_argument("--chunk-mb", type=float, default=64, help="approximate size of one LitData chunk")
    p.add_argument("--workers", type=int, default=0, help="encoding processes (0: one per CPU core)")
    p.add_argument("--overwrite", action="store_true", help="replace a prepared dataset already in --out")
    p.add_argument("--json", help="write the result summary here")
    args = p.parse_args(argv)
    from ..data.prepare import prepare_dataset

    with one_line_errors("prepare_dataset"):
        try:
            res = prepare_dataset(args.out, args.root, args.size, args.format, args.caption_file,
                                  args.class_captions, args.templates, args.classes, args.min_frames,
                                  args.max_frames, args.workers, args.overwrite, quality=args.quality,
                                  chunk_mb=args.chunk_mb)
        except FileExistsError as err:
            raise ValueError(str(err)) from None
        print(f"wrote {res['videos']} videos, {res['frames']} frames in {res['bytes'] / 2**20:.1f} MiB "
              f"({res['raw_bytes'] / max(res['bytes'], 1):.1f}x smaller than raw uint8) to {res['out']}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
