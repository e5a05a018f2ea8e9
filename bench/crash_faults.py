"""The crash test's faults (`--faults`, Mastodon only): bad posts, late posts, broken lookups, database trouble.

While the daemon is being killed, a fault proxy between it and mastodon-mock breaks some posts on their
way in: a lone surrogate in the text (cannot be stored), an unparseable date or a null account (cannot be
read), a hostile or missing handle (a person must answer), or a notification served only seconds after
later ones (below the cursor). It loses the answer to some of the brand's posts (posted, but the daemon
hears a dropped connection) and answers some reply lookups with a body of the wrong shape. A person at
the desk retries every parked reply (`queue retry`). And the database has trouble: on PostgreSQL the
daemon's backends are terminated every few seconds and the server is unreachable for a few seconds, twice
(a TCP switch in front of it); on SQLite the disk is full for a few seconds, twice (RLIMIT_FSIZE on the
daemon, so its log loses those seconds too).

A post set aside must be in the quarantine and not answered; a post with a broken handle must wait for a
person and no brand post may carry the hostile handle; everything else is answered once, as always.
"""

from __future__ import annotations

import random
import resource
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, text

from tests.peers.fault_proxy import FaultProxy
from tests.peers.tcp_switch import TcpSwitch

POISONS = ("poison-surrogate", "poison-date", "poison-account")
HOSTILE_HANDLE = "@victim@evil.example https://evil.example/phish"
KINDS = (*POISONS, "hostile", "no-handle", "late")


@dataclass(frozen=True)
class FaultPlan:
    poison: float = 0.08  # share of posts that cannot be read or stored (a third of each kind)
    handles: float = 0.06  # share of posts whose author's handle arrives hostile or missing
    late: float = 0.1  # share of posts whose notification is served only 2-6 s after later ones
    bad_lookups: float = 0.3  # share of reply lookups answered with a body of the wrong shape
    lost_answers: float = 0.1  # share of posts by the brand whose answer is lost (posted, but nobody hears)
    db_windows: int = 2  # database outages (PostgreSQL) or full disks (SQLite) during the storm
    db_window: tuple[float, float] = (3.0, 6.0)  # seconds each lasts


def marker(kind: str) -> str:
    return f"zq{kind.replace('-', '')}zq"


class PostFaults:
    """The fault proxy in front of the platform, and what it does to the posts a customer marks."""

    def __init__(self, upstream: str, plan: FaultPlan, rng: random.Random) -> None:
        self.plan = plan
        self._rng = rng
        self._lock = threading.Lock()
        self.hidden: set[str] = set()
        self.bad_lookups = 0
        self.lost_answers = 0
        self.proxy = FaultProxy(upstream).start()
        self.proxy.change_json("GET", "/api/v1/notifications", self._notifications)
        self.proxy.change_json("GET", "/api/v1/statuses/*/context", self._context)
        self.proxy.lose_answer("POST", "/api/v1/statuses", when=self._lose)

    @property
    def base_url(self) -> str:
        return self.proxy.base_url

    def close(self) -> None:
        self.proxy.stop()

    def choose(self) -> str | None:
        """The fault for the next post, if any."""
        draw = self._rng.random()
        plan = self.plan
        if draw < plan.poison:
            return self._rng.choice(POISONS)
        if draw < plan.poison + plan.handles:
            return self._rng.choice(("hostile", "no-handle"))
        if draw < plan.poison + plan.handles + plan.late:
            return "late"
        return None

    def posted(self, kind: str | None, post_id: str) -> None:
        if kind != "late":
            return
        with self._lock:
            self.hidden.add(post_id)
        timer = threading.Timer(self._rng.uniform(2.0, 6.0), self._reveal, args=(post_id,))
        timer.daemon = True
        timer.start()

    def _reveal(self, post_id: str) -> None:
        with self._lock:
            self.hidden.discard(post_id)

    def _notifications(self, data: Any) -> Any:
        if not isinstance(data, list):
            return data
        with self._lock:
            hidden = set(self.hidden)
        kept = []
        for notification in data:
            status = notification.get("status") if isinstance(notification, dict) else None
            if not isinstance(status, dict):
                kept.append(notification)
                continue
            if str(status.get("id")) in hidden:
                continue
            content = str(status.get("content") or "")
            if marker("poison-surrogate") in content:
                status["content"] = content.replace(marker("poison-surrogate"), "bad \ud800 text")
            elif marker("poison-date") in content:
                status["created_at"] = "the day before yesterday"
            elif marker("poison-account") in content:
                status["account"] = None
            elif marker("hostile") in content and isinstance(status.get("account"), dict):
                status["account"]["acct"] = HOSTILE_HANDLE
            elif marker("no-handle") in content and isinstance(status.get("account"), dict):
                status["account"].pop("acct", None)
                status["account"].pop("username", None)
            kept.append(notification)
        return kept

    def _lose(self) -> bool:
        with self._lock:
            lose = self._rng.random() < self.plan.lost_answers
            self.lost_answers += lose
        return lose

    def _context(self, data: Any) -> Any:
        with self._lock:
            bad = self._rng.random() < self.plan.bad_lookups
            self.bad_lookups += bad
        return {"ancestors": [], "descendants": None} if bad else data


class DatabaseFaults:
    """Trouble for the daemon's database while the storm lasts, in a thread of its own."""

    def __init__(
        self,
        plan: FaultPlan,
        rng: random.Random,
        daemon_pid: Callable[[], int | None],
        postgres: tuple[str, str, TcpSwitch] | None = None,  # (admin URL, the daemon's application_name, switch)
    ) -> None:
        self.plan = plan
        self._rng = rng
        self._pid = daemon_pid
        self._postgres = postgres
        self._stop = threading.Event()
        self.windows = 0  # outages or full disks
        self.terminated = 0  # PostgreSQL backends terminated
        self._thread = threading.Thread(target=self._run, name="database-faults", daemon=True)

    def start(self, span: float) -> None:
        self._span = span
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self._postgres is not None:
            self._postgres[2].up()

    def _run(self) -> None:
        starts = sorted(self._rng.uniform(0.15, 0.75) * self._span for _ in range(self.plan.db_windows))
        began = time.monotonic()
        engine = create_engine(self._postgres[0]) if self._postgres else None
        try:
            while not self._stop.wait(self._rng.uniform(1.0, 3.0)):
                if starts and time.monotonic() - began >= starts[0]:
                    starts.pop(0)
                    self._window()
                elif engine is not None and self._postgres is not None:
                    with engine.begin() as connection:
                        self.terminated += len(
                            connection.execute(
                                text(
                                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :n"
                                ),
                                {"n": self._postgres[1]},
                            ).all()
                        )
        finally:
            if engine is not None:
                engine.dispose()

    def _window(self) -> None:
        self.windows += 1
        seconds = self._rng.uniform(*self.plan.db_window)
        if self._postgres is not None:
            switch = self._postgres[2]
            switch.down()
            self._stop.wait(seconds)
            switch.up()
            return
        pid = self._pid()
        if pid is None:
            return
        with suppress(ProcessLookupError):
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
        self._stop.wait(seconds)
        with suppress(ProcessLookupError):  # a life killed meanwhile took its limit with it
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
