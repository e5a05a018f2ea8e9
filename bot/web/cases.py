"""The desk's case pages: the list of cases, and one case's thread with a reply form and its actions.

A case page shows everything in order: the customer's posts (private ones in full: that is where they send
details; public ones masked), the bot's and the team's replies, notes and state changes, who and when. A
person replies publicly or privately (where the platform allows), inserts a saved reply, takes the case,
resolves, reopens, or writes a note. Every action is a form POST checked for login and CSRF.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from bot.classifier import mask_personal_data
from bot.clock import format_duration, now
from bot.config import Config
from bot.decide.playbooks import Playbooks
from bot.decide.render import variants
from bot.models import OPEN_STATES, CaseState
from bot.run.cases import add_note, give_case, resolve_case, team_reply
from bot.run.context import post_limit
from bot.storage import NotFound
from bot.storage.records import StoredCase
from bot.web.access import Login, require_login
from bot.web.actions import act, id_param
from bot.web.desk import Desk
from bot.web.present import LANGUAGE_NAMES, RTL_LANGUAGES
from bot.web.views import _lf, _page
from connectors import get_platform

log = logging.getLogger("carebot.web")

FILTERS: Mapping[str, tuple[str, ...]] = {
    "active": tuple(sorted(OPEN_STATES)),
    "waiting": (CaseState.OPEN.value, CaseState.WAITING_ON_US.value),
    "resolved": (CaseState.RESOLVED.value,),
    "closed": (CaseState.CLOSED.value,),
}
SHOWN_EVENTS = frozenset(
    {"opened", "joined", "escalated", "resolve_proposed", "assigned", "note", "resolved", "reopened", "closed"}
    | {"check_back", "waiting_on_us", "waiting_on_customer"}
)


@dataclass(frozen=True)
class Entry:
    """One line of a case's thread."""

    at: datetime
    kind: str  # post | reply | event
    who: str
    channel: str  # public | private | ""
    text: str
    badge: str = ""


@dataclass(frozen=True)
class CaseRow:
    case: StoredCase
    flags: tuple[str, ...]
    waiting: str


def case_id_of(request: Request) -> int | None:
    return id_param(request, "case_id")


async def cases_page(request: Request) -> Response:
    login = await run_in_threadpool(require_login, request)
    if isinstance(login, Response):
        return login
    user = login.user
    shown = request.query_params.get("show", "active")
    states = FILTERS.get(shown, FILTERS["active"])
    desk: Desk = request.app.state.desk
    cases = [c for c in await run_in_threadpool(desk.storage.cases.listed, states) if login.may_act(c.account)]
    at = now()
    rows = [CaseRow(c, c.flags, format_duration(at - c.last_customer_at)) for c in cases]
    context = {"user": user, "rows": rows, "show": shown if shown in FILTERS else "active", "filters": FILTERS}
    return _page(request, "cases.html", context)


async def case_page(request: Request) -> Response:
    login = await run_in_threadpool(require_login, request)
    if isinstance(login, Response):
        return login
    case_id = case_id_of(request)
    desk: Desk = request.app.state.desk
    if case_id is None:
        return PlainTextResponse("There is no such case.", status_code=404)
    try:
        context = await run_in_threadpool(_case_context, desk, case_id, login)
    except NotFound:
        return PlainTextResponse(f"There is no case #{case_id}.", status_code=404)
    return _page(request, "case.html", {"user": login.user, **context})


def _permitted_case(desk: Desk, case_id: int, login: Login) -> StoredCase:
    """The case, if it is of an account this person may act on; any other is "not there" to them."""
    case = desk.storage.cases.get(case_id)
    if not login.may_act(case.account):
        raise NotFound(f"no case {case_id}")
    return case


def _case_context(desk: Desk, case_id: int, login: Login) -> dict[str, Any]:
    storage = desk.storage
    user = login.user
    case = _permitted_case(desk, case_id, login)
    platform = get_platform(case.platform)
    entries: list[Entry] = []
    for stored in storage.cases.posts(case.id):
        private = stored.mention.visibility == "direct"
        text = stored.mention.text if private else mask_personal_data(stored.mention.text)
        entries.append(
            Entry(stored.mention.created_at, "post", f"@{case.author_handle}", "private" if private else "public", text)
        )
    for reply in storage.cases.replies(case.id):
        channel = "private" if reply.kind.value == "direct" else "public"
        label = {"answer": "reply", "holding": "holding reply", "team": "reply", "check_back": "check-back"}
        badge = f"{label.get(reply.purpose, reply.purpose)} · {reply.state.value}"
        entries.append(Entry(reply.sent_at or reply.created_at, "reply", reply.who, channel, reply.text, badge))
    for event in storage.cases.events(case.id):
        if event.kind in SHOWN_EVENTS:
            entries.append(Entry(event.at, "event", event.actor, "", event.text, event.kind.replace("_", " ")))
    entries.sort(key=lambda e: e.at)
    state = storage.accounts.get(case.account)
    lang = case.lang
    return {
        "case": case,
        "flags": case.flags,
        "entries": entries,
        "someone_else": case.assigned_to if case.assigned_to and case.assigned_to != user else None,
        "colleagues": _colleagues(desk.config, case, user),
        "limit": post_limit(state, platform),
        "counting": "x" if case.platform == "x" else "plain",
        "private_allowed": platform.automated_direct_messages,
        "saved": _saved_replies(desk.config, desk.brains()[1], case),
        "request_key": secrets.token_urlsafe(12),
        "seen_reply": max((r.id for r in storage.cases.replies(case.id)), default=0),
        "lang_name": LANGUAGE_NAMES.get(lang, lang),
        "direction": "rtl" if lang in RTL_LANGUAGES else "ltr",
        "open": case.state in OPEN_STATES,
        "waiting": format_duration(now() - case.last_customer_at),
    }


