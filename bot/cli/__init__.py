"""The `carebot` command: answers a brand's Mastodon and X mentions, with a queue for people to approve.

Every subcommand returns an exit status; only `main` exits.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from bot import __version__
from bot.cli import cases, classify, demo, history, incidents, privacy, queue, run, setup, web

DESCRIPTION = """\
carebot answers a brand's Mastodon and X mentions the way a good support lead would: it reads them,
works out what each person needs, replies in their language, and keeps anything that needs a person
in an approval queue (the command line, or the web desk).
"""

EPILOG = """\
examples:
  carebot init                          write a documented carebot.yaml to start from
  carebot check-config                  check the config and sign in to each account
  carebot run --once                    one cycle: read, classify, decide, send; then exit
  carebot run --web                     keep running, with the approval desk next to it
  carebot queue list                    what waits for a person
  carebot queue approve 12 --text "..."
  carebot history --show sent           what was sent, and who decided
  carebot demo                          try it all against a local Mastodon server

the config file:
  --config PATH (before or after the command), else $CAREBOT_CONFIG, else ./carebot.yaml.
  Secrets come from the environment (${VAR}) or from files (<key>_file: PATH); each command reads
  only the secrets it uses.

exit status:
  0  done
  1  the work failed (e.g. a platform refused the credentials, a reply changed meanwhile)
  2  bad usage or a bad config (each problem is printed as file:line: key: what is wrong)
  130  interrupted (Ctrl+C)

Run `carebot COMMAND --help` for a command's own options.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="carebot",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"carebot {__version__}")
    parser.add_argument(
        "--config", metavar="PATH", default=None, help="config file (default: $CAREBOT_CONFIG, then ./carebot.yaml)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (setup, run, queue, cases, incidents, history, privacy, web, classify, demo):
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # here, where a reader that left is heard of, rather than at the interpreter's exit
        return status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader left (`carebot history | head`): the rest is not wanted, and neither is a traceback,
        # nor one more when Python flushes standard output on its way out.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
