"""What every command shares: reading the config (or saying why not), the secrets logs must hide, who acts."""

from __future__ import annotations

import argparse
import getpass
import sys

from bot.config import Config, ConfigError, find_config_path, load_config

# Exit statuses of every command.
OK, FAILED, BAD_USAGE = 0, 1, 2


def add_config_option(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--config", metavar="PATH", help="config file (default: $CAREBOT_CONFIG, ./carebot.yaml)")
    return parser


def load(args: argparse.Namespace) -> Config | None:
    """The config named by --config, $CAREBOT_CONFIG or ./carebot.yaml; None (after saying why) if unusable."""
    path = find_config_path(getattr(args, "config", None))
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


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
