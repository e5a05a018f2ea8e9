"""Who reads an account's mention stream: one worker at a time, by the account's lease.

Several `carebot run` workers may share one PostgreSQL database (same config). Before a cycle reads an
account's mentions, its worker takes the account's lease (`bot/storage/leases.py`); a worker that cannot
skips the read this time and goes on to sending, where every reply is claimed one by one, so sending is
shared by all workers while each page of mentions is read by one. The lease is renewed after every page
and given back when the read is done, so no worker holds an account it is not reading.

How long a dead worker blocks an account: `READ_LEASE`, 60 s, at most. A page is one request (within the
account's `timeout`) and the storing of at most `page_size` mentions, far less than a minute, and the lease
is renewed after each. A holder seen dead for certain on this machine (`bot/run/liveness.py`: same boot and
pid namespace, pid gone or reused) is not waited for at all: the next worker ends its lease and reads.

Spreading the accounts: each worker reads at most its share, ceil(accounts / live workers), at a time, so
that a backlog is read, and classified, by all workers, each in its own process, not all by whichever
started first. The live workers sign in the `workers` table when they start, before each read they begin
and every `SIGN_EVERY` seconds while reading, and count as gone `PRESENCE` after their last sign (or at once
when they stop). A worker busy only sending for longer than that is not counted for a while: the others
then read a little more than their share, which is harmless. The share is checked when a read begins, not
during it: leases end with every read, so a worker that joins gets its share at the next reads (giving an
account back in the middle of a read was tried: the account then waited, unread, until the next worker's
job for it came round, behind its long sending cycles). And a worker skips an account whose last read
began less than `GAP` of its poll interval ago, so that W workers poll a stream about as often as one does,
not W times as often.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from bot.clock import now
from bot.run.liveness import is_dead, process_identity
from bot.storage import Storage

log = logging.getLogger("carebot.lease")

READ_LEASE = timedelta(seconds=60)
GAP = 0.8  # of the poll interval: a little less than one, so a worker's own next cycle is never too early
SIGN_EVERY = 2.0  # seconds between a worker's signs of life
PRESENCE = timedelta(seconds=30)  # a worker that has not signed for this long no longer counts


def worker_identity() -> str:
    """This worker as a lease names it: the process (judged by bot/run/liveness.py) and a token of its own,
    so that two workers in one process (tests) are two holders."""
    return f"{process_identity()}#{uuid.uuid4().hex[:8]}"


def _process_of(holder: str) -> str:
    return holder.split("#", 1)[0]


@dataclass
class Worker:
    """This worker's side of the leases: who it is, which accounts it is reading, how many workers share
    the database."""

    identity: str = field(default_factory=worker_identity)
    reading: set[str] = field(default_factory=set)
    live: int = 1
    _signed_at: float = -math.inf
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sign(self, storage: Storage, force: bool = False) -> None:
        """Sign in (at most every SIGN_EVERY seconds), and learn how many workers are live."""
        moment = time.monotonic()
        if not force and moment - self._signed_at < SIGN_EVERY:
            return
        self._signed_at = moment
        self.live = max(1, storage.leases.sign(self.identity, now() + PRESENCE))

    def leave(self, storage: Storage) -> None:
        storage.leases.leave(self.identity)

    def share(self, accounts: int) -> int:
        return max(1, math.ceil(accounts / self.live))

    def _reserve(self, account: str, accounts: int) -> bool:
        with self._lock:
            if len(self.reading) >= self.share(accounts):
                return False
            self.reading.add(account)
            return True

    def _done(self, account: str) -> None:
        with self._lock:
            self.reading.discard(account)


@dataclass(frozen=True)
class ReadLease:
    """The lease this worker holds on one account's stream, for one read."""

    storage: Storage
    worker: Worker
    account: str

    def renew(self) -> bool:
        """Keep it for another READ_LEASE; False if it was lost (it ran out and another worker took it)."""
        self.worker.sign(self.storage)
        return self.storage.leases.renew(self.account, self.worker.identity, READ_LEASE)

    def release(self) -> None:
        self.worker._done(self.account)
        self.storage.leases.release(self.account, self.worker.identity)


def take_read_lease(
    storage: Storage, worker: Worker, account: str, accounts: int, interval: float | None
) -> ReadLease | None:
    """The account's lease for this read, or None: another worker is reading it or began to lately, or
    this worker already reads its share of the `accounts`."""
    worker.sign(storage, force=True)  # the share as of now: workers that started a moment ago count
    if not worker._reserve(account, accounts):
        log.debug("%s: this worker reads its share already (%s); sending only", account, worker.share(accounts))
        return None
    try:
        if _take(storage, worker.identity, account, interval):
            return ReadLease(storage, worker, account)
    except BaseException:
        worker._done(account)
        raise
    worker._done(account)
    return None


def _take(storage: Storage, holder: str, account: str, interval: float | None) -> bool:
    gap = timedelta(seconds=interval * GAP) if interval else timedelta(0)
    if storage.leases.take(account, holder, READ_LEASE, gap):
        return True
    held = storage.leases.get(account)
    if held is None or held.holder is None or not held.live(now()) or held.holder == holder:
        return False
    if not is_dead(_process_of(held.holder)):
        log.debug("%s: another worker is reading it; sending only", account)
        return False
    if not storage.leases.clear(account, held.holder):
        return False  # another worker saw it first
    log.info("%s: the worker that was reading it has died; this one reads it now", account)
    return storage.leases.take(account, holder, READ_LEASE)
