"""What every command shares: reading the config (or saying why not), opening the database, the secrets logs
must hide, who acts, and the words for a platform's failure.

The command modules import the database, the daemon's parts and the classifier inside the commands that use
them: `carebot --help`, `classify` or `queue list` load only what they need (start-up is most of a short
command's time; tests/test_startup.py keeps it so).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from bot.config import Config, ConfigError, find_config_path, load_config

if TYPE_CHECKING:
    from bot.storage import Storage

# Exit statuses of every command.
OK, FAILED, BAD_USAGE = 0, 1, 2

# The secrets each kind of command uses (a section's secrets a command does not use may be unset).
NO_SECRETS: frozenset[str] = frozenset()
ALL_SECRETS = frozenset({"accounts", "web", "notify"})
MAX_ID = 2**31 - 1
MAX_LISTED = 1000


def add_config_option(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    # SUPPRESS: given after the command it wins; not given, the one before the command (if any) stays.
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="config file (default: $CAREBOT_CONFIG, then ./carebot.yaml)",
    )
    return parser


def record_id(what: str) -> Callable[[str], int]:
    """An argparse type: the id of a `what` (a reply, a case, an incident) as the database keeps it, 1 to
    2^31-1; anything else is a usage error rather than a database's overflow."""

    def parse(raw: str) -> int:
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_ID:
            raise argparse.ArgumentTypeError(f"not {what} id: {raw!r}")
        return int(raw)

    return parse


reply_id = record_id("a reply")
case_id = record_id("a case")
incident_id = record_id("an incident")


def how_many(raw: str) -> int:
    """An argparse type: how many to list, 1 to 1,000."""
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LISTED:
        raise argparse.ArgumentTypeError(f"not a number from 1 to {MAX_LISTED}: {raw!r}")
    return int(raw)


def known_accounts(config: Config, names: Iterable[str] | None) -> None:
    """ValueError naming any account the config does not have: a misspelt name would list nothing, and
    "nothing" would be believed."""
    unknown = [name for name in names or () if name not in {a.name for a in config.accounts}]
    if unknown:
        have = ", ".join(a.name for a in config.accounts)
        raise ValueError(f"no account {', '.join(unknown)} in the config (it has: {have})")


def load(args: argparse.Namespace, needs: frozenset[str] = ALL_SECRETS) -> Config | None:
    """The config named by --config, $CAREBOT_CONFIG or ./carebot.yaml; None (after saying why) if unusable.

    `needs`: the sections whose secrets this command uses; the others may be unset. Warnings (a secret
    written in the file) are printed and the config is used.
    """
    path = find_config_path(getattr(args, "config", None))
    try:
        config = load_config(path, needs=needs)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return config


def with_storage(args: argparse.Namespace, work: Callable[[Config, Storage], int]) -> int:
    """`work` with the config (no secrets read) and the database. A reply or case that is not there, one that
    changed meanwhile, a refused value or a database that cannot be used is said in one line: status 1."""
    config = load(args, needs=NO_SECRETS)
    if config is None:
        return BAD_USAGE
    from bot.storage import Conflict, DatabaseTrouble, NotFound

    storage = open_storage(config)
    if storage is None:
        return FAILED
    try:
        return work(config, storage)
    except (NotFound, Conflict, ValueError) as exc:
        print(f"carebot: {exc}", file=sys.stderr)
        return FAILED
    except DatabaseTrouble as exc:
        print(f"carebot: cannot use the database: {exc}", file=sys.stderr)
        return FAILED
    finally:
        storage.close()


def secrets_of(config: Config) -> list[str]:
    """Every value the log must never show: account credentials, the desk's token and cookie key, the webhook."""
    values = [value for account in config.accounts for value in account.secrets.values()]
    optional = [config.web.admin_token, config.web.secret_key, config.notify.webhook_url]
    return values + [v for v in optional if v]


def actor(args: argparse.Namespace) -> str:
    """Who is acting: --by, else the local user name."""
    if getattr(args, "by", None):
        return str(args.by)
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def fail(message: str, status: int = FAILED) -> int:
    print(f"carebot: {message}", file=sys.stderr)
    return status


def open_storage(config: Config) -> Storage | None:
    """The config's database, or None after one line saying why it cannot be used (see README, Operations)."""
    from bot.storage import DatabaseTrouble, Storage

    try:
        return Storage.open(config.storage.url)
    except DatabaseTrouble as exc:
        print(f"carebot: cannot use the database: {exc}", file=sys.stderr)
        return None
