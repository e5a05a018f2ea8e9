"""Who may use the approval desk: passwords (bot/web/passwords.py), the admin token, the login throttle and
its gate. A hash line made with a lower cost than today's still logs in, and the desk says it should be
replaced (the config is the person's file: carebot never rewrites it). Sessions are kept on the server
(`storage.sessions`); each remembers a fingerprint of the credential it was opened with, so a new password
or admin token ends the old sessions.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from bot.config import WebConfig
from bot.web.passwords import hash_password, verify_password, weak_hash

ADMIN = "admin"  # the user name a login with the admin token acts as
MAX_NAME = 60  # a user name in the config is at most this long

T = TypeVar("T")


@functools.cache
def _dummy_line() -> str:
    """Checked against when the user name is unknown, so a wrong name costs as much as a wrong password.

    Made on first use, not at import: importing the desk (or the CLI) costs no hashing.
    """
    return hash_password(secrets.token_urlsafe(12))


@dataclass(frozen=True)
class Authenticator:
    users: Mapping[str, str] = field(repr=False)
    admin_token: str | None = field(repr=False)
    secret_key: str = field(repr=False)  # signs cookies; also keys the credential fingerprints
    access: Mapping[str, frozenset[str]] = field(default_factory=dict)  # user -> accounts; absent: all

    @classmethod
    def from_config(cls, web: WebConfig) -> Authenticator:
        access = {user: frozenset(accounts) for user, accounts in web.access.items()}
        return cls(dict(web.users), web.admin_token, web.secret_key or secrets.token_urlsafe(32), access)

    @property
    def configured(self) -> bool:
        return bool(self.users) or bool(self.admin_token)

    def check_password(self, name: str, password: str) -> str | None:
        """The user name if the password is right, else None."""
        if len(name) > MAX_NAME or len(password) > 1024:
            return None  # no such user can exist: not worth a hash
        line = self.users.get(name)
        ok = verify_password(password, line or _dummy_line())
        return name if ok and line is not None else None

    def check_token(self, token: str) -> str | None:
        if not self.admin_token or not token:
            return None
        same = hmac.compare_digest(token.encode("utf-8"), self.admin_token.encode("utf-8"))
        return ADMIN if same else None

    def weak(self, user: str) -> bool:
        line = self.users.get(user)
        return line is not None and weak_hash(line)

    def fingerprint(self, user: str) -> str | None:
        """Changes whenever the user's credential (or their accounts) change; None if the user is gone."""
        credential = self.users.get(user) or (self.admin_token if user == ADMIN else None)
        if not credential:
            return None
        scope = ",".join(sorted(self.access.get(user, ()))) if user != ADMIN else ""
        digest = hmac.new(self.secret_key.encode(), f"{credential}\n{scope}".encode(), hashlib.sha256)
        return digest.hexdigest()[:32]

    def accounts_of(self, user: str) -> frozenset[str] | None:
        """The accounts `user` may act on; None means every account (the admin, or a user not limited)."""
        if user == ADMIN:
            return None
        return self.access.get(user)


def csrf_equal(expected: str | None, given: str | None) -> bool:
    if not isinstance(expected, str) or not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


class LoginThrottle:
    """Refuses logins after too many failures in a window: no password guessing, in bounded memory.

    Counted per (client, user name), so one attacker cannot lock a person out from behind a shared proxy
    address, and per client over all names, so new names do not buy new guesses. Names are kept as short
    digests and at most `max_keys` pairs and clients are remembered (the oldest are forgotten first).
    """

    def __init__(
        self,
        failures: int = 10,
        per_client: int = 50,
        window: float = 900.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.per_client = per_client
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._pairs: OrderedDict[tuple[str, bytes], deque[float]] = OrderedDict()
        self._clients: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def blocked(self, client: str, name: str) -> bool:
        with self._lock:
            pair = self._recent(self._pairs, (client[:64], _short(name)), self.failures, create=False)
            overall = self._recent(self._clients, client[:64], self.per_client, create=False)
            return len(pair) >= self.failures or len(overall) >= self.per_client

    def failed(self, client: str, name: str) -> None:
        with self._lock:
            stamp = self.clock()
            self._recent(self._pairs, (client[:64], _short(name)), self.failures).append(stamp)
            self._recent(self._clients, client[:64], self.per_client).append(stamp)

    def succeeded(self, client: str, name: str) -> None:
        with self._lock:
            self._pairs.pop((client[:64], _short(name)), None)

    def size(self) -> int:
        with self._lock:
            return len(self._pairs) + len(self._clients)

    def _recent(
        self, table: OrderedDict[Any, deque[float]], key: object, limit: int, create: bool = True
    ) -> deque[float]:
        times: deque[float] | None = table.get(key)
        if times is None:
            if not create:
                return deque()
            times = deque(maxlen=limit)
            table[key] = times
            while len(table) > self.max_keys:
                table.popitem(last=False)
        table.move_to_end(key)
        while times and times[0] < self.clock() - self.window:
            times.popleft()
        return times


def _short(name: str) -> bytes:
    return hashlib.blake2b(name.encode("utf-8", "replace"), digest_size=12).digest()


class Busy(Exception):
    """Too many logins are being checked at once: try again in a moment."""


class HashingGate:
    """At most `limit` password checks run at once (scrypt takes 128 MiB and a core each); `waiting` more
    may wait their turn, and the rest are refused at once (`Busy`) instead of piling up."""

    def __init__(self, limit: int = 2, waiting: int = 8) -> None:
        self.limit = limit
        self.waiting = waiting
        self._queued = 0
        self._semaphores: dict[int, asyncio.Semaphore] = {}

    async def check(self, work: Callable[[], T]) -> T:
        if self._queued >= self.limit + self.waiting:
            raise Busy()
        self._queued += 1
        try:
            async with self._semaphore():
                return await run_in_threadpool(work)
        finally:
            self._queued -= 1

    def _semaphore(self) -> asyncio.Semaphore:
        # One per event loop: a semaphore belongs to the loop it first waited in.
        loop = id(asyncio.get_running_loop())
        if loop not in self._semaphores:
            self._semaphores = {loop: asyncio.Semaphore(self.limit)}
        return self._semaphores[loop]
