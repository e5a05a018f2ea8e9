"""`carebot run`, `check-config` and `status`: the bot itself, its config check, and what it has done.

`run --once` exits 0 when every account did its cycle (a pause to keep within the platform's rate limits
is not a failure) and 1 when any account failed: credentials refused, the platform unreachable or
answering errors, its plan's usage cap spent (for as long as the account stays paused for it).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import json
import logging
import os
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.cli.common import (
    ALL_SECRETS,
    BAD_USAGE,
    FAILED,
    OK,
    add_config_option,
    load,
    secrets_of,
    with_storage,
)
from bot.clock import format_duration, now
from bot.logs import configure_logging
from connectors.explain import explain

if TYPE_CHECKING:
    from bot.config import Config
    from bot.run.app import App
    from bot.storage import Storage


def register(sub: Any) -> None:
    run = add_config_option(sub.add_parser("run", help="run the bot: poll, classify, decide, send"))
    run.add_argument(
        "--once",
        action="store_true",
        help="one full cycle of every account, then exit (status 1 if any account failed: auth, unreachable, cap)",
    )
    run.add_argument("--web", action="store_true", help="also serve the approval desk (see `carebot web`)")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    run.set_defaults(func=cmd_run)

    check = add_config_option(sub.add_parser("check-config", help="validate the config and each account's credentials"))
    check.add_argument("--offline", action="store_true", help="do not contact the platforms")
    check.set_defaults(func=cmd_check_config)

    status = add_config_option(sub.add_parser("status", help="accounts: cursor, pauses, activity, estimated API spend"))
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)


def cmd_run(args: argparse.Namespace) -> int:
    needs = frozenset({"accounts", "notify"} | ({"web"} if args.web else set()))
    config = load(args, needs=needs)
    if config is None:
        return BAD_USAGE
    configure_logging("DEBUG" if args.verbose else config.daemon.log_level, secrets_of(config))
    # A crash in C (SIGBUS from a database file cut short under SQLite, say) still leaves a line in the log.
    with contextlib.suppress(ValueError, OSError, AttributeError):  # stderr without a file (a test's capture)
        faulthandler.enable()
    from bot.cli.web import start_ops_in_thread, start_web_in_thread
    from bot.run.app import App
    from bot.run.daemon import run_forever, run_once
    from bot.storage import DatabaseTrouble

    try:
        app = App.build(config)
        _refuse_read_only(app)
    except DatabaseTrouble as exc:
        print(f"carebot: cannot use the database: {exc}", file=sys.stderr)
        return FAILED
    except ValueError as exc:  # a model file from elsewhere that this carebot cannot read
        print(f"carebot: {exc}", file=sys.stderr)
        return BAD_USAGE
    try:
        if args.once:
            reports = run_once(app)
            for report in reports:
                error = report.error
                if report.failure is not None:
                    error = explain(report.failure, config.account(report.account).base_url)
                status = "ok"
                if report.failed:
                    status = f"failed ({report.failed})" + (f": {error}" if error else "")
                elif report.paused:
                    status = "paused"
                elif error:
                    status = f"error: {error}"
                print(
                    f"{report.account}: {report.fetched} read, {report.new} new, {report.sent.sent} sent, "
                    f"{report.sent.retried} to retry, {report.sent.parked} parked ({status})"
                )
                print(*first_run_notes(report), sep="\n", end="")
            return FAILED if any(r.failed or r.database_trouble for r in reports) else OK
        servers = []
        what = ""
        try:
            if config.metrics.port is not None:
                what = f"/metrics and /health on {config.metrics.host}:{config.metrics.port} (metrics.port)"
                servers.append(start_ops_in_thread(app))
            if args.web:
                what = f"the desk on {config.web.host}:{config.web.port} (web.port)"
                servers.append(
                    start_web_in_thread(config, app.storage, classifier=app.classifier, playbooks=app.playbooks)
                )
        except (ValueError, OSError) as exc:
            for server in servers:
                server.stop()
            # Which port, and its key: a second worker started with the same config meets the first one's.
            print(f"carebot: cannot start serving {what}: {exc}", file=sys.stderr)
            return BAD_USAGE
        try:
            run_forever(app)
        finally:
            for server in servers:
                server.stop()
        if app.watch.fatal is not None:
            print(f"carebot: stopped: {app.watch.fatal}", file=sys.stderr)
            return FAILED
        return OK
    finally:
        if not app.storage.db.safe_to_close:
            # SQLite would read the cut -shm file while closing, and die of SIGBUS: leave without closing.
            logging.shutdown()
            sys.stderr.flush()
            os._exit(FAILED)
        app.close()


def first_run_notes(report: Any) -> list[str]:
    """What a new account's first cycle should tell the person who started it."""
    if report.backfill_since is not None:
        since = report.backfill_since.isoformat(timespec="seconds")
        return [f"  backfill: answering mentions posted since {since} ({report.too_old} older ones skipped)\n"]
    if report.first_run:
        return [
            "  first run: mentions posted before now are not answered; carebot answers from now on.\n"
            "  To answer recent ones too, add `backfill: 24h` to the account: the next run reads them\n"
            "  (a mention is still answered at most once).\n"
        ]
    return []


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load(args, needs=ALL_SECRETS)
    if config is None:
        return BAD_USAGE
    print(f"{config.path}: configuration is valid ({len(config.accounts)} account(s))")
    from bot.web.passwords import weak_hash

    for user, line in config.web.users.items():
        if weak_hash(line):
            print(
                f"warning: web.users.{user}: the hash has an old, lower cost; make a new line with "
                "`carebot web hash-password`",
                file=sys.stderr,
            )
    if args.offline:
        return 0
    from bot.run.app import open_connector
    from connectors.base import ConnectorError

    failures = 0
    for account in config.accounts:
        try:
            connector = open_connector(account)
        except ConnectorError as exc:
            failures += 1
            print(f"{account.name}: {explain(exc, account.base_url)}", file=sys.stderr)
            continue
        try:
            info = connector.verify()
            print(
                f"{account.name}: ok, signed in as @{info.handle} on {account.base_url} "
                f"(limit {info.max_characters} characters)"
            )
        except ConnectorError as exc:
            failures += 1
            print(f"{account.name}: {explain(exc, account.base_url)}", file=sys.stderr)
        finally:
            connector.close()
    return 1 if failures else 0


