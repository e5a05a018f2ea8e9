"""The `carebot` command. Every subcommand returns an exit status; only `main` exits.

Exit statuses: 0 success, 1 the work failed (e.g. credentials refused), 2 bad usage or a bad config.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from bot import __version__, cli_queue, cli_web
from bot.config import Config, ConfigError, find_config_path, load_config
from bot.logs import configure_logging


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
    """Every value the log must never show."""
    return [value for account in config.accounts for value in account.secrets.values()] + cli_web.web_secrets(config)


def cmd_run(args: argparse.Namespace) -> int:
    config = load(args)
    if config is None:
        return 2
    configure_logging("DEBUG" if args.verbose else config.daemon.log_level, secrets_of(config))
    from bot.app import App
    from bot.daemon import run_forever, run_once

    app = App.build(config)
    try:
        if args.once:
            reports = run_once(app)
            for report in reports:
                status = "paused" if report.paused else (f"error: {report.error}" if report.error else "ok")
                print(
                    f"{report.account}: {report.fetched} read, {report.new} new, {report.sent.sent} sent, "
                    f"{report.sent.retried} to retry, {report.sent.parked} parked ({status})"
                )
            return 0
        web = None
        if args.web:
            try:
                web = cli_web.start_web_in_thread(
                    config, app.storage, classifier=app.classifier, playbooks=app.playbooks
                )
            except (ValueError, OSError) as exc:
                print(f"carebot: cannot start the web page: {exc}", file=sys.stderr)
                return 2
        try:
            run_forever(app)
        finally:
            if web is not None:
                web.stop()
        return 0
    finally:
        app.close()


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load(args)
    if config is None:
        return 2
    print(f"{config.path}: configuration is valid ({len(config.accounts)} account(s))")
    if args.offline:
        return 0
    from bot.app import open_connector
    from connectors.base import ConnectorError

    failures = 0
    for account in config.accounts:
        try:
            connector = open_connector(account)
        except ConnectorError as exc:
            failures += 1
            print(f"{account.name}: {exc}", file=sys.stderr)
            continue
        try:
            info = connector.verify()
            print(
                f"{account.name}: ok, signed in as @{info.handle} on {account.base_url} "
                f"(limit {info.max_characters} characters)"
            )
        except ConnectorError as exc:
            failures += 1
            print(f"{account.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            connector.close()
    return 1 if failures else 0


def cmd_status(args: argparse.Namespace) -> int:
    """Each account: where it has read to, whether it is paused, what it has done and cost."""
    config = load(args)
    if config is None:
        return 2
    from bot.spend import account_status
    from bot.storage import Storage

    storage = Storage.open(config.storage_url)
    try:
        rows = [account_status(storage, account) for account in config.accounts]
    finally:
        storage.close()
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    for row in rows:
        paused = f", paused until {row['paused_until']} ({row['pause_reason']})" if row["paused_until"] else ""
        print(f"{row['account']} ({row['platform']}, {row['mode']}){paused}")
        print(
            f"  mentions {row['mentions']} · replies sent {row['sent']} · waiting {row['waiting']}"
            f" · failed {row['failed']}"
        )
        print(
            f"  requests {row['requests']} · posts read {row['posts_read']} · posts created {row['posts_created']}"
            + (f" · estimated spend ${row['estimated_spend_usd']:.2f}" if row["estimated_spend_usd"] else "")
        )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    return run_demo(keep=args.keep, verbose=args.verbose)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carebot", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"carebot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", metavar="PATH", help="config file (default: $CAREBOT_CONFIG, ./carebot.yaml)")
        return p

    run = with_config(sub.add_parser("run", help="run the bot: poll, classify, decide, send"))
    run.add_argument("--once", action="store_true", help="one full cycle of every account, then exit")
    run.add_argument("--web", action="store_true", help="also serve the approval desk (see `carebot web`)")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    run.set_defaults(func=cmd_run)

    check = with_config(sub.add_parser("check-config", help="validate the config and each account's credentials"))
    check.add_argument("--offline", action="store_true", help="do not contact the platforms")
    check.set_defaults(func=cmd_check_config)

    status = with_config(sub.add_parser("status", help="accounts: cursor, pauses, activity, estimated API spend"))
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    demo = sub.add_parser("demo", help="run carebot against a local Mastodon server with sample mentions")
    demo.add_argument("--keep", metavar="DIR", help="keep the demo's database and config in DIR")
    demo.add_argument("-v", "--verbose", action="store_true", help="show the bot's log")
    demo.set_defaults(func=cmd_demo)

    cli_queue.register(sub, with_config)
    cli_web.register(sub, with_config)
    from bot import cli_classify

    cli_classify.register(sub)
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
