"""The daemon's watch over the database: trouble is loud once, quiet meanwhile, and never endless.

When the database goes away (a PostgreSQL outage, a lock held too long) or stops taking writes (disk
full, read-only, I/O errors), the cycles raise `DatabaseTrouble` and the watch:

- logs one warning line when the trouble begins, and one when the database is back (how long it was);
- makes every account's cycle wait, with backoff (1 s doubling to a minute), instead of failing each second;
- for trouble writing, tells the team once (the alert is written as soon as the database takes it);
- gives up when nothing could be written for `storage.give_up_after`, and at once when the SQLite file was
  deleted or replaced: `fatal` says why, the daemon stops and `carebot run` exits with status 1.

`state()` is what /health shows: ok, or degraded with the trouble and since when.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.clock import format_duration, now
from bot.config import Config
from bot.run.alerts import raise_alert
from bot.storage import CannotWrite, DatabaseReplaced, DatabaseTrouble, Storage

log = logging.getLogger("carebot.database")

FIRST_WAIT = 1.0  # seconds before the first retry; doubles
LONGEST_WAIT = 60.0
WHAT = {
    "unavailable": "cannot reach the database",
    "locked": "the database stays locked",
    "full": "the disk is full: the database takes no writes",
    "read_only": "the database is read-only: it takes no writes",
    "io": "the database cannot write (I/O error, or the file size limit)",
    "replaced": "the database file is not the one carebot opened",
    "shm": "the database's -shm file changed under carebot",
}


@dataclass(frozen=True)
class WatchState:
    """For /health: `status` is "ok", "degraded" (waiting for the database) or "failed" (giving up)."""

    status: str
    trouble: str | None
    message: str | None
    since: datetime | None
    last_write: datetime | None


class DatabaseWatch:
    def __init__(self, storage: Storage, config: Config, clock: Callable[[], float] = time.monotonic) -> None:
        self._storage = storage
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._trouble: DatabaseTrouble | None = None
        self._began: float = 0.0
        self._began_at: datetime | None = None
        self._last_failure: datetime = now()
        self._wait = FIRST_WAIT
        self._next_try = 0.0
        self._alert: tuple[str, str] | None = None  # (key, text) to raise once the database takes it
        self.fatal: str | None = None

    def ready(self) -> bool:
        """Whether a cycle may touch the database now (not while backing off, never after giving up)."""
        with self._lock:
            return self.fatal is None and self._clock() >= self._next_try

    def failed(self, trouble: DatabaseTrouble) -> bool:
        """A cycle met `trouble`. True when the daemon must stop (see `fatal`)."""
        last_write = self._storage.health().last_write
        with self._lock:
            first = self._trouble is None
            if first:
                self._began_at, self._wait = now(), FIRST_WAIT
                self._began = self._clock()
            elif type(trouble) is not type(self._trouble) or trouble.kind != self._trouble.kind:
                first = True  # another kind of trouble: worth its own line
            elif last_write is not None and last_write > self._last_failure:
                self._wait = FIRST_WAIT  # it wrote meanwhile: a passing loss (a backend killed), not an outage
            else:
                self._wait = min(self._wait * 2, LONGEST_WAIT)
            assert self._began_at is not None
            self._trouble, self._last_failure = trouble, now()
            self._next_try = self._clock() + self._wait
            # Stuck since the trouble began or the last write, whichever is later.
            stuck = (self._last_failure - max(self._began_at, last_write or self._began_at)).total_seconds()
            give_up = self._config.storage.give_up_after
            if isinstance(trouble, DatabaseReplaced):
                self.fatal = str(trouble)
            elif stuck >= give_up:
                self.fatal = (
                    f"could not write to the database for {format_duration(stuck)} "
                    f"(storage.give_up_after is {format_duration(give_up)}): {trouble}"
                )
            if isinstance(trouble, CannotWrite) and self._alert is None:
                stamp = self._began_at.isoformat(timespec="seconds")
                self._alert = (
                    f"database:{trouble.kind}:{stamp}",
                    f"carebot: {WHAT.get(trouble.kind, 'database trouble')} since {stamp} ({trouble}). "
                    "Nothing new is stored or answered meanwhile; nothing is lost while carebot waits. "
                    "See README, Operations.",
                )
            fatal = self.fatal
        if fatal is not None:
            log.critical("stopping: %s", fatal)
        elif first:
            log.warning(
                "%s (%s); waiting for it, trying again with backoff (giving up after %s)",
                WHAT.get(trouble.kind, "database trouble"),
                trouble,
                format_duration(self._config.storage.give_up_after),
            )
        return fatal is not None

    def settled(self) -> None:
        """A cycle ended; if the database is healthy again, say so once and tell the team what happened."""
        if not self._storage.health().ok:
            return
        with self._lock:
            trouble, alert = self._trouble, self._alert
            if trouble is None:
                return
            lasted = self._clock() - self._began
            self._trouble, self._alert, self._next_try = None, None, 0.0
        log.warning("the database is back after %s (the trouble was: %s)", format_duration(lasted), trouble.kind)
        if alert is not None:
            key, text = alert
            try:
                raise_alert(
                    self._storage,
                    key=key,
                    kind="database",
                    account=None,
                    text=f"{text} Back after {format_duration(lasted)}.",
                )
            except DatabaseTrouble as again:
                self.failed(again)

    def state(self) -> WatchState:
        health = self._storage.health()
        with self._lock:
            trouble = self._trouble
            status = "failed" if self.fatal else ("degraded" if trouble is not None or not health.ok else "ok")
            return WatchState(
                status=status,
                trouble=trouble.kind if trouble else health.trouble,
                message=self.fatal or (str(trouble) if trouble else health.message),
                since=self._began_at if trouble else health.since,
                last_write=health.last_write,
            )
