"""The approval desk's pages and actions. Every action is a form POST checked for login and CSRF, then
answered with a redirect back to the queue (or the queue again, with the person's edit, if it was refused).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from bot.clock import now
from bot.models import SITUATIONS, ReplyState
from bot.run.context import check_length, cost_warning
from bot.run.decisions import CONFIRMED, CORRECTED, REJECTED, record_on_reply
from bot.run.redraft import RedraftRefused, redraft
from bot.storage import Conflict, NotFound
from bot.web.auth import csrf_ok, csrf_token, session_user, start_session
from bot.web.desk import Desk
from bot.web.present import figure_texts, history_view, item_views

log = logging.getLogger("carebot.web")

MAX_FORM_BYTES = 64 * 1024
QUEUE_SHOWN = 100
HISTORY_FILTERS = {"all": ("sent", "rejected"), "sent": ("sent",), "rejected": ("rejected",)}
NO_STORE = {"Cache-Control": "no-store"}


class Refused(ValueError):
    """An action the desk will not do as asked; the queue is shown again with `message` and the edit kept."""

    def __init__(self, message: str, reply_id: int, text: str | None = None) -> None:
        super().__init__(message)
        self.reply_id = reply_id
        self.text = text


def _desk(request: Request) -> Desk:
    desk: Desk = request.app.state.desk
    return desk


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    context = {"csrf": csrf_token(request.session), "flashes": request.session.pop("flash", []), **context}
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
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        return PlainTextResponse("form too large", status_code=413)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return PlainTextResponse("form too large", status_code=413)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return PlainTextResponse("bad form", status_code=400)
    return dict(pairs)


def _lf(text: str) -> str:
    # Browsers send a textarea's (and a hidden field's) line breaks as CRLF.
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- pages ------------------------------------------------------------------------------------------


async def health(_request: Request) -> Response:
    return PlainTextResponse("ok")


async def login_page(request: Request) -> Response:
    desk = _desk(request)
    if session_user(request.session, desk.auth) is not None:
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
    if not csrf_ok(request.session, form.get("csrf")):
        return _login(request, "The form expired: please try again.", 403)
    desk = _desk(request)
    auth, throttle = desk.auth, desk.throttle
    client = request.client.host if request.client else "?"
    name = "admin token" if form.get("token") else form.get("user", "")
    if throttle.blocked(client, name):
        log.warning("desk: login for %r refused: too many failures", name)
        return _login(request, "Too many failed logins: wait a few minutes, then try again.", 429)
    if form.get("token"):
        user = auth.check_token(form["token"])
    else:
        user = await run_in_threadpool(auth.check_password, form.get("user", ""), form.get("password", ""))
    if user is None:
        throttle.failed(client, name)
        log.warning("desk: failed login (%s)", "token" if form.get("token") else "password")
        return _login(request, "Wrong user name, password or token.", 401)
    throttle.succeeded(client, name)
    start_session(request.session, auth, user)
    log.info("desk: %s logged in", user)
    return RedirectResponse(_local(form.get("next")), status_code=303)


async def logout(request: Request) -> Response:
    form = await _form(request)
    if isinstance(form, Response):
        return form
    if not csrf_ok(request.session, form.get("csrf")):
        return PlainTextResponse("CSRF check failed", status_code=403)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


def _require_user(request: Request) -> str | Response:
    user = session_user(request.session, _desk(request).auth)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    return user


async def queue_page(request: Request) -> Response:
    user = _require_user(request)
    if isinstance(user, Response):
        return user
    context = await run_in_threadpool(_queue_context, _desk(request), None)
    return _page(request, "queue.html", {"user": user, **context})


def _queue_context(desk: Desk, refused: Refused | None) -> dict[str, Any]:
    items = desk.storage.replies.queue()
    at = now()
    views = item_views(desk.storage, items[:QUEUE_SHOWN], at)
    return {
        "paused": [a for a in desk.storage.accounts.all() if a.paused_until is not None and a.paused_until > at],
        "costs": {v.id: cost_warning(desk.config, v.account, v.draft) for v in views if v.platform == "x"},
        "items": views,
        "hidden": max(len(items) - QUEUE_SHOWN, 0),
        "figures": figure_texts(desk.storage.figures.desk()),
        "situations": SITUATIONS,
        "refused": refused,
    }


async def history_page(request: Request) -> Response:
    user = _require_user(request)
    if isinstance(user, Response):
        return user
    shown = request.query_params.get("show", "all")
    states = HISTORY_FILTERS.get(shown, HISTORY_FILTERS["all"])
    before_raw = request.query_params.get("before", "")
    before = int(before_raw) if before_raw.isdigit() else None
    rows = history_view(await run_in_threadpool(_desk(request).storage.replies.history, states, before))
    context = {
        "user": user,
        "rows": rows,
        "show": shown if shown in HISTORY_FILTERS else "all",
        "before": before,
    }
    return _page(request, "history.html", context)


# --- actions -----------------------------------------------------------------------------------------

Work = Callable[[Desk, str, int, Mapping[str, str]], str]


async def _act(request: Request, work: Work) -> Response:
    desk = _desk(request)
    user = session_user(request.session, desk.auth)
    if user is None:
        return PlainTextResponse("Your session has ended: log in again at /login.", status_code=403)
    form = await _form(request)
    if isinstance(form, Response):
        return form
    if not csrf_ok(request.session, form.get("csrf")):
        return PlainTextResponse("CSRF check failed: reload the page and try again.", status_code=403)
    reply_id = int(request.path_params["reply_id"])
    try:
        message = await run_in_threadpool(work, desk, user, reply_id, form)
    except NotFound:
        return PlainTextResponse(f"There is no reply #{reply_id}.", status_code=404)
    except Conflict:
        _flash(request, "error", await run_in_threadpool(_conflict_message, desk, reply_id))
    except Refused as refused:
        context = await run_in_threadpool(_queue_context, desk, refused)
        return _page(request, "queue.html", {"user": user, **context}, status=422)
    else:
        _flash(request, "ok", message)
    return RedirectResponse("/", status_code=303)


def _conflict_message(desk: Desk, reply_id: int) -> str:
    reply = desk.storage.replies.get(reply_id)
    who = reply.approved_by or "the bot"
    if reply.state in (ReplyState.APPROVED, ReplyState.SENDING, ReplyState.SENT):
        sent = " and it was sent" if reply.state is ReplyState.SENT else ""
        return f"Reply #{reply_id} was already approved by {who}{sent}."
    if reply.state is ReplyState.REJECTED:
        return f"Reply #{reply_id} was already rejected by {who}."
    if reply.state is ReplyState.FAILED:
        return f"Reply #{reply_id} failed to send meanwhile: retry or reject it."
    return f"Reply #{reply_id} changed while you were looking at it: check the new draft."


def _shown(form: Mapping[str, str], reply_id: int) -> str:
    if "shown" not in form:
        raise Refused("The form is missing the draft it was made for: reload the page.", reply_id)
    return _lf(form["shown"])


def _approve(desk: Desk, user: str, reply_id: int, form: Mapping[str, str]) -> str:
    reply = desk.storage.replies.get(reply_id)
    shown = _shown(form, reply_id)
    text = _lf(form["text"]).strip() if "text" in form else None
    warning = cost_warning(desk.config, reply.account, text if text is not None else reply.text)
    if warning is not None and form.get("accept_cost") != "1":
        edit = text if text is not None and text != shown.strip() else None
        raise Refused(f"Not approved: {warning}. Leave the link out, or tick “send it at that cost”.", reply_id, edit)
    if text is not None and text != shown.strip():
        try:
            check_length(desk.config, desk.storage, reply_id, text)
        except ValueError as exc:
            raise Refused(f"Not approved: {exc}.", reply_id, text) from exc
        desk.storage.replies.approve(reply_id, user, text)
        record_on_reply(desk.storage, reply_id, CONFIRMED, user)
        log.info("desk: reply %s edited and approved by %s", reply_id, user)
        return f"Reply #{reply_id} approved with your edit; it goes out with the next cycle."
    if _lf(reply.text) != shown:
        raise Conflict("the draft changed")
    desk.storage.replies.approve(reply_id, user, expected_text=reply.text)
    record_on_reply(desk.storage, reply_id, CONFIRMED, user)
    log.info("desk: reply %s approved by %s", reply_id, user)
    return f"Reply #{reply_id} approved; it goes out with the next cycle."


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


async def reject(request: Request) -> Response:
    return await _act(request, _reject)


async def retry(request: Request) -> Response:
    return await _act(request, _retry)


async def change_situation(request: Request) -> Response:
    return await _act(request, _situation)
