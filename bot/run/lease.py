"""Who reads an account's mention stream: one worker at a time, by the account's lease; and who listens to a
streaming account's stream (the stream's lease, at the end of this module).

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
# A read counts the live workers afresh, but not once per account: the accounts' cycles start together,
# and a sign each (a write) was a tenth of an idle worker's CPU with ten accounts polled every second.
SHARE_FRESH = 0.5
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

    def sign(self, storage: Storage, within: float = SIGN_EVERY) -> None:
        """Sign in unless this worker did in the last `within` seconds, and learn how many workers are live."""
        moment = time.monotonic()
        if moment - self._signed_at < within:
            return
        self._signed_at = moment
        self.live = max(1, storage.leases.sign(self.identity, now() + PRESENCE))

    def leave(self, storage: Storage) -> None:
        storage.leases.leave(self.identity)

    def share(self, accounts: int) -> int:
        return max(1, math.ceil(accounts / self.live))

    def _reserve(self, account: str, accounts: int, beyond_share: bool = False) -> bool:
        with self._lock:
            if not beyond_share and len(self.reading) >= self.share(accounts):
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
    storage: Storage, worker: Worker, account: str, accounts: int, interval: float | None, streamed: bool = False
) -> ReadLease | None:
    """The account's lease for this read, or None: another worker is reading it or began to lately, or
    this worker already reads its share of the `accounts`. A `streamed` account is read only by the
    worker that listens to its stream, whatever its share, while one does: so one worker decides all of
    the account's new mentions, and a person's two posts a moment apart join one case."""
    worker.sign(storage, within=SHARE_FRESH)  # the share as of now: workers that started a moment ago count
    listener = _listener(storage, account) if streamed else None
    if listener is not None and listener != worker.identity:
        log.debug("%s: another worker listens to its stream and reads it; sending only", account)
        return None
    if not worker._reserve(account, accounts, beyond_share=listener is not None):
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
    return _take_key(storage, holder, account, READ_LEASE, gap, f"{account}: the worker that was reading it")


def _take_key(storage: Storage, holder: str, key: str, lease: timedelta, gap: timedelta, who: str) -> bool:
    """Take the lease named `key`, ending it first if its holder is dead for certain (`who` held it)."""
    if storage.leases.take(key, holder, lease, gap):
        return True
    other = _live_holder(storage, key)
    if other is None or other == holder or not is_dead(_process_of(other)):
        return False
    if not storage.leases.clear(key, other):
        return False  # another worker saw it first
    log.info("%s has died; this one takes over", who)
    return storage.leases.take(key, holder, lease)


# --- the stream's lease ------------------------------------------------------------------------------
# A streaming account (bot/run/stream.py) is listened to by one worker at a time, which is also the only
# one to read (poll) it meanwhile; the others only send its replies, and try for the stream every
# STREAM_RETRY seconds: one of them listens, and reads, once the listener stops or dies. The lease is
# renewed every STREAM_RENEW seconds while held, and given back when the worker stops.

STREAM_LEASE = timedelta(seconds=60)
STREAM_RENEW = 15.0  # seconds between two renewals by the listening worker
STREAM_RETRY = 15.0  # seconds between two tries of a worker waiting to listen


def stream_key(account: str) -> str:
    """The stream's lease, in the same table as the reads' (keyed by the account's name): a line break,
    which no account's name holds (the config refuses one), keeps the two apart."""
    return f"{account}\nstream"


def take_stream_lease(storage: Storage, worker: Worker, account: str) -> bool:
    """Whether this worker may listen to the account's stream now (no live worker does)."""
    worker.sign(storage)
    who = f"{account}: the worker that was listening to its stream"
    return _take_key(storage, worker.identity, stream_key(account), STREAM_LEASE, timedelta(0), who)


def renew_stream_lease(storage: Storage, worker: Worker, account: str) -> bool:
    """Keep listening for another STREAM_LEASE; False if the lease was lost (another worker listens)."""
    worker.sign(storage)
    return storage.leases.renew(stream_key(account), worker.identity, STREAM_LEASE)


def release_stream_lease(storage: Storage, worker: Worker, account: str) -> None:
    storage.leases.release(stream_key(account), worker.identity)


def _listener(storage: Storage, account: str) -> str | None:
    """The worker listening to the account's stream now, if one is (one seen dead is not)."""
    holder = _live_holder(storage, stream_key(account))
    return None if holder is None or is_dead(_process_of(holder)) else holder


def _live_holder(storage: Storage, key: str) -> str | None:
    """Who holds the lease named `key`, if its time has not run out."""
    held = storage.leases.get(key)
    return held.holder if held is not None and held.live(now()) else None
