"""The `quarantine` table: posts that could not be read or stored, set aside once each so the stream moves on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from bot.clock import as_utc, now
from bot.storage.engine import Database
from bot.storage.tables import quarantine


@dataclass(frozen=True)
class QuarantinedPost:
    id: int
    account: str
    platform: str
    post_id: str
    cursor: str | None
    stage: str  # read | store | process
    reason: str
    excerpt: str  # masked and shortened
    author_handle: str
    created_at: datetime


def storable(text: str, limit: int) -> str:
    """`text` as any database takes it: no lone surrogates, no NUL or other control characters, at most
    `limit` characters."""
    clean = text.encode("utf-8", "replace").decode("utf-8")
    clean = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in clean)
    return clean[:limit]


class Quarantine:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        *,
        account: str,
        platform: str,
        post_id: str,
        cursor: str | None,
        stage: str,
        reason: str,
        excerpt: str,
        author_handle: str = "",
    ) -> bool:
        """Set a post aside; False if it was set aside before (nothing changes). Every value is made
        storable first: what could not be stored once must not fail again here."""
        try:
            with self._db.begin() as tx:
                tx.execute(
                    insert(quarantine).values(
                        account=account,
                        platform=platform,
                        post_id=storable(post_id, 200),
                        cursor=storable(cursor, 100) if cursor is not None else None,
                        stage=stage,
                        reason=storable(reason, 1000),
                        excerpt=storable(excerpt, 1000),
                        author_handle=storable(author_handle, 300),
                        created_at=now(),
                    )
                )
        except IntegrityError:
            return False
        return True

    def has(self, account: str, post_id: str) -> bool:
        with self._db.read() as db:
            found = db.execute(
                select(quarantine.c.id).where(
                    quarantine.c.account == account, quarantine.c.post_id == storable(post_id, 200)
                )
            ).first()
        return found is not None

    def recent(self, account: str | None = None, limit: int = 20) -> list[QuarantinedPost]:
        """The latest posts set aside (of one account), newest first."""
        query = select(quarantine).order_by(quarantine.c.id.desc()).limit(limit)
        if account is not None:
            query = query.where(quarantine.c.account == account)
        with self._db.read() as db:
            return [_record(row) for row in db.execute(query).mappings()]

    def count(self, account: str | None = None) -> int:
        query = select(func.count()).select_from(quarantine)
        if account is not None:
            query = query.where(quarantine.c.account == account)
        with self._db.read() as db:
            return int(db.execute(query).scalar_one())


def _record(row: Any) -> QuarantinedPost:
    return QuarantinedPost(
        id=row["id"],
        account=row["account"],
        platform=row["platform"],
        post_id=row["post_id"],
        cursor=row["cursor"],
        stage=row["stage"],
        reason=row["reason"],
        excerpt=row["excerpt"],
        author_handle=row["author_handle"],
        created_at=as_utc(row["created_at"]),
    )
