"""Command-line tools (console scripts) and what they share."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from contextlib import contextmanager

# glibc mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8


def keep_freed_memory() -> bool:
    """Let the process keep the memory it frees (glibc: one arena, no mmap for large blocks, no
    trimming) instead of handing it back to the OS and faulting it in again on the next batch. CPU
    inference over large activations (I3D at 224x224x16) otherwise spends a quarter of its time in
    the kernel: on a 2-core Xeon, 2.3 M page faults and 6.2 s of system time per 64 clips, against
    1.2 M and 2.9 s with this, 10-25% less wall time, about 0.3 GB more peak memory. Glibc only (a
    no-op elsewhere); ``GAN_VIDEO_MALLOC=default`` switches it off. Returns whether it applied."""
    if os.environ.get("GAN_VIDEO_MALLOC") == "default" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return all(libc.mallopt(param, value) == 1 for param, value in
                   ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 1 << 40)))
    except (OSError, AttributeError):     # not glibc (musl has no mallopt)
        return False


@contextmanager
def one_line_errors(prog: str):
    """Turn the errors users cause (bad prompt, missing file, wrong config) into one line on stderr
    and exit status 2 (3 for a run that diverged, :class:`gan_video.health.NonFiniteError`);
    ``GAN_VIDEO_DEBUG=1`` shows the traceback instead."""
    try:
        yield
    except (ValueError, FileNotFoundError) as err:
        if os.environ.get("GAN_VIDEO_DEBUG"):
            raise
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2)
    except RuntimeError as err:
        from ..health import NonFiniteError

        if not isinstance(err, NonFiniteError) or os.environ.get("GAN_VIDEO_DEBUG"):
            raise
        print(f"{prog}: error: {err}", file=sys.stderr)    # a diverged run: exit status 3
        sys.exit(3)


def run_report_tool(prog: str, parser, evaluate, format_table, argv: list[str] | None = None) -> dict:
    """Parse ``argv``, run ``evaluate(args)`` with one-line errors, print ``format_table`` of the result
    and write it to ``--json`` when given."""
    import json

    args = parser.parse_args(argv)
    with one_line_errors(prog):
        res = evaluate(args)
    print(format_table(res))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=2)
    return res
