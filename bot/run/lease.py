"""Who reads an account's mention stream: one worker at a time, by the account's lease.

Several `carebot run` workers may share one PostgreSQL database (same config). Before a cycle reads an
account's mentions, its worker takes the account's lease (`bot/storage/leases.py`); a worker that cannot
skips the read this time and goes on to sending, where every reply is claimed one by one, so sending is
shared by all workers while each page of mentions is read by one. The lease is renewed after every page
and given back when the read is done: reading takes seconds, and a free lease lets whichever worker comes
next read, so the reads spread over the workers by themselves (a worker busy with a long read of one account
is late for the next, and another takes it), and no worker can hold an account it is not reading.

How long a dead worker blocks an account: `READ_LEASE`, 60 s, at most. A page is one request (within the
account's `timeout`) and the storing of at most `page_size` mentions, far less than a minute, and the lease
is renewed after each. A holder seen dead for certain on this machine (`bot/run/liveness.py`: same boot and
pid namespace, pid gone or reused) is not waited for at all: the next worker ends its lease and reads.

A worker also skips an account whose last read began less than `GAP` of its poll interval ago, so that
W workers poll a stream about as often as one does, not W times as often.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from bot.clock import now
from bot.run.liveness import is_dead, process_identity
from bot.storage import Storage

log = logging.getLogger("carebot.lease")

READ_LEASE = timedelta(seconds=60)
GAP = 0.8  # of the poll interval: a little less than one, so a worker's own next cycle is never too early


def worker_identity() -> str:
    """This worker as a lease names it: the process (judged by bot/run/liveness.py) and a token of its own,
    so that two workers in one process (tests) are two holders."""
    return f"{process_identity()}#{uuid.uuid4().hex[:8]}"


def _process_of(holder: str) -> str:
    return holder.split("#", 1)[0]


@dataclass(frozen=True)
class ReadLease:
    """The lease this worker holds on one account's stream, for one read."""

    storage: Storage
    account: str
    holder: str

    def renew(self) -> bool:
        """Keep it for another READ_LEASE; False if it was lost (it ran out and another worker took it)."""
        return self.storage.leases.renew(self.account, self.holder, READ_LEASE)

    def release(self) -> None:
        self.storage.leases.release(self.account, self.holder)


def take_read_lease(storage: Storage, account: str, holder: str, interval: float | None) -> ReadLease | None:
    """The account's lease for this read, or None: another worker is reading it, or began to lately."""
    gap = timedelta(seconds=interval * GAP) if interval else timedelta(0)
    if storage.leases.take(account, holder, READ_LEASE, gap):
        return ReadLease(storage, account, holder)
    held = storage.leases.get(account)
    if held is None or held.holder is None or not held.live(now()) or held.holder == holder:
        return None
    if not is_dead(_process_of(held.holder)):
        log.debug("%s: another worker is reading it; sending only", account)
        return None
    if not storage.leases.clear(account, held.holder):
        return None  # another worker saw it first
    log.info("%s: the worker that was reading it has died; this one reads it now", account)
    if storage.leases.take(account, holder, READ_LEASE):
        return ReadLease(storage, account, holder)
    return None
