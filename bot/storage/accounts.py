"""The `accounts` table: where each account's mention stream was read up to, pauses, usage counters, and
the ledger a metered connector keeps of what it asked of its platform."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.clock import now
from bot.storage.engine import Database
from bot.storage.records import AccountState, account_record
from bot.storage.tables import accounts


class Accounts:
    def __init__(self, db: Database) -> None:
        self._db = db

    def ensure(self, name: str, platform: str) -> AccountState:
        """The account's row, created on first use (another worker may create it at the same time)."""
        with self._db.begin() as tx:
            row = tx.execute(select(accounts).where(accounts.c.name == name)).mappings().first()
            if row is None:
                try:
                    with tx.begin_nested():
                        tx.execute(
                            insert(accounts).values(
                                name=name,
                                platform=platform,
                                requests=0,
                                posts_read=0,
                                posts_created=0,
                                updated_at=now(),
                            )
                        )
                except IntegrityError:
                    pass  # another worker created it first
                row = tx.execute(select(accounts).where(accounts.c.name == name)).mappings().one()
        return account_record(row)

    def get(self, name: str) -> AccountState | None:
        with self._db.read() as db:
            row = db.execute(select(accounts).where(accounts.c.name == name)).mappings().first()
        return account_record(row) if row else None

    def all(self) -> list[AccountState]:
        with self._db.read() as db:
            rows = db.execute(select(accounts).order_by(accounts.c.name)).mappings().all()
        return [account_record(row) for row in rows]

    def update(self, name: str, **values: Any) -> None:
        with self._db.begin() as tx:
            tx.execute(update(accounts).where(accounts.c.name == name).values(updated_at=now(), **values))

    def move_cursor(self, name: str, expected: str | None, cursor: str) -> bool:
        """Move the stream's cursor only if it still stands where this reader found it (a compare-and-set):
        False if another worker moved it meanwhile, whose position then stands."""
        return self._if_cursor_is(name, expected, cursor=cursor)

    def mark_cursor(self, name: str, expected: str | None, marks: list[list[str]]) -> bool:
        """Save where the cursor stood lately (bot/run/overlap.py), only if the cursor is still `expected`."""
        return self._if_cursor_is(name, expected, cursor_marks=marks)

    def _if_cursor_is(self, name: str, expected: str | None, **values: Any) -> bool:
        with self._db.begin() as tx:
            result = tx.execute(
                update(accounts)
                .where(accounts.c.name == name, accounts.c.cursor.is_not_distinct_from(expected))
                .values(updated_at=now(), **values)
            )
        return result.rowcount == 1

    def add_usage(self, name: str, requests: int = 0, posts_read: int = 0, posts_created: int = 0) -> None:
        with self._db.begin() as tx:
            tx.execute(
                update(accounts)
                .where(accounts.c.name == name)
                .values(
                    requests=accounts.c.requests + requests,
                    posts_read=accounts.c.posts_read + posts_read,
                    posts_created=accounts.c.posts_created + posts_created,
                )
            )

    def ledger(self, name: str) -> dict[str, Any]:
        """The account's connector ledger as last saved ({} if none yet)."""
        with self._db.read() as db:
            stored = db.execute(select(accounts.c.ledger).where(accounts.c.name == name)).scalar_one_or_none()
        return dict(stored) if isinstance(stored, dict) else {}

    def save_ledger(self, name: str, state: Mapping[str, Any]) -> None:
        with self._db.begin() as tx:
            tx.execute(update(accounts).where(accounts.c.name == name).values(ledger=dict(state)))
