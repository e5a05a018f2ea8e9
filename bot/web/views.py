"""The approval desk's pages and actions. Every action is a form POST checked for login and CSRF, then
answered with a redirect back to the queue (or the queue again, with the person's edit, if it was refused).
A person acts only on the replies of the accounts they may act on (`web.access`); others are not there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from bot.clock import now
from bot.models import SITUATIONS, ReplyState
from bot.run.context import check_edit, cost_warning
from bot.run.decisions import CONFIRMED, CORRECTED, REJECTED, record_on_reply
from bot.run.redraft import RedraftRefused, redraft
from bot.storage import Conflict, NotFound
from bot.storage.records import FollowUp
from bot.web.access import (
    Login,
    bounded_int,
    csrf_for,
    csrf_ok,
    current_login,
    desk_of,
    end_session,
    require_login,
    start_session,
)
from bot.web.auth import Busy
from bot.web.desk import Desk
from bot.web.present import figure_texts, history_view, item_views

log = logging.getLogger("carebot.web")

MAX_BODY_BYTES = 64 * 1024  # any request body, counted as it arrives (asgi.BodyLimit)
QUEUE_SHOWN = 100
HISTORY_SHOWN = 50
HISTORY_FILTERS = {"all": ("sent", "rejected"), "sent": ("sent",), "rejected": ("rejected",)}
NO_STORE = {"Cache-Control": "no-store"}


class Refused(ValueError):
    """An action the desk will not do as asked; the queue is shown again with `message` and the edit kept."""

    def __init__(self, message: str, reply_id: int, text: str | None = None) -> None:
        super().__init__(message)
        self.reply_id = reply_id
        self.text = text


_desk = desk_of


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    context = {"csrf": csrf_for(request), "flashes": request.session.pop("flash", []), **context}
    return _templates(request).TemplateResponse(request, name, context, status_code=status, headers=NO_STORE)


def _flash(request: Request, kind: str, text: str) -> None:
    request.session["flash"] = [*request.session.get("flash", []), [kind, text]]


def _local(target: str | None) -> str:
    """Only a path on this site: `next=` must never send anyone elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


async def _form(request: Request) -> dict[str, str] | Response:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return PlainTextResponse("expected a form", status_code=415)
    body = await request.body()  # at most MAX_BODY_BYTES: asgi.BodyLimit counts it as it arrives
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return PlainTextResponse("bad form", status_code=400)
    return dict(pairs)


def _lf(text: str) -> str:
    # Browsers send a textarea's (and a hidden field's) line breaks as CRLF.
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- pages ------------------------------------------------------------------------------------------


async def health(request: Request) -> Response:
    """ok when the database answers (the desk runs no cycle: `carebot run`'s /health checks those)."""
    try:
        await run_in_threadpool(_desk(request).storage.ping)
    except Exception:
        log.exception("desk: /health: the database does not answer")
        return PlainTextResponse("database unreachable", status_code=503, headers=NO_STORE)
    return PlainTextResponse("ok", headers=NO_STORE)


async def login_page(request: Request) -> Response:
    if await run_in_threadpool(current_login, request) is not None:
        return RedirectResponse(_local(request.query_params.get("next")), status_code=303)
    return _login(request, None, 200)


def _login(request: Request, error: str | None, status: int) -> Response:
    auth = _desk(request).auth
    context = {
        "user": None,
        "error": error,
        "next": _local(request.query_params.get("next")),
        "users_enabled": bool(auth.users),
        "token_enabled": bool(auth.admin_token),
    }
    return _page(request, "login.html", context, status)


