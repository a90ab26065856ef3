"""Command-line tools (console scripts) and what they share."""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager


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
