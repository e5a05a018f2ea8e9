"""What every action on a page of one thing (a case, an incident) shares: login, CSRF, a bounded id from the
path, the work in a thread, a flash message, and a redirect back to the page."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from bot.storage import Conflict, NotFound
from bot.web.auth import csrf_ok, session_user
from bot.web.desk import Desk
from bot.web.views import _flash, _form

MAX_ID = 2**31 - 1

Work = Callable[[Desk, str, int, Mapping[str, str]], str]


def id_param(request: Request, name: str) -> int | None:
    """The path's id, or None if it is not a plain, bounded number (`²`, `①`, `10^26` are not)."""
    raw = str(request.path_params.get(name, ""))
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) > MAX_ID:
        return None
    return int(raw)


async def act(request: Request, work: Work, name: str, back: str, what: str) -> Response:
    """Run `work(desk, user, id, form)` for a logged-in user with a good CSRF token; back to `back`/ID."""
    desk: Desk = request.app.state.desk
    user = session_user(request.session, desk.auth)
    if user is None:
        return PlainTextResponse("Your session has ended: log in again at /login.", status_code=403)
    form = await _form(request)
    if isinstance(form, Response):
        return form
    if not csrf_ok(request.session, form.get("csrf")):
        return PlainTextResponse("CSRF check failed: reload the page and try again.", status_code=403)
    item_id = id_param(request, name)
    if item_id is None:
        return PlainTextResponse(f"There is no such {what}.", status_code=404)
    try:
        message = await run_in_threadpool(work, desk, user, item_id, form)
    except NotFound:
        return PlainTextResponse(f"There is no {what} #{item_id}.", status_code=404)
    except (Conflict, ValueError) as exc:
        _flash(request, "error", f"Not done: {exc}.")
    else:
        _flash(request, "ok", message)
    return RedirectResponse(f"{back}/{item_id}", status_code=303)
