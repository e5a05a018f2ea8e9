"""Who may use the approval desk: password hashes, the admin token, sessions and CSRF tokens.

Passwords are hashed with scrypt (stdlib), salted, with the cost parameters stored in the hash line so they
can be raised later without breaking old lines. Sessions live in a signed cookie (itsdangerous, through
Starlette's SessionMiddleware); each session carries its own CSRF token and a fingerprint of the credential
it was opened with, so changing a password or the admin token ends the sessions opened with the old one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from bot.config import WebConfig

ADMIN = "admin"  # the user name a login with the admin token acts as
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_SALT_BYTES = 16
_KEY_BYTES = 32
_MAX_MEM = 64 * 1024 * 1024


def hash_password(password: str, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A line for `web.users`: scrypt$N$r$p$salt$key (base64)."""
    if not password:
        raise ValueError("the password is empty")
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _scrypt(password, salt, n, r, p)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, line: str) -> bool:
    try:
        scheme, n, r, p, salt, key = line.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key, validate=True)
        actual = _scrypt(password, base64.b64decode(salt, validate=True), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAX_MEM, dklen=_KEY_BYTES)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# Checked against when the user name is unknown, so a wrong name costs as much time as a wrong password.
_DUMMY_LINE = hash_password(secrets.token_urlsafe(12))


@dataclass(frozen=True)
class Authenticator:
    users: Mapping[str, str] = field(repr=False)
    admin_token: str | None = field(repr=False)
    secret_key: str = field(repr=False)  # signs cookies; also keys the credential fingerprints

    @classmethod
    def from_config(cls, web: WebConfig) -> Authenticator:
        return cls(dict(web.users), web.admin_token, web.secret_key or secrets.token_urlsafe(32))

    @property
    def configured(self) -> bool:
        return bool(self.users) or bool(self.admin_token)

    def check_password(self, name: str, password: str) -> str | None:
        """The user name if the password is right, else None."""
        line = self.users.get(name)
        ok = verify_password(password, line or _DUMMY_LINE)
        return name if ok and line is not None else None

    def check_token(self, token: str) -> str | None:
        if not self.admin_token or not token:
            return None
        same = hmac.compare_digest(token.encode("utf-8"), self.admin_token.encode("utf-8"))
        return ADMIN if same else None

    def fingerprint(self, user: str) -> str | None:
        """Changes whenever the user's credential changes; None if the user no longer exists."""
        credential = self.users.get(user) or (self.admin_token if user == ADMIN else None)
        if not credential:
            return None
        digest = hmac.new(self.secret_key.encode(), credential.encode("utf-8"), hashlib.sha256)
        return digest.hexdigest()[:32]


def start_session(session: MutableMapping[str, Any], auth: Authenticator, user: str) -> None:
    """A fresh session for `user`: everything from before the login is dropped (no fixation)."""
    session.clear()
    session["user"] = user
    session["fp"] = auth.fingerprint(user)
    session["csrf"] = secrets.token_urlsafe(32)


def session_user(session: Mapping[str, Any], auth: Authenticator) -> str | None:
    user = session.get("user")
    if not isinstance(user, str):
        return None
    expected = auth.fingerprint(user)
    if expected is None or not hmac.compare_digest(str(session.get("fp", "")), expected):
        return None
    return user


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """The session's CSRF token, made on first use (the login form needs one before any login)."""
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_ok(session: Mapping[str, Any], given: str | None) -> bool:
    expected = session.get("csrf")
    if not isinstance(expected, str) or not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


class LoginThrottle:
    """Refuses logins for a (client, user name) after too many failures in a window: no password guessing.

    Keyed by both, so one attacker cannot lock everyone out from behind a shared proxy address.
    """

    def __init__(self, failures: int = 10, window: float = 900.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = failures
        self.window = window
        self.clock = clock
        self._seen: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, client: str, name: str) -> bool:
        with self._lock:
            return len(self._recent((client, name))) >= self.failures

    def failed(self, client: str, name: str) -> None:
        with self._lock:
            self._recent((client, name)).append(self.clock())

    def succeeded(self, client: str, name: str) -> None:
        with self._lock:
            self._seen.pop((client, name), None)

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        times = self._seen.setdefault(key, deque())
        while times and times[0] < self.clock() - self.window:
            times.popleft()
        return times
