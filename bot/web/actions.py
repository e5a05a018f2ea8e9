"""What every action on a page of one thing (a case, an incident) shares: login, CSRF, a bounded id from the
path, the person's accounts, the work in a thread, a flash message, and a redirect back to the page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from bot.storage import Conflict, NotFound
from bot.web.access import Login, bounded_int, csrf_ok, current_login
from bot.web.desk import Desk
from bot.web.views import _flash, _form

Work = Callable[[Desk, str, int, Mapping[str, str]], str]
AccountOf = Callable[[Desk, int], str]  # the account a thing belongs to (raises NotFound if there is none)
# The page again, with what the person typed and why it was not done (instead of a redirect that loses it).
RefusedPage = Callable[[Request, Login, int, Mapping[str, str], str], Awaitable[Response]]


def id_param(request: Request, name: str) -> int | None:
    """The path's id, or None if it is not a plain, bounded number (`²`, `①`, `10^26` are not)."""
    return bounded_int(str(request.path_params.get(name, "")))


async def act(
    request: Request,
    work: Work,
    name: str,
    back: str,
    what: str,
    account_of: AccountOf | None = None,
    refused_page: RefusedPage | None = None,
) -> Response:
    """Run `work(desk, user, id, form)` for a logged-in person with a good CSRF token; back to `back`/ID.

    With `account_of`, only on a thing of an account the person may act on: any other is "not there".
    With `refused_page`, work that is refused shows the page again with the form as it was sent.
    """
    desk: Desk = request.app.state.desk
    login = await run_in_threadpool(current_login, request)
    if login is None:
        return PlainTextResponse("Your session has ended: log in again at /login.", status_code=403)
    form = await _form(request)
    if isinstance(form, Response):
        return form
    if not csrf_ok(request, form.get("csrf")):
        return PlainTextResponse("CSRF check failed: reload the page and try again.", status_code=403)
    item_id = id_param(request, name)
    if item_id is None:
        return PlainTextResponse(f"There is no such {what}.", status_code=404)

    def permitted() -> str:
        if account_of is not None and not login.may_act(account_of(desk, item_id)):
            raise NotFound(f"no {what} {item_id}")
        return work(desk, login.user, item_id, form)

    try:
        message = await run_in_threadpool(permitted)
    except NotFound:
        return PlainTextResponse(f"There is no {what} #{item_id}.", status_code=404)
    except (Conflict, ValueError) as exc:
        if refused_page is not None:
            return await refused_page(request, login, item_id, form, f"Not done: {exc}.")
        _flash(request, "error", f"Not done: {exc}.")
    else:
        _flash(request, "ok", message)
    return RedirectResponse(f"{back}/{item_id}", status_code=303)
