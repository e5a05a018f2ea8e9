"""`carebot incidents ...`: many people reporting the same problem, as one: list, show, word, resolve."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.cli.common import BAD_USAGE, OK, actor, add_config_option, case_id, incident_id, with_storage
from bot.config import Config
from bot.models import LANGUAGES

if TYPE_CHECKING:
    from bot.decide.playbooks import Playbooks
    from bot.storage import Storage


def register(sub: Any) -> None:
    incidents = sub.add_parser("incidents", help="many reports of one problem: list, show, word, resolve, merge")
    actions = incidents.add_subparsers(dest="incidents_command", required=True, metavar="ACTION")

    listing = add_config_option(actions.add_parser("list", help="open incidents first"))
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)

    show = add_config_option(actions.add_parser("show", help="an incident: summary, members, timeline"))
    show.add_argument("id", type=incident_id)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)

    resolve = add_config_option(actions.add_parser("resolve", help="it is fixed: tell every member, once"))
    resolve.add_argument("id", type=incident_id)
    resolve.add_argument("--note", default="", help="what was fixed, for the team")
    resolve.add_argument("--by", default=None)
    resolve.set_defaults(func=cmd_resolve)

    alarm = add_config_option(actions.add_parser("false-alarm", help="not one problem: close, tell nobody"))
    alarm.add_argument("id", type=incident_id)
    alarm.add_argument("--note", default="")
    alarm.add_argument("--by", default=None)
    alarm.set_defaults(func=cmd_false_alarm)

    merge = add_config_option(actions.add_parser("merge", help="incident A is incident B: A's members join B"))
    merge.add_argument("a", type=incident_id)
    merge.add_argument("b", type=incident_id)
    merge.add_argument("--by", default=None)
    merge.set_defaults(func=cmd_merge)

    split = add_config_option(actions.add_parser("split", help="take a case out of an incident"))
    split.add_argument("id", type=incident_id)
    split.add_argument("case", type=case_id)
    split.add_argument("--by", default=None)
    split.set_defaults(func=cmd_split)

    word = add_config_option(actions.add_parser("word", help="the public words for the problem, per language"))
    word.add_argument("id", type=incident_id)
    word.add_argument("--lang", required=True, choices=LANGUAGES)
    word.add_argument("--text", required=True, help='e.g. "card payments" (shown as "the problem with ...")')
    word.add_argument("--by", default=None)
    word.set_defaults(func=cmd_word)

    eta = add_config_option(actions.add_parser("eta", help="when the team expects a fix (said in replies)"))
    eta.add_argument("id", type=incident_id)
    eta.add_argument(
        "--text",
        required=True,
        help='a time, as "fixed by {time}" says it in every language: "18:00 CET", not "in 2 hours"; "" says nothing',
    )
    eta.add_argument("--by", default=None)
    eta.set_defaults(func=cmd_eta)

    approve = add_config_option(
        actions.add_parser("approve", help="approve every fixed-notification waiting for a person (X)")
    )
    approve.add_argument("id", type=incident_id)
    approve.add_argument("--by", default=None)
    approve.set_defaults(func=cmd_approve)


def _with(args: argparse.Namespace, work: Callable[[Config, Storage, Playbooks], int]) -> int:
    """`work` with the database and the playbooks (the incident topics' words and replies)."""
    from bot.decide.playbooks import PlaybookError, load_playbooks

    def with_playbooks(config: Config, storage: Storage) -> int:
        try:
            playbooks = load_playbooks(config.playbooks)
        except PlaybookError as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            return BAD_USAGE
        return work(config, storage, playbooks)

    return with_storage(args, with_playbooks)


def cmd_list(args: argparse.Namespace) -> int:
    def work(_config: Config, storage: Storage, playbooks: Playbooks) -> int:
        from bot.run.incidents import summary

        found = [summary(storage, playbooks, incident) for incident in storage.incidents.listed()]
        if args.json:
            json.dump([item.as_json() for item in found], sys.stdout, ensure_ascii=False, indent=2)
            print()
            return OK
        if not found:
            print("No incidents.")
        for item in found:
            langs = ", ".join(f"{n} {lang}" for lang, n in item.languages.items())
            when = (
                f" · first {item.first_report:%Y-%m-%d %H:%M}, last {item.last_report:%H:%M} UTC"
                if (item.first_report and item.last_report)
                else ""
            )
            head = f"incident #{item.id} {item.state} · {item.topic} · {item.account}"
            print(f"{head} · {item.people} people ({langs}){when}")
        return OK

    return _with(args, work)


def cmd_show(args: argparse.Namespace) -> int:
    def work(_config: Config, storage: Storage, playbooks: Playbooks) -> int:
        from bot.run.incidents import drain, summary

        incident = storage.incidents.get(args.id)
        about = summary(storage, playbooks, incident)
        members = storage.incidents.members(incident.id)
        events = storage.incidents.events(incident.id)
        progress = drain(storage, incident.id)
        if args.json:
            data = about.as_json() | {
                "members": [
                    {"case": c.id, "author": c.author_handle, "lang": c.lang, "state": c.state} for c in members
                ],
                "timeline": [{"at": e.at.isoformat(), "kind": e.kind, "by": e.actor, "text": e.text} for e in events],
                "notified": dataclasses.asdict(progress) | {"expected_end": None},
            }
            json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
            print()
            return OK
        head = f"incident #{incident.id} · {incident.state} · {incident.topic} · {incident.account}"
        print(f"{head} · {len(members)} people")
        print(f"  words: {', '.join(f'{k}: {v}' for k, v in about.wording.items())}")
        if incident.eta:
            print(f"  expected fix: {incident.eta}")
        for case in members:
            print(f"  case #{case.id} @{case.author_handle} ({case.lang}) {case.state}")
        for e in events:
            print(f"  {e.at:%Y-%m-%d %H:%M} {e.kind} by {e.actor}{': ' + e.text if e.text else ''}")
        if progress.total:
            end = f", last due {progress.expected_end:%H:%M} UTC" if progress.expected_end else ""
            print(
                f"  told it is fixed: {progress.sent} of {progress.total} ({progress.waiting_approval} waiting for "
                f"approval, {progress.skipped} skipped){end}"
            )
        return OK

    return _with(args, work)


def cmd_resolve(args: argparse.Namespace) -> int:
    def work(config: Config, storage: Storage, playbooks: Playbooks) -> int:
        from bot.run.incidents import resolve_incident

        progress = resolve_incident(config, storage, playbooks, args.id, actor(args), args.note or None)
        end = f"; the last is due {progress.expected_end:%Y-%m-%d %H:%M} UTC" if progress.expected_end else ""
        waits = f"; {progress.waiting_approval} wait for approval" if progress.waiting_approval else ""
        print(f"incident #{args.id} resolved: {progress.total - progress.skipped} people to tell{waits}{end}")
        return OK

    return _with(args, work)


def cmd_false_alarm(args: argparse.Namespace) -> int:
    def work(_config: Config, storage: Storage, _playbooks: Playbooks) -> int:
        from bot.run.incidents import false_alarm

        false_alarm(storage, args.id, actor(args), args.note or None)
        print(f"incident #{args.id} closed as a false alarm; nobody is told")
        return OK

    return _with(args, work)


def cmd_merge(args: argparse.Namespace) -> int:
    def work(_config: Config, storage: Storage, _playbooks: Playbooks) -> int:
        storage.incidents.merge(args.a, args.b, actor(args))
        print(f"incident #{args.a} merged into #{args.b}")
        return OK

    return _with(args, work)


def cmd_split(args: argparse.Namespace) -> int:
    def work(_config: Config, storage: Storage, _playbooks: Playbooks) -> int:
        storage.incidents.split(args.id, args.case, actor(args))
        print(f"case #{args.case} is no longer part of incident #{args.id}")
        return OK

    return _with(args, work)


def cmd_word(args: argparse.Namespace) -> int:
    def work(_config: Config, storage: Storage, _playbooks: Playbooks) -> int:
        incident = storage.incidents.get(args.id)
        text = " ".join(args.text.split())
        if not text:
            raise ValueError("the words are empty")
        storage.incidents.edit(args.id, actor(args), wording={**incident.wording, args.lang: text})
        print(f"incident #{args.id}: replies in {args.lang} now say “the problem with {text}”")
        return OK

    return _with(args, work)


def cmd_eta(args: argparse.Namespace) -> int:
    def work(_config: Config, storage: Storage, _playbooks: Playbooks) -> int:
        storage.incidents.edit(args.id, actor(args), eta=" ".join(args.text.split()))
        print(f"incident #{args.id}: expected fix {args.text or 'not said'}")
        return OK

    return _with(args, work)


def cmd_approve(args: argparse.Namespace) -> int:
    def work(_config: Config, storage: Storage, _playbooks: Playbooks) -> int:
        from bot.run.incidents import approve_notifications

        approved = approve_notifications(storage, args.id, actor(args))
        print(f"incident #{args.id}: {approved} fixed-notifications approved; they go out spread under the limit")
        return OK

    return _with(args, work)
