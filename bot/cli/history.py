"""`carebot history`: the replies that were sent or rejected, newest first, and who decided."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import TYPE_CHECKING, Any

from bot import classifier  # its names load on first use: only a command that masks a post pays for it
from bot.cli.common import OK, add_config_option, how_many, known_accounts, reply_id, with_storage
from bot.config import Config

if TYPE_CHECKING:
    from bot.storage import Storage
    from bot.storage.records import HistoryRow

LIMIT = 20
SHOWN = {"all": ("sent", "rejected"), "sent": ("sent",), "rejected": ("rejected",)}


def register(sub: Any) -> None:
    history = add_config_option(
        sub.add_parser("history", help="replies that were sent or rejected, newest first, and who decided")
    )
    history.add_argument("--show", choices=tuple(SHOWN), default="all", help="sent, rejected or all (default)")
    history.add_argument("--account", action="append", metavar="NAME", help="only this account (repeatable)")
    history.add_argument("--limit", type=how_many, default=LIMIT, help=f"how many, 1 to 1,000 (default {LIMIT})")
    history.add_argument("--before", type=reply_id, metavar="ID", help="older than this reply (to page back)")
    history.add_argument("--json", action="store_true", help="one JSON document, for scripts")
    history.set_defaults(func=cmd_history)


def row_json(row: HistoryRow) -> dict[str, Any]:
    return {
        "id": row.reply_id,
        "state": row.state,
        "kind": row.kind,
        "account": row.account,
        "platform": row.platform,
        "author": row.author_handle,
        "situation": row.situation,
        "lang": row.lang,
        "post": classifier.mask_personal_data(row.post),
        "text": row.text,
        "decided_by": row.decided_by,
        "approved_by": row.approved_by if row.state != "rejected" else None,
        "rejected_by": row.approved_by if row.state == "rejected" else None,
        "rejected_reason": row.rejected_reason,
        "when": row.when.isoformat(),
        "platform_post_id": row.platform_post_id,
    }


def who(row: HistoryRow) -> str:
    if row.state == "rejected":
        reason = f": {row.rejected_reason}" if row.rejected_reason else ""
        return f"rejected by {row.approved_by or 'the bot'}{reason}"
    if row.approved_by:
        text_by = f", text by {row.decided_by}" if row.decided_by != "auto" else ""
        return f"sent after approval by {row.approved_by}{text_by}"
    return "sent by the bot on its own (a vetted template)"


def cmd_history(args: argparse.Namespace) -> int:
    rows: list[HistoryRow] = []

    def read(config: Config, storage: Storage) -> int:
        known_accounts(config, args.account)
        rows.extend(storage.replies.history(SHOWN[args.show], args.before, args.limit, args.account))
        return OK

    status = with_storage(args, read)
    if status != OK:
        return status
    if args.json:
        json.dump([row_json(r) for r in rows], sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    if not rows:
        print("Nothing was sent or rejected yet." if args.before is None else "Nothing older.")
        return 0
    for row in rows:
        kind = "private message" if row.kind == "direct" else "reply"
        print(
            f"#{row.reply_id} {row.state} {row.when:%Y-%m-%d %H:%M} UTC · {row.account} · to @{row.author_handle}"
            f" · {row.situation} ({row.lang})"
        )
        print(f"  post:  {classifier.mask_personal_data(row.post)}")
        print(f"  {kind}: {row.text}")
        print(f"  {who(row)}")
        print()
    if len(rows) == args.limit:
        print(f"Older: carebot history{_same_filters(args)} --before {rows[-1].reply_id}")
    return 0


def _same_filters(args: argparse.Namespace) -> str:
    """The options of this listing, for the command that pages back through the same one."""
    words = [] if args.show == "all" else [f"--show {args.show}"]
    words += [f"--account {shlex.quote(name)}" for name in args.account or ()]
    if args.limit != LIMIT:
        words.append(f"--limit {args.limit}")
    if getattr(args, "config", None):
        words.append(f"--config {shlex.quote(args.config)}")
    return "".join(f" {word}" for word in words)
