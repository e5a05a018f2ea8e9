"""The `account_leases` table: which worker reads an account's mention stream right now.

Several `carebot run` workers may share one database. Each account's stream is read by one of them at a
time: before reading, a worker takes the account's lease (a compare-and-set on its row: free, expired, or
already its own), renews it after every page, and gives it back when the read is done. A worker that dies
holding it blocks the account until `expires_at` at most; one seen dead for certain on this machine
(`bot/run/liveness.py`) is cleared at once by the next worker, with a compare-and-set on its identity.

`read_at` is when the last read began: a worker skips an account another worker began reading less than
a poll interval ago, so more workers do not mean more polls of the same stream.

The `workers` table counts the live workers (each signs every few seconds, and leaves when it stops), so
that each reads its share of the accounts and no more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.clock import now
from bot.storage.engine import Database
from bot.storage.tables import account_leases, workers


@dataclass(frozen=True)
class AccountLease:
    account: str
    holder: str | None
    expires_at: datetime | None
    read_at: datetime | None

    def live(self, at: datetime) -> bool:
        return self.holder is not None and self.expires_at is not None and self.expires_at > at


class Leases:
    def __init__(self, db: Database) -> None:
        self._db = db

    def take(self, account: str, holder: str, lease: timedelta, min_gap: timedelta = timedelta(0)) -> bool:
        """Take the account's lease for `lease`; False if another worker holds it, or began a read less
        than `min_gap` ago."""
        stamp = now()
        free = or_(
            account_leases.c.holder.is_(None),
            account_leases.c.holder == holder,
            account_leases.c.expires_at < stamp,
        )
        rested = or_(account_leases.c.read_at.is_(None), account_leases.c.read_at <= stamp - min_gap)
        with self._db.begin() as tx:
            result = tx.execute(
                update(account_leases)
                .where(and_(account_leases.c.account == account, free, rested))
                .values(holder=holder, expires_at=stamp + lease, read_at=stamp)
            )
            if result.rowcount == 1:
                return True
            exists = tx.execute(select(account_leases.c.account).where(account_leases.c.account == account)).first()
            if exists is not None:
                return False
            try:
                with tx.begin_nested():
                    tx.execute(
                        insert(account_leases).values(
                            account=account, holder=holder, expires_at=stamp + lease, read_at=stamp
                        )
                    )
            except IntegrityError:
                return False  # another worker created the row, and so holds it
        return True

    def renew(self, account: str, holder: str, lease: timedelta) -> bool:
        """Extend our lease; False if it is no longer ours (it expired and another worker took it)."""
        stamp = now()
        with self._db.begin() as tx:
            result = tx.execute(
                update(account_leases)
                .where(account_leases.c.account == account, account_leases.c.holder == holder)
                .values(expires_at=stamp + lease)
            )
        return result.rowcount == 1

    def release(self, account: str, holder: str) -> bool:
        """Give the lease back (only if it is still ours); `read_at` stays, for the next reader's gap."""
        with self._db.begin() as tx:
            result = tx.execute(
                update(account_leases)
                .where(account_leases.c.account == account, account_leases.c.holder == holder)
                .values(holder=None, expires_at=None)
            )
        return result.rowcount == 1

    def clear(self, account: str, dead_holder: str) -> bool:
        """End the lease of a holder known to be dead; False if the lease changed hands meanwhile."""
        with self._db.begin() as tx:
            result = tx.execute(
                update(account_leases)
                .where(account_leases.c.account == account, account_leases.c.holder == dead_holder)
                .values(holder=None, expires_at=None)
            )
        return result.rowcount == 1

    def get(self, account: str) -> AccountLease | None:
        with self._db.read() as db:
            row = db.execute(select(account_leases).where(account_leases.c.account == account)).mappings().first()
        if row is None:
            return None
        return AccountLease(row["account"], row["holder"], row["expires_at"], row["read_at"])

    # --- the live workers --------------------------------------------------------------------------

    def sign(self, worker: str, until: datetime) -> int:
        """Count `worker` live until `until`; the number of live workers, itself included. Workers gone
        for a day are forgotten."""
        stamp = now()
        with self._db.begin() as tx:
            result = tx.execute(update(workers).where(workers.c.worker == worker).values(seen_until=until))
            if result.rowcount == 0:
                try:
                    with tx.begin_nested():
                        tx.execute(insert(workers).values(worker=worker, seen_until=until))
                except IntegrityError:
                    pass  # cannot be another worker's row: ours, inserted by another thread of ours
            tx.execute(delete(workers).where(workers.c.seen_until < stamp - timedelta(days=1)))
            live = tx.execute(select(func.count()).select_from(workers).where(workers.c.seen_until > stamp))
            return int(live.scalar_one())

    def leave(self, worker: str) -> None:
        """`worker` stops: the others share its accounts at once, not when its sign runs out."""
        with self._db.begin() as tx:
            tx.execute(delete(workers).where(workers.c.worker == worker))
