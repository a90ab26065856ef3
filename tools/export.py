"""Export a checkpoint as safetensors + model card: see `python tools/export.py --help` (same as `gan-video-export`)."""
from gan_video.tools.export import main

if __name__ == "__main__":
    main()
