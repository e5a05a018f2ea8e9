"""`carebot cases ...`: follow customers' cases from the command line: list, show, reply, resolve, reopen."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import uuid
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot import classifier  # its names load on first use: only a command that masks a post pays for it
from bot.cli.common import OK, actor, add_config_option, case_id, known_accounts, with_storage
from bot.clock import format_duration, now
from bot.config import Config
from bot.models import OPEN_STATES, CaseState

if TYPE_CHECKING:
    from bot.storage import Storage
    from bot.storage.records import StoredCase


def register(sub: Any) -> None:
    cases = sub.add_parser("cases", help="customers' cases: list, show, reply, resolve, reopen, assign, note")
    actions = cases.add_subparsers(dest="cases_command", required=True, metavar="ACTION")

    listing = add_config_option(actions.add_parser("list", help="cases waiting on us first, then the others"))
    listing.add_argument("--state", choices=[s.value for s in CaseState] + ["active"], default="active",
                         help="only cases in this state (default: active: open and waiting)")  # fmt: skip
    listing.add_argument("--account", help="only this account's cases")
    listing.add_argument("--json", action="store_true", help="one JSON document, for scripts")
    listing.set_defaults(func=cmd_list)

    show = add_config_option(actions.add_parser("show", help="a case's thread, replies, notes and history"))
    show.add_argument("id", type=case_id)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)

    reply = add_config_option(actions.add_parser("reply", help="reply in a case; the next cycle sends it, once"))
    reply.add_argument("id", type=case_id)
    reply.add_argument("--text", required=True, help="what to say (the customer's handle is added if missing)")
    reply.add_argument("--private", action="store_true", help="a private message (where the platform allows)")
    reply.add_argument("--by", default=None, help="who replies (default: your user name)")
    reply.add_argument("--again", action="store_true", help="send words this case was already sent once more")
    reply.set_defaults(func=cmd_reply)

    resolve = add_config_option(actions.add_parser("resolve", help="mark a case resolved (a check-back follows)"))
    resolve.add_argument("id", type=case_id)
    resolve.add_argument("--note", default="", help="how it was solved, for the team")
    resolve.add_argument("--by", default=None)
    resolve.set_defaults(func=cmd_resolve)

    reopen = add_config_option(actions.add_parser("reopen", help="reopen a resolved or closed case"))
    reopen.add_argument("id", type=case_id)
    reopen.add_argument("--reason", default="reopened by a person")
    reopen.add_argument("--by", default=None)
    reopen.set_defaults(func=cmd_reopen)

    assign = add_config_option(actions.add_parser("assign", help="take a case (or give it to --to USER)"))
    assign.add_argument("id", type=case_id)
    assign.add_argument("--to", default=None, help="who takes it (default: you); --to '' unassigns")
    assign.add_argument("--by", default=None)
    assign.set_defaults(func=cmd_assign)

    note = add_config_option(actions.add_parser("note", help="an internal note in the case's history"))
    note.add_argument("id", type=case_id)
    note.add_argument("--text", required=True)
    note.add_argument("--by", default=None)
    note.set_defaults(func=cmd_note)


def case_json(case: StoredCase, at: datetime) -> dict[str, Any]:
    data = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(case).items()}
    data["waiting_seconds"] = int((at - case.last_customer_at).total_seconds())
    return data


def cmd_list(args: argparse.Namespace) -> int:
    def work(config: Config, storage: Storage) -> int:
        known_accounts(config, [args.account] if args.account else None)
        states = sorted(OPEN_STATES) if args.state == "active" else [args.state]
        cases = storage.cases.listed(states=states, account=args.account)
        at = now()
        if args.json:
            json.dump([case_json(c, at) for c in cases], sys.stdout, ensure_ascii=False, indent=2)
            print()
            return OK
        if not cases:
            print("No cases." if args.state != "active" else "No open cases.")
        for case in cases:
            flags = [f.upper() if f in ("escalated", "urgent") else f for f in case.flags]
            who = f" · {case.assigned_to} is on it" if case.assigned_to else ""
            print(
                f"case #{case.id} {case.state}{' · ' + ', '.join(flags) if flags else ''} · {case.situation} "
                f"({case.lang}) · {case.account} · @{case.author_handle} · last post "
                f"{format_duration(at - case.last_customer_at)} ago{who}"
            )
        return OK

    return with_storage(args, work)


def cmd_show(args: argparse.Namespace) -> int:
    def work(_config: Config, storage: Storage) -> int:
        case = storage.cases.get(args.id)
        posts, replies, events = (
            storage.cases.posts(case.id),
            storage.cases.replies(case.id),
            storage.cases.events(case.id),
        )
        if args.json:
            document = {
                "case": case_json(case, now()),
                "posts": [
                    {"id": m.id, "post_id": m.mention.post_id, "at": m.mention.created_at.isoformat(),
                     "visibility": m.mention.visibility, "text": classifier.mask_personal_data(m.mention.text)}
                    for m in posts
                ],
                "replies": [
                    {"id": r.id, "purpose": r.purpose, "kind": r.kind.value, "state": r.state.value,
                     "text": r.text, "by": r.decided_by, "approved_by": None if r.rejected_by else r.approved_by,
                     "rejected_by": r.rejected_by}
                    for r in replies
                ],
                "events": [{"at": e.at.isoformat(), "kind": e.kind, "by": e.actor, "text": e.text} for e in events],
            }  # fmt: skip
            json.dump(document, sys.stdout, ensure_ascii=False, indent=2)
            print()
            return OK
        print(
            f"case #{case.id} · {case.state} · {case.situation} ({case.lang}) · {case.account} · @{case.author_handle}"
        )
        if case.assigned_to:
            print(f"  {case.assigned_to} is on it")
        lines: list[tuple[datetime, str]] = []
        for m in posts:
            where = "private" if m.mention.visibility == "direct" else "public"
            text = classifier.mask_personal_data(m.mention.text)
            lines.append((m.mention.created_at, f"@{case.author_handle} ({where}): {text}"))
        for r in replies:
            when = r.sent_at or r.created_at
            lines.append((when, f"{r.purpose} reply #{r.id} [{r.state.value}] by {r.who} ({r.kind.value}): {r.text}"))
        for e in events:
            if e.kind in ("note", "assigned", "resolved", "reopened", "escalated", "closed", "check_back"):
                lines.append((e.at, f"{e.kind} by {e.actor}: {e.text}" if e.text else f"{e.kind} by {e.actor}"))
        for when, line in sorted(lines, key=lambda item: item[0]):
            print(f"  {when:%Y-%m-%d %H:%M} {line}")
        return OK

    return with_storage(args, work)


def cmd_reply(args: argparse.Namespace) -> int:
    def work(config: Config, storage: Storage) -> int:
        from bot.run.cases import team_reply

        # The same command run twice (an arrow-up and Enter, a retried script) makes one reply, as the desk's
        # form does: the request is named by its words. --again names it afresh.
        words = f"{'private' if args.private else 'public'}\n{' '.join(args.text.split())}"
        key = uuid.uuid4().hex if args.again else "cli:" + hashlib.sha256(words.encode()).hexdigest()[:32]
        started = now()
        reply = team_reply(config, storage, args.id, args.text, actor(args), private=args.private, request_key=key)
        if reply.created_at < started:
            print(
                f"case #{args.id} was sent these words already (reply #{reply.id}, {reply.state.value}): nothing "
                "more is sent; --again sends them once more"
            )
            return OK
        print(f"reply #{reply.id} in case #{args.id} is {reply.state.value}; the next cycle sends it")
        return OK

    return with_storage(args, work)


def cmd_resolve(args: argparse.Namespace) -> int:
    def work(config: Config, storage: Storage) -> int:
        from bot.run.cases import resolve_case

        case = resolve_case(config, storage, args.id, actor(args), args.note or None)
        later = f"; check-back due {case.check_back_due_at:%Y-%m-%d %H:%M} UTC" if case.check_back_due_at else ""
        print(f"case #{case.id} resolved by {case.resolved_by}{later}")
        return OK

    return with_storage(args, work)


def cmd_reopen(args: argparse.Namespace) -> int:
    def work(_config: Config, storage: Storage) -> int:
        case = storage.cases.reopen(args.id, actor(args), args.reason)
        print(f"case #{case.id} is {case.state} again")
        return OK

    return with_storage(args, work)


def cmd_assign(args: argparse.Namespace) -> int:
    def work(config: Config, storage: Storage) -> int:
        from bot.run.cases import give_case

        if args.to == "":
            case = storage.cases.assign(args.id, None, actor(args))
        else:  # to someone, or to yourself (who must be a desk user too, where there are any)
            case = give_case(config, storage, args.id, args.to or actor(args), actor(args))
        print(f"case #{case.id}: {case.assigned_to + ' is on it' if case.assigned_to else 'nobody is on it'}")
        return OK

    return with_storage(args, work)


def cmd_note(args: argparse.Namespace) -> int:
    def work(_config: Config, storage: Storage) -> int:
        from bot.run.cases import add_note

        add_note(storage, args.id, actor(args), args.text)
        print(f"note added to case #{args.id}")
        return OK

    return with_storage(args, work)