def cmd_status(args: argparse.Namespace) -> int:
    """Each account: where it has read to, whether it is paused, what it has done and cost."""
    from bot.run.status import account_status, case_status

    def report(config: Config, storage: Storage) -> int:
        rows = [account_status(storage, account) for account in config.accounts]
        for row in rows:
            row["cases"] = case_status(config, storage, row["account"])
        _print_status(rows, as_json=args.json)
        return OK

    return with_storage(args, report)


def _print_status(rows: list[dict[str, Any]], as_json: bool) -> None:
    from bot.run.status import case_lines, set_aside_lines

    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for row in rows:
        paused = f", paused until {row['paused_until']} ({row['pause_reason']})" if row["paused_until"] else ""
        print(f"{row['account']} ({row['platform']}, {row['mode']}){paused}")
        print(f"  {cursor_line(row)}")
        if row.get("outage"):
            print(f"  OUTAGE, told the team: {row['outage']}")
        print(
            f"  mentions {row['mentions']} · replies sent {row['sent']} · waiting {row['waiting']}"
            f" · failed {row['failed']}"
        )
        if "billed" in row:
            print(_metered(row))
        else:
            print(
                f"  requests {row['requests']} · posts read {row['posts_read']} · posts created {row['posts_created']}"
                + (f" · estimated spend ${row['estimated_spend_usd']:.2f}" if row["estimated_spend_usd"] else "")
            )
        for line in set_aside_lines(row) + case_lines(row["cases"]):
            print(line)


BILLED_NAMES = {
    "owned_read": "owned reads",
    "post_read": "post reads",
    "user_read": "user reads",
    "post_created": "posts",
    "post_with_url": "posts with a link",
}


def _metered(row: dict[str, Any]) -> str:
    """The lines of a metered account: its plan, requests and billed objects, caps and spend."""
    billed = " · ".join(f"{BILLED_NAMES.get(kind, kind)} {count}" for kind, count in row["billed"].items())
    month = row["month"]
    month_billed = " · ".join(
        f"{BILLED_NAMES.get(kind, kind)} {count}" for kind, count in month.items() if kind not in ("since", "requests")
    )
    caps = " · ".join(
        f"{cap['what']} {cap['used']}" + (f"/{cap['limit']}" if cap["limit"] is not None else "") for cap in row["caps"]
    )
    lines = [
        f"  plan {row['plan']} · requests {row['requests']} · {billed}",
        f"  this month (since {month['since'][:10]}): requests {month['requests']} · {month_billed}",
        f"  caps: {caps}" + (f" · CAPPED: {row['capped']}" if row["capped"] else ""),
        f"  estimated spend at the {row['plan']} plan's prices: ${row['estimated_spend_month_usd']:.2f} this month "
        f"(its monthly fee included), ${row['estimated_spend_usd']:.2f} in all for what was billed per item",
    ]
    return "\n".join(lines)


def cursor_line(row: dict[str, Any]) -> str:
    """Where the account has read to, and when its last good cycle ended."""
    read = f"read up to {row['cursor']}" if row["cursor"] is not None else "not read yet (the first run starts then)"
    last = row.get("last_cycle_at")
    if not last:
        return f"cursor: {read}"
    ago = format_duration(now() - datetime.fromisoformat(last))
    return f"cursor: {read} · last good cycle {last} ({ago} ago)"


def _refuse_read_only(app: App) -> None:
    """A database that takes no writes will not start taking them by itself: say so now, not in the first
    cycle. Any other trouble (a full disk, a lock, a server away) the running daemon waits out."""
    from bot.storage import DatabaseTrouble

    try:
        app.storage.db.check_writable()
    except DatabaseTrouble as exc:
        if exc.kind == "read_only":
            raise
