"""What every page and action of the desk checks first, in one place a new page can call: who is logged in
(a session kept on the server), the CSRF token, which accounts the person may act on, and numbers from
the URL read within bounds (a bad one is a 404, never a 500)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.clock import now
from bot.web.auth import csrf_equal
from bot.web.desk import Desk

MAX_ID = 2**31 - 1  # ids are INTEGER columns: 32 bits on PostgreSQL
_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII only: "²" and "①" are digits to str.isdigit(), not to us


def bounded_int(raw: str | None, low: int = 1, high: int = MAX_ID) -> int | None:
    """`raw` as a whole number from `low` to `high`, or None (not ASCII digits, or out of range)."""
    if raw is None or not _DIGITS.fullmatch(raw):
        return None
    value = int(raw)
    return value if low <= value <= high else None


@dataclass(frozen=True)
class Login:
    user: str
    csrf: str
    accounts: frozenset[str] | None  # the accounts this person may act on; None: all

    def may_act(self, account: str) -> bool:
        return self.accounts is None or account in self.accounts


def desk_of(request: Request) -> Desk:
    desk: Desk = request.app.state.desk
    return desk


def current_login(request: Request) -> Login | None:
    """The person logged in with this request's cookie, if their session is alive and their credential
    unchanged; looked up once per request."""
    if "login" in request.scope.get("state", {}):
        found: Login | None = request.state.login
        return found
    login = None
    desk = desk_of(request)
    token = request.session.get("sid")
    stored = desk.storage.sessions.get(token) if isinstance(token, str) else None
    if stored is not None:
        expected = desk.auth.fingerprint(stored.user)
        if expected is not None and csrf_equal(expected, stored.fingerprint):
            login = Login(stored.user, stored.csrf, desk.auth.accounts_of(stored.user))
    request.state.login = login
    return login


def start_session(request: Request, user: str) -> None:
    """A fresh session for `user`: everything from before the login is dropped (no fixation)."""
    desk = desk_of(request)
    old = request.session.get("sid")
    if isinstance(old, str):
        desk.storage.sessions.end(old)
    fingerprint = desk.auth.fingerprint(user) or ""
    expires = now() + timedelta(seconds=desk.config.web.session_max_age)
    token, _ = desk.storage.sessions.start(user, fingerprint, expires)
    request.session.clear()
    request.session["sid"] = token


def end_session(request: Request) -> None:
    token = request.session.get("sid")
    if isinstance(token, str):
        desk_of(request).storage.sessions.end(token)
    request.session.clear()
    request.state.login = None


def csrf_for(request: Request) -> str:
    """The token every form of this page carries: the session's, or (before login) the cookie's own."""
    login = current_login(request)
    if login is not None:
        return login.csrf
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, given: str | None) -> bool:
    login = current_login(request)
    expected = login.csrf if login is not None else request.session.get("csrf")
    return csrf_equal(expected, given)


def require_login(request: Request) -> Login | Response:
    """The person logged in, or a redirect to the login page that comes back here."""
    login = current_login(request)
    if login is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    return login