def _colleagues(config: Config, case: StoredCase, user: str) -> list[str]:
    """The desk's other people who may act on the case's account: those a case can be handed to."""
    return sorted(
        name
        for name in config.web.users
        if name not in (user, case.assigned_to) and case.account in config.web.access.get(name, (case.account,))
    )


def _saved_replies(config: Config, playbooks: Playbooks, case: StoredCase) -> list[tuple[str, str]]:
    """(label, text) of every template a person may start from, in the case's language."""
    prefer_links = get_platform(case.platform).links_in_replies
    sources: list[tuple[str, Mapping[str, Mapping[str, tuple[str, ...]]]]] = []
    saved = playbooks.messages.get("saved")
    if saved is not None:
        sources.append(("saved", saved.templates))
    if case.situation in playbooks.by_situation:
        sources.append((case.situation, playbooks[case.situation].templates))
    for kind in ("holding", "check_back"):
        if kind in playbooks.messages:
            sources.append((kind, playbooks.messages[kind].templates))
    found = []
    for prefix, templates in sources:
        for name, by_lang in templates.items():
            texts = by_lang.get(case.lang) or by_lang.get(config.brand.default_language) or ()
            for variant in variants(texts, config.brand, case.author_handle, case.lang, prefer_links)[:1]:
                found.append((f"{prefix}: {name.replace('_', ' ')}", variant.text))
    return found


# --- actions --------------------------------------------------------------------------------------


def _reply(desk: Desk, user: str, case_id: int, form: Mapping[str, str]) -> str:
    text = _lf(form.get("text", "")).strip()
    private = form.get("private") == "1"
    key = form.get("request_key", "")
    if not key or len(key) > 64:
        raise ValueError("the form is missing its request key: reload the page")
    seen = form.get("seen_reply", "")
    seen_reply = int(seen) if seen.isascii() and seen.isdigit() else None
    reply = team_reply(
        desk.config, desk.storage, case_id, text, user, private=private, request_key=key, seen_reply=seen_reply
    )
    log.info("desk: %s wrote reply %s in case %s", user, reply.id, case_id)
    where = "privately" if private else "publicly"
    return f"Your reply goes out {where} with the next cycle (#{reply.id})."


def _assign(desk: Desk, user: str, case_id: int, form: Mapping[str, str]) -> str:
    to = form.get("to", "").strip()
    if to:  # handed to a colleague (the command line could; the desk could only take or give up)
        case = give_case(desk.config, desk.storage, case_id, to, user)
        return f"Case #{case.id} is with {to} now."
    take = form.get("take", "1") == "1"
    before = desk.storage.cases.get(case_id).assigned_to
    case = desk.storage.cases.assign(case_id, user if take else None, user)
    if not take:
        return f"Case #{case.id} is free for someone else."
    return f"You are on case #{case.id}" + (f", instead of {before}." if before and before != user else ".")


def _resolve(desk: Desk, user: str, case_id: int, form: Mapping[str, str]) -> str:
    note = " ".join(form.get("note", "").split())[:500]
    case = resolve_case(desk.config, desk.storage, case_id, user, note or None)
    later = " A check-back follows." if case.check_back_due_at else ""
    return f"Case #{case.id} is resolved.{later}"


def _reopen(desk: Desk, user: str, case_id: int, form: Mapping[str, str]) -> str:
    reason = " ".join(form.get("reason", "").split())[:500] or "reopened by a person"
    case = desk.storage.cases.reopen(case_id, user, reason)
    return f"Case #{case.id} is open again."


def _note(desk: Desk, user: str, case_id: int, form: Mapping[str, str]) -> str:
    add_note(desk.storage, case_id, user, _lf(form.get("text", "")))
    return "Note added."


async def reply(request: Request) -> Response:
    return await act(request, _reply, "case_id", "/cases", "case", _case_account, _reply_refused)


async def _reply_refused(request: Request, login: Login, case_id: int, form: Mapping[str, str], why: str) -> Response:
    """The case page again with the words kept: a refused reply (personal data, too long) used to come back
    as an empty box, the person's text thrown away."""
    desk: Desk = request.app.state.desk
    context = await run_in_threadpool(_case_context, desk, case_id, login)
    kept = {"kept_text": _lf(form.get("text", "")), "kept_private": form.get("private") == "1"}
    return _page(request, "case.html", {"user": login.user, **context, **kept, "flashes": [["error", why]]}, status=422)


async def assign(request: Request) -> Response:
    return await act(request, _assign, "case_id", "/cases", "case", _case_account)


async def resolve(request: Request) -> Response:
    return await act(request, _resolve, "case_id", "/cases", "case", _case_account)


async def reopen(request: Request) -> Response:
    return await act(request, _reopen, "case_id", "/cases", "case", _case_account)


async def note(request: Request) -> Response:
    return await act(request, _note, "case_id", "/cases", "case", _case_account)


def _case_account(desk: Desk, case_id: int) -> str:
    return desk.storage.cases.get(case_id).account
