"""`carebot forget`: erase one person's data on request (a GDPR erasure request), and `carebot audit`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from bot.cli.common import (
    BAD_USAGE,
    FAILED,
    NO_SECRETS,
    OK,
    actor,
    add_config_option,
    fail,
    how_many,
    load,
    open_storage,
    with_storage,
)
from connectors import platform_names

if TYPE_CHECKING:
    from bot.config import Config
    from bot.storage import Storage


def register(sub: Any) -> None:
    forget = add_config_option(
        sub.add_parser(
            "forget",
            help="erase one person's posts, cases and our replies to them (an erasure request)",
            description=(
                "Erase everything stored of one author: their posts' texts and their identity on them, our "
                "replies to them (unsent ones are cancelled), their cases and history, the team's decisions "
                "about their posts, alerts and set-aside posts. Each post stays as an empty tombstone so that "
                "it is never answered again, and an opt-out stays (without the handle). One audit line, "
                "without the handle, records it (carebot audit)."
            ),
        )
    )
    forget.add_argument("--author", required=True, metavar="HANDLE", help="their handle, with or without @")
    forget.add_argument("--platform", choices=platform_names(), help="only on this platform (default: all)")
    forget.add_argument("--dry-run", action="store_true", help="say what would be erased, change nothing")
    forget.add_argument("--by", default=None, help="who asks (default: your user name); kept in the audit line")
    forget.set_defaults(func=cmd_forget)

    audit = add_config_option(sub.add_parser("audit", help="what was erased or masked, when and by whom"))
    audit.add_argument("--limit", type=how_many, default=50, help="how many, 1 to 1,000 (default 50)")
    audit.set_defaults(func=cmd_audit)


def cmd_forget(args: argparse.Namespace) -> int:
    config = load(args, needs=NO_SECRETS)  # the database only: no platform is asked
    if config is None:
        return BAD_USAGE
    from bot.run.privacy import forget
    from bot.storage import Conflict

    storage = open_storage(config)
    if storage is None:
        return FAILED
    try:
        erased = forget(storage, args.author, actor(args), platform=args.platform, apply=not args.dry_run)
    except ValueError as exc:
        return fail(str(exc), BAD_USAGE)
    except Conflict as exc:
        return fail(f"nothing erased: {exc}")
    finally:
        storage.close()
    if not (erased.posts or erased.cases or erased.set_aside):
        print("Nothing is stored of that author.")
        return OK
    if args.dry_run:
        print(f"Would erase: {erased.summary()}. Nothing changed (run without --dry-run to erase).")
    else:
        print(f"Erased: {erased.summary()}. Recorded in the audit (carebot audit), without the handle.")
    return OK


def cmd_audit(args: argparse.Namespace) -> int:
    def show(_config: Config, storage: Storage) -> int:
        lines = storage.privacy.audit_lines(limit=args.limit)
        if not lines:
            print("Nothing erased or masked yet.")
            return OK
        for line in lines:
            print(f"{line.at.isoformat(timespec='seconds')} {line.action} by {line.actor}: {line.detail}")
        return OK

    return with_storage(args, show)
