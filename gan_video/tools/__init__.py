"""Command-line tools (console scripts) and what they share."""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager


@contextmanager
def one_line_errors(prog: str):
    """Turn the errors users cause (bad prompt, missing file, wrong config) into one line on stderr
    and exit status 2; ``GAN_VIDEO_DEBUG=1`` shows the traceback instead."""
    try:
        yield
    except (ValueError, FileNotFoundError) as err:
        if os.environ.get("GAN_VIDEO_DEBUG"):
            raise
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2)
