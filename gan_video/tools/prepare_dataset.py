"""``python tools/prepare_dataset.py --root VIDEOS --out SHARDS --size 64``: pre-decode a video dataset
to memory-mapped uint8 shards (see :mod:`gan_video.data.shards`), then train with
``--data.init_args.format shards --data.init_args.root SHARDS``."""
from __future__ import annotations

import argparse
import json

from . import one_line_errors


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="prepare_dataset", description=__doc__.split("\n\n")[0].strip("`"))
    p.add_argument("--root", help="dataset folder (class folders, frame folders, strips; or the folder "
                                  "a caption file's paths are relative to)")
    p.add_argument("--out", required=True, help="shard folder to write")
    p.add_argument("--size", type=int, default=64, help="frame size: short side resized to it, centre "
                                                       "crop (use the training resolution)")
    p.add_argument("--format", default="auto", choices=["auto", "captions", "classes", "frames", "strips"])
    p.add_argument("--caption-file", help="CSV or JSONL of path,caption[,start,end] rows")
    p.add_argument("--class-captions", help="JSON file mapping class folder names to captions")
    p.add_argument("--templates", nargs="+", help="caption templates for class captions, e.g. 'a video of {}'")
    p.add_argument("--classes", nargs="+", help="only these class folders")
    p.add_argument("--min-frames", type=int, default=1, help="skip shorter videos (e.g. the training "
                                                             "clip span, (frames-1)*stride+1)")
    p.add_argument("--max-frames", type=int, help="keep only the first frames of longer videos")
    p.add_argument("--shard-mb", type=int, default=1024, help="approximate size of one shard file")
    p.add_argument("--workers", type=int, default=0, help="decoding processes")
    p.add_argument("--overwrite", action="store_true", help="replace shards already in --out")
    p.add_argument("--json", help="write the result summary here")
    args = p.parse_args(argv)
    from ..data.prepare import prepare_dataset

    with one_line_errors("prepare_dataset"):
        try:
            res = prepare_dataset(args.out, args.root, args.size, args.format, args.caption_file,
                                  args.class_captions, args.templates, args.classes, args.min_frames,
                                  args.max_frames, args.shard_mb, args.workers, args.overwrite)
        except FileExistsError as err:
            raise ValueError(str(err)) from None
        print(f"wrote {res['videos']} videos, {res['frames']} frames ({res['bytes'] / 2**20:.1f} MiB) "
              f"in {res['shards']} shard(s) to {res['out']}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
