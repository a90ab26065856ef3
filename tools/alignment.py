"""Text-alignment accuracy of a checkpoint: see `python tools/alignment.py --help` (same as `gan-video-alignment`)."""
from gan_video.tools.alignment import main

if __name__ == "__main__":
    main()
