"""The `carebot` command. Every subcommand returns an exit status; only `main` exits.

Exit statuses: 0 success, 1 the work failed (e.g. credentials refused), 2 bad usage or a bad config.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bot import __version__
from bot.cli import cases, classify, demo, incidents, queue, run, web


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carebot", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--version", action="version", version=f"carebot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (run, queue, cases, incidents, web, classify, demo):
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