async def login(request: Request) -> Response:
    form = await _form(request)
    if isinstance(form, Response):
        return form
    if not csrf_ok(request, form.get("csrf")):
        return _login(request, "The form expired: please try again.", 403)
    desk = _desk(request)
    auth, throttle = desk.auth, desk.throttle
    # The peer itself, or what a proxy in web.trusted_proxies says: a forged X-Forwarded-For buys nothing.
    client = request.client.host if request.client else "?"
    name = "admin token" if form.get("token") else form.get("user", "")
    if throttle.blocked(client, name):
        log.warning("desk: login for %r refused: too many failures", name[:60])
        return _login(request, "Too many failed logins: wait a few minutes, then try again.", 429)
    if form.get("token"):
        user = auth.check_token(form["token"])
    else:
        user_name, password = form.get("user", ""), form.get("password", "")
        try:
            user = await desk.hashing.check(lambda: auth.check_password(user_name, password))
        except Busy:
            log.warning("desk: a login was refused: too many logins are being checked at once")
            busy = _login(request, "The desk is busy checking other logins: try again in a moment.", 503)
            busy.headers["Retry-After"] = "2"
            return busy
    if user is None:
        throttle.failed(client, name)
        log.warning("desk: failed login (%s)", "token" if form.get("token") else "password")
        return _login(request, "Wrong user name, password or token.", 401)
    throttle.succeeded(client, name)
    await run_in_threadpool(start_session, request, user)
    if auth.weak(user):
        log.warning("desk: %s's password hash has an old, lower cost: make a new one (carebot web hash-password)", user)
        _flash(
            request,
            "error",
            "Your password is kept with an old, weaker hash: ask whoever keeps the config to replace your line "
            "with a new one from `carebot web hash-password`.",
        )
    log.info("desk: %s logged in", user)
    return RedirectResponse(_local(form.get("next")), status_code=303)


async def logout(request: Request) -> Response:
    form = await _form(request)
    if isinstance(form, Response):
        return form
    if not csrf_ok(request, form.get("csrf")):
        return PlainTextResponse("CSRF check failed", status_code=403)
    await run_in_threadpool(end_session, request)
    return RedirectResponse("/login", status_code=303)


async def queue_page(request: Request) -> Response:
    login = await run_in_threadpool(require_login, request)
    if isinstance(login, Response):
        return login
    context = await run_in_threadpool(_queue_context, _desk(request), login, None)
    return _page(request, "queue.html", {"user": login.user, **context})


def _queue_context(desk: Desk, login: Login, refused: Refused | None) -> dict[str, Any]:
    items = desk.storage.replies.queue(accounts=login.accounts)
    approved = desk.storage.replies.queue(states=(ReplyState.APPROVED,), accounts=login.accounts)
    at = now()
    views = item_views(desk.storage, items[:QUEUE_SHOWN], at)
    paused = [a for a in desk.storage.accounts.all() if a.paused_until is not None and a.paused_until > at]
    return {
        "paused": [a for a in paused if login.may_act(a.name)],
        "costs": {v.id: cost_warning(desk.config, v.account, v.draft) for v in views if v.platform == "x"},
        "items": views,
        "hidden": max(len(items) - QUEUE_SHOWN, 0),
        "approved": item_views(desk.storage, approved[:QUEUE_SHOWN], at),
        "figures": figure_texts(desk.storage.figures.desk(accounts=login.accounts)),
        "situations": SITUATIONS,
        "refused": refused,
    }


async def history_page(request: Request) -> Response:
    login = await run_in_threadpool(require_login, request)
    if isinstance(login, Response):
        return login
    shown = request.query_params.get("show", "all")
    states = HISTORY_FILTERS.get(shown, HISTORY_FILTERS["all"])
    before = bounded_int(request.query_params.get("before"))
    history = _desk(request).storage.replies.history
    rows = history_view(await run_in_threadpool(history, states, before, HISTORY_SHOWN, login.accounts))
    context = {
        "user": login.user,
        "rows": rows,
        "more": len(rows) == HISTORY_SHOWN,
        "show": shown if shown in HISTORY_FILTERS else "all",
        "before": before,
    }
    return _page(request, "history.html", context)


# --- actions -----------------------------------------------------------------------------------------

Work = Callable[[Desk, str, int, Mapping[str, str]], str]


