"""`carebot init`: write the documented example config to start from."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bot.cli.common import BAD_USAGE, OK, fail
from bot.config import DEFAULT_PATH, EXAMPLE


def register(sub: Any) -> None:
    init = sub.add_parser(
        "init",
        help="write a documented config (every key, with its default) to start from",
        description="Write carebot's documented example config to PATH (default ./carebot.yaml); never overwrites.",
    )
    init.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH, help="where to write it (./carebot.yaml)")
    init.set_defaults(func=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    path: Path = args.path
    if path.exists():
        return fail(f"{path} exists already: edit it, or give another path", BAD_USAGE)
    try:
        path.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    except OSError as exc:
        return fail(f"cannot write {path}: {exc.strerror or exc}", BAD_USAGE)
    print(f"wrote {path}. Next: fill in brand and accounts (secrets as ${{VAR}} or <key>_file), then")
    print(f"  carebot check-config{'' if path == DEFAULT_PATH else f' --config {path}'}")
    return OK
