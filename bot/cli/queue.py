"""`carebot queue ...`: work the approval queue from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from bot import classifier  # its names load on first use: only a command that masks a post pays for it
from bot.cli.common import OK, actor, add_config_option, reply_id, with_storage
from bot.clock import format_duration, now
from bot.config import Config
from bot.models import PURPOSE_LABELS, ReplyState

if TYPE_CHECKING:
    from bot.storage import Storage
    from bot.storage.records import QueueItem


def register(sub: Any) -> None:
    with_config = add_config_option
    queue = sub.add_parser("queue", help="replies waiting for a person: list, approve, unapprove, reject, retry")
    actions = queue.add_subparsers(dest="queue_command", required=True, metavar="ACTION")

    listing = with_config(actions.add_parser("list", help="pending and failed replies, most urgent first"))
    listing.add_argument("--json", action="store_true", help="one JSON document, for scripts")
    listing.set_defaults(func=cmd_list)

    approve = with_config(
        actions.add_parser("approve", help="approve a reply (and its private follow-up); the next cycle posts it")
    )
    approve.add_argument("id", type=reply_id)
    approve.add_argument("--text", help="post this text instead of the draft")
    approve.add_argument("--direct-text", help="send this private follow-up instead of its draft")
    approve.add_argument("--by", default=None, help="who approves (default: your user name)")
    approve.add_argument(
        "--accept-cost",
        action="store_true",
        help="send it even though it costs more than a plain reply (on X: it carries a link)",
    )
    approve.set_defaults(func=cmd_approve)

    unapprove = with_config(actions.add_parser("unapprove", help="take an approval back before the reply is sent"))
    unapprove.add_argument("id", type=reply_id)
    unapprove.add_argument("--by", default=None)
    unapprove.set_defaults(func=cmd_unapprove)

    reject = with_config(actions.add_parser("reject", help="reject a reply: it is never posted"))
    reject.add_argument("id", type=reply_id)
    reject.add_argument("--reason", default="", help="why, for the team")
    reject.add_argument(
        "--trolling",
        action="store_true",
        help="the post is trolling: the classifier learns it (train --with-decisions)",
    )
    reject.add_argument("--by", default=None)
    reject.set_defaults(func=cmd_reject)

    retry = with_config(actions.add_parser("retry", help="try a failed reply again"))
    retry.add_argument("id", type=reply_id)
    retry.add_argument("--by", default=None)
    retry.set_defaults(func=cmd_retry)


def item_json(item: QueueItem) -> dict[str, Any]:
    mention, reply = item.mention, item.reply
    return {
        "id": reply.id,
        "state": reply.state.value,
        "account": mention.account,
        "platform": mention.mention.platform,
        "author": mention.mention.author.handle,
        "post_id": mention.mention.post_id,
        "post_url": mention.mention.url,
        "post": classifier.mask_personal_data(mention.mention.text),
        "personal_data": sorted({p["kind"] for p in mention.personal_data}),
        "lang": mention.lang,
        "situation": mention.situation,
        "confidence": mention.confidence,
        "urgent": item.urgent,
        "reason": mention.reason,
        "kind": reply.kind.value,
        "purpose": reply.purpose,
        "draft": reply.text,
        "attempts": reply.attempts,
        "last_error": reply.last_error,
        "follow_up": (
            {"id": item.follow_up.id, "state": item.follow_up.state.value, "text": item.follow_up.text}
            if item.follow_up is not None
            else None
        ),
        # An earlier attempt may have posted it: a retry looks it up first; look at the thread yourself.
        "outcome_unknown": reply.outcome_unknown,
        "received_at": mention.received_at.isoformat(),
        "waiting_seconds": int((now() - item.waiting_since).total_seconds()),
    }


def cmd_list(args: argparse.Namespace) -> int:
    items: list[QueueItem] = []

    def read(_config: Config, storage: Storage) -> int:
        items.extend(storage.replies.queue())
        return OK

    status = with_storage(args, read)
    if status != OK:
        return status
    if args.json:
        json.dump([item_json(i) for i in items], sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    if not items:
        print("Nothing waits for a person.")
        return 0
    for item in items:
        data = item_json(item)
        flag = "URGENT " if data["urgent"] else ""
        what = f"{PURPOSE_LABELS[data['purpose']]} · " if data["purpose"] in PURPOSE_LABELS else ""
        print(
            f"#{data['id']} {flag}{data['state']} · {what}{data['situation']} ({data['lang']}, "
            f"{data['confidence']:.2f}) · {data['account']} · @{data['author']} · waiting "
            f"{format_duration(now() - item.waiting_since)}"
        )
        print(f"  post:  {data['post']}")
        label = "direct" if data["kind"] == "direct" else "draft"
        print(f"  {label}: {data['draft']}")
        if data["follow_up"] and data["follow_up"]["state"] == "pending":
            print(f"  then privately (#{data['follow_up']['id']}, approved with it): {data['follow_up']['text']}")
        if data["last_error"]:
            print(f"  error: {data['last_error']}")
        if data["outcome_unknown"]:
            print(
                f"  note:  an earlier attempt may have posted it ({data['post_url'] or 'see the thread'}): "
                "retry looks it up first and never posts it twice; reject it if it is there"
            )
        print()
    return 0


def _act(args: argparse.Namespace, action: Callable[[Config, Storage], str]) -> int:
    """`action` with the database; what it did is printed."""

    def work(config: Config, storage: Storage) -> int:
        print(action(config, storage))
        return OK

    return with_storage(args, work)


def cmd_approve(args: argparse.Namespace) -> int:
    def approve(config: Config, storage: Storage) -> str:
        from bot.run.context import check_edit, cost_warning
        from bot.run.decisions import CONFIRMED, record_on_reply
        from bot.storage.records import FollowUp

        if args.text is not None:
            check_edit(config, storage, args.id, args.text)
        reply = storage.replies.get(args.id)
        text = args.text if args.text is not None else reply.text
        warning = cost_warning(config, reply.account, text)
        if warning is not None and not args.accept_cost:
            raise ValueError(f"not approved: {warning}; leave the link out, or approve with --accept-cost")
        follow_up: FollowUp | Literal["as-is"] = "as-is"
        direct = storage.replies.follow_up_of(args.id)
        if args.direct_text is not None:
            if direct is None or direct.state is not ReplyState.PENDING:
                raise ValueError(f"reply {args.id} has no private follow-up waiting")
            check_edit(config, storage, direct.id, args.direct_text)
            follow_up = FollowUp(direct.id, direct.text, args.direct_text)
        # The draft as its cost was checked, or nothing: a colleague may re-draft it meanwhile (the desk).
        checked = reply.text if args.text is None else None
        reply = storage.replies.approve(args.id, actor(args), args.text, expected_text=checked, follow_up=follow_up)
        record_on_reply(storage, reply.id, CONFIRMED, actor(args))
        also = ""
        if direct is not None and direct.state is ReplyState.PENDING:
            also = f", then its private follow-up #{direct.id}"
        return f"#{reply.id} approved by {reply.approved_by}; the next cycle posts it{also}"

    return _act(args, approve)


def cmd_unapprove(args: argparse.Namespace) -> int:
    def unapprove(_config: Config, storage: Storage) -> str:
        reply = storage.replies.unapprove(args.id, actor(args))
        return f"#{reply.id} is no longer approved: it waits in the queue again"

    return _act(args, unapprove)


def cmd_reject(args: argparse.Namespace) -> int:
    def reject(_config: Config, storage: Storage) -> str:
        reason = args.reason or ("trolling" if args.trolling else "")
        reply = storage.replies.reject(args.id, actor(args), reason)
        if args.trolling:
            from bot.run.decisions import REJECTED, record_on_reply

            record_on_reply(storage, reply.id, REJECTED, actor(args), label="trolling")
        return f"#{reply.id} rejected by {reply.approved_by}"

    return _act(args, reject)


def cmd_retry(args: argparse.Namespace) -> int:
    def retry(_config: Config, storage: Storage) -> str:
        reply = storage.replies.retry(args.id, actor(args))
        return f"#{reply.id} will be tried again by the next cycle"

    return _act(args, retry)