async def _act(request: Request, work: Work) -> Response:
    desk = _desk(request)
    login = await run_in_threadpool(current_login, request)
    if login is None:
        return PlainTextResponse("Your session has ended: log in again at /login.", status_code=403)
    form = await _form(request)
    if isinstance(form, Response):
        return form
    if not csrf_ok(request, form.get("csrf")):
        return PlainTextResponse("CSRF check failed: reload the page and try again.", status_code=403)
    reply_id = bounded_int(request.path_params["reply_id"])
    if reply_id is None:
        return PlainTextResponse("There is no such reply.", status_code=404)
    try:
        message = await run_in_threadpool(_permitted, work, desk, login, reply_id, form)
    except NotFound:
        return PlainTextResponse(f"There is no reply #{reply_id}.", status_code=404)
    except Conflict as conflict:
        _flash(request, "error", await run_in_threadpool(_conflict_message, desk, reply_id, conflict))
    except Refused as refused:
        context = await run_in_threadpool(_queue_context, desk, login, refused)
        return _page(request, "queue.html", {"user": login.user, **context}, status=422)
    else:
        _flash(request, "ok", message)
    return RedirectResponse("/", status_code=303)


def _permitted(work: Work, desk: Desk, login: Login, reply_id: int, form: Mapping[str, str]) -> str:
    """Do `work` only on a reply of an account this person may act on; any other is "not there" to them."""
    if not login.may_act(desk.storage.replies.get(reply_id).account):
        log.warning("desk: %s may not act on reply %s (not one of their accounts)", login.user, reply_id)
        raise NotFound(f"no reply {reply_id}")
    return work(desk, login.user, reply_id, form)


def _conflict_message(desk: Desk, reply_id: int, conflict: Conflict) -> str:
    if "private follow-up" in str(conflict):
        return f"Nothing was approved: {conflict}."
    reply = desk.storage.replies.get(reply_id)
    who = reply.approved_by or "the bot"
    if reply.state is ReplyState.SENDING:
        return f"Reply #{reply_id} was approved by {who} and is being sent right now: it can no longer be changed."
    if reply.state in (ReplyState.APPROVED, ReplyState.SENT):
        sent = " and it was sent" if reply.state is ReplyState.SENT else ""
        return f"Reply #{reply_id} was already approved by {who}{sent}."
    if reply.state is ReplyState.REJECTED:
        return f"Reply #{reply_id} was already rejected by {who}."
    if reply.state is ReplyState.FAILED:
        return f"Reply #{reply_id} failed to send meanwhile: retry or reject it."
    if reply.state is ReplyState.PENDING and "not approved" in str(conflict):
        return f"Reply #{reply_id} is not approved (any more): it waits in the queue."
    return f"Reply #{reply_id} changed while you were looking at it: check the new draft."


def _shown(form: Mapping[str, str], reply_id: int) -> str:
    if "shown" not in form:
        raise Refused("The form is missing the draft it was made for: reload the page.", reply_id)
    return _lf(form["shown"])


def _approve(desk: Desk, user: str, reply_id: int, form: Mapping[str, str]) -> str:
    reply = desk.storage.replies.get(reply_id)
    shown = _shown(form, reply_id)
    follow_up = _follow_up(desk, reply_id, form)
    also = ", then its private follow-up" if follow_up is not None else ""
    text = _lf(form["text"]).strip() if "text" in form else None
    warning = cost_warning(desk.config, reply.account, text if text is not None else reply.text)
    if warning is not None and form.get("accept_cost") != "1":
        edit = text if text is not None and text != shown.strip() else None
        raise Refused(f"Not approved: {warning}. Leave the link out, or tick “send it at that cost”.", reply_id, edit)
    if text is not None and text != shown.strip():
        try:
            check_edit(desk.config, desk.storage, reply_id, text)
        except ValueError as exc:
            raise Refused(f"Not approved: {exc}.", reply_id, text) from exc
        desk.storage.replies.approve(reply_id, user, text, follow_up=follow_up)
        record_on_reply(desk.storage, reply_id, CONFIRMED, user)
        log.info("desk: reply %s edited and approved by %s", reply_id, user)
        return f"Reply #{reply_id} approved with your edit; it goes out with the next cycle{also}."
    if _lf(reply.text) != shown:
        raise Conflict("the draft changed")
    desk.storage.replies.approve(reply_id, user, expected_text=reply.text, follow_up=follow_up)
    record_on_reply(desk.storage, reply_id, CONFIRMED, user)
    log.info("desk: reply %s approved by %s", reply_id, user)
    return f"Reply #{reply_id} approved; it goes out with the next cycle{also}."


