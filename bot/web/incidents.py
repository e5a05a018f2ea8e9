"""The desk's incident pages: the list, and one incident with its members, timeline and the team's tools
(public wording per language, expected fix time, merge, split, false alarm, resolve, and on X the bulk
approval of the fixed-notifications), with the drain's progress after a resolve."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from bot.models import LANGUAGES
from bot.run.incidents import approve_notifications, drain, false_alarm, resolve_incident, summary
from bot.run.incidents import wording as current_wording
from bot.storage import Conflict, NotFound
from bot.web.access import Login, require_login
from bot.web.actions import act, id_param
from bot.web.desk import Desk
from bot.web.present import LANGUAGE_NAMES
from bot.web.views import _page

log = logging.getLogger("carebot.web")


async def incidents_page(request: Request) -> Response:
    login = await run_in_threadpool(require_login, request)
    if isinstance(login, Response):
        return login
    desk: Desk = request.app.state.desk
    rows = await run_in_threadpool(_rows, desk, login)
    return _page(request, "incidents.html", {"user": login.user, "rows": rows})


def _rows(desk: Desk, login: Login) -> list[Any]:
    playbooks = desk.brains()[1]
    listed = [incident for incident in desk.storage.incidents.listed() if login.may_act(incident.account)]
    return [summary(desk.storage, playbooks, incident) for incident in listed]


async def incident_page(request: Request) -> Response:
    login = await run_in_threadpool(require_login, request)
    if isinstance(login, Response):
        return login
    incident_id = id_param(request, "incident_id")
    if incident_id is None:
        return PlainTextResponse("There is no such incident.", status_code=404)
    desk: Desk = request.app.state.desk
    try:
        context = await run_in_threadpool(_context, desk, incident_id, login)
    except NotFound:
        return PlainTextResponse(f"There is no incident #{incident_id}.", status_code=404)
    return _page(request, "incident.html", {"user": login.user, **context})


def _context(desk: Desk, incident_id: int, login: Login) -> dict[str, Any]:
    storage = desk.storage
    incident = storage.incidents.get(incident_id)
    if not login.may_act(incident.account):
        raise NotFound(f"no incident {incident_id}")
    about = summary(storage, desk.brains()[1], incident)
    langs = sorted(set(about.languages) | set(incident.wording))
    return {
        "incident": incident,
        "about": about,
        "members": storage.incidents.members(incident.id),
        "events": storage.incidents.events(incident.id),
        "progress": drain(storage, incident.id),
        "languages": [(lang, LANGUAGE_NAMES.get(lang, lang), about.wording.get(lang, "")) for lang in langs],
        "others": [i for i in storage.incidents.listed(states=["open"]) if i.id != incident.id],
    }


def _word(desk: Desk, user: str, incident_id: int, form: Mapping[str, str]) -> str:
    """Only what this person changed on the page is saved: a colleague's words or fix time saved meanwhile
    are kept (the whole form used to overwrite them), and a field both changed is refused."""
    incident = desk.storage.incidents.get(incident_id)
    playbooks = desk.brains()[1]
    wording = dict(incident.wording)
    changed = []
    for lang in LANGUAGES:
        text = " ".join(form.get(f"wording_{lang}", "").split())
        now_said = current_wording(playbooks, incident, lang)
        seen = " ".join(form.get(f"seen_wording_{lang}", now_said).split())
        if not text or text == seen:
            continue
        if now_said != seen:
            raise Conflict(
                f"the words in {LANGUAGE_NAMES.get(lang, lang)} changed while you were looking: now “{now_said}”"
            )
        wording[lang] = text
        changed.append(lang)
    eta = " ".join(form.get("eta", "").split())
    seen_eta = " ".join(form.get("seen_eta", incident.eta or "").split())
    new_eta = None
    if eta != seen_eta:
        if (incident.eta or "") != seen_eta:
            raise Conflict(f"the expected fix changed while you were looking: now “{incident.eta or 'not said'}”")
        new_eta = eta
    if not changed and new_eta is None:
        return "Nothing changed."
    desk.storage.incidents.edit(incident_id, user, wording=wording if changed else None, eta=new_eta)
    return "The incident's replies use your words from now on."


def _resolve(desk: Desk, user: str, incident_id: int, form: Mapping[str, str]) -> str:
    note = " ".join(form.get("note", "").split())[:500] or None
    progress = resolve_incident(desk.config, desk.storage, desk.brains()[1], incident_id, user, note)
    log.info("desk: incident %s resolved by %s", incident_id, user)
    waiting = f" {progress.waiting_approval} wait for your approval." if progress.waiting_approval else ""
    return f"Incident #{incident_id} is resolved: {progress.total - progress.skipped} people will be told.{waiting}"


def _false_alarm(desk: Desk, user: str, incident_id: int, form: Mapping[str, str]) -> str:
    false_alarm(desk.storage, incident_id, user, " ".join(form.get("note", "").split())[:500] or None)
    return f"Incident #{incident_id} is closed as a false alarm; nobody is told."


def _merge(desk: Desk, user: str, incident_id: int, form: Mapping[str, str]) -> str:
    raw = form.get("into", "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        raise ValueError("choose the incident to merge into")
    if desk.storage.incidents.get(int(raw)).account != desk.storage.incidents.get(incident_id).account:
        raise ValueError("an incident merges only into another of the same account")  # and of the person's
    desk.storage.incidents.merge(incident_id, int(raw), user)
    return f"Incident #{incident_id} is merged into #{raw}."


def _split(desk: Desk, user: str, incident_id: int, form: Mapping[str, str]) -> str:
    raw = form.get("case", "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        raise ValueError("choose the case to take out")
    desk.storage.incidents.split(incident_id, int(raw), user)
    return f"Case #{raw} is no longer part of incident #{incident_id}."


def _approve(desk: Desk, user: str, incident_id: int, form: Mapping[str, str]) -> str:
    approved = approve_notifications(desk.storage, incident_id, user)
    return f"{approved} fixed-notifications approved; they go out spread under the posting limit."


async def word(request: Request) -> Response:
    return await act(request, _word, "incident_id", "/incidents", "incident", _incident_account)


async def resolve(request: Request) -> Response:
    return await act(request, _resolve, "incident_id", "/incidents", "incident", _incident_account)


async def alarm(request: Request) -> Response:
    return await act(request, _false_alarm, "incident_id", "/incidents", "incident", _incident_account)


async def merge(request: Request) -> Response:
    return await act(request, _merge, "incident_id", "/incidents", "incident", _incident_account)


async def split(request: Request) -> Response:
    return await act(request, _split, "incident_id", "/incidents", "incident", _incident_account)


async def approve(request: Request) -> Response:
    return await act(request, _approve, "incident_id", "/incidents", "incident", _incident_account)


def _incident_account(desk: Desk, incident_id: int) -> str:
    return desk.storage.incidents.get(incident_id).account
