"""Evaluate a checkpoint or two video folders: see `python tools/evaluate.py --help` (same as `gan-video-evaluate`)."""
from gan_video.tools.evaluate import main

if __name__ == "__main__":
    main()
