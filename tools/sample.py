"""Write sample clips from a checkpoint: see `python tools/sample.py --help` (same as `gan-video-sample`)."""
from gan_video.tools.sample import main

if __name__ == "__main__":
    main()