def _follow_up(desk: Desk, reply_id: int, form: Mapping[str, str]) -> FollowUp | None:
    """The private follow-up as the page showed it, and the person's edit, if the form carried it."""
    direct_id = bounded_int(form.get("direct_id"))
    if direct_id is None or "direct_shown" not in form:
        return None
    shown = _lf(form["direct_shown"])
    edit = _lf(form["direct_text"]).strip() if "direct_text" in form else None
    if edit is not None and edit != shown.strip():
        try:
            check_edit(desk.config, desk.storage, direct_id, edit)
        except ValueError as exc:
            raise Refused(f"Not approved: the private follow-up: {exc}.", reply_id) from exc
        return FollowUp(direct_id, shown, edit)
    return FollowUp(direct_id, shown)


def _unapprove(desk: Desk, user: str, reply_id: int, _form: Mapping[str, str]) -> str:
    desk.storage.replies.unapprove(reply_id, user)
    log.info("desk: approval of reply %s taken back by %s", reply_id, user)
    return f"Reply #{reply_id} is no longer approved: it waits in the queue again."


def _reject(desk: Desk, user: str, reply_id: int, form: Mapping[str, str]) -> str:
    desk.storage.replies.get(reply_id)
    reason = " ".join(form.get("reason", "").split())[:500]
    if not reason:
        raise Refused("Say why the reply is rejected: the team reads the reason.", reply_id)
    desk.storage.replies.reject(reply_id, user, reason)
    if form.get("trolling") == "1":
        record_on_reply(desk.storage, reply_id, REJECTED, user, label="trolling")
    log.info("desk: reply %s rejected by %s", reply_id, user)
    return f"Reply #{reply_id} rejected; nothing is sent."


def _retry(desk: Desk, user: str, reply_id: int, _form: Mapping[str, str]) -> str:
    desk.storage.replies.retry(reply_id, user)
    log.info("desk: reply %s sent back to the outbox by %s", reply_id, user)
    return f"Reply #{reply_id} will be tried again with the next cycle."


def _situation(desk: Desk, user: str, reply_id: int, form: Mapping[str, str]) -> str:
    reply = desk.storage.replies.get(reply_id)
    situation = form.get("situation", "")
    if situation not in SITUATIONS:
        raise Refused(f"Unknown situation {situation!r}.", reply_id)
    shown = _shown(form, reply_id)
    if reply.state is not ReplyState.PENDING or _lf(reply.text) != shown:
        raise Conflict("the reply changed")
    stored = desk.storage.mentions.get(reply.mention_id)
    if stored.situation == situation:
        return f"Reply #{reply_id} is already drafted as {situation}."
    classifier, playbooks = desk.brains()
    try:
        decision = redraft(
            stored,
            situation,
            storage=desk.storage,
            classifier=classifier,
            playbooks=playbooks,
            config=desk.config,
        )
    except RedraftRefused as exc:
        raise Refused(f"Not changed: {exc}.", reply_id) from exc
    desk.storage.replies.redraft(reply_id, reply.text, decision, user)
    record_on_reply(desk.storage, reply_id, CORRECTED, user)
    log.info("desk: reply %s re-drafted as %s by %s", reply_id, situation, user)
    return f"Reply #{reply_id} re-drafted from the {situation} playbook: check it, then approve."


async def approve(request: Request) -> Response:
    return await _act(request, _approve)


async def unapprove(request: Request) -> Response:
    return await _act(request, _unapprove)


async def reject(request: Request) -> Response:
    return await _act(request, _reject)


async def retry(request: Request) -> Response:
    return await _act(request, _retry)


async def change_situation(request: Request) -> Response:
    return await _act(request, _situation)
