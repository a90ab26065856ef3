"""Pre-decode a video dataset to uint8 shards: see `python tools/prepare_dataset.py --help`."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_video.tools.prepare_dataset import main  # noqa: E402

if __name__ == "__main__":
    main()
