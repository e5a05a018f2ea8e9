"""The `sessions` table: who is logged in to the approval desk, until when.

The cookie carries a random token; the table keeps only its SHA-256, so a copy of the database opens no
session. Ending a session deletes its row: a copy of the cookie made before logging out opens nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import delete, insert, select

from bot.clock import now
from bot.storage.engine import Database
from bot.storage.records import StoredSession, session_record
from bot.storage.tables import sessions


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class Sessions:
    def __init__(self, db: Database) -> None:
        self._db = db

    def start(self, user: str, fingerprint: str, expires_at: datetime) -> tuple[str, StoredSession]:
        """A new session for `user`; the token (for the cookie) and the session. Expired rows are dropped."""
        token = secrets.token_urlsafe(32)
        stamp = now()
        values = {
            "id": _digest(token),
            "user": user,
            "fingerprint": fingerprint,
            "csrf": secrets.token_urlsafe(32),
            "created_at": stamp,
            "expires_at": expires_at,
        }
        with self._db.begin() as tx:
            tx.execute(delete(sessions).where(sessions.c.expires_at <= stamp))
            tx.execute(insert(sessions).values(**values))
        return token, session_record(values)

    def get(self, token: str) -> StoredSession | None:
        """The live session for this token; None if there is none or it has expired."""
        if not token or len(token) > 200:
            return None
        with self._db.read() as db:
            row = (
                db.execute(select(sessions).where(sessions.c.id == _digest(token), sessions.c.expires_at > now()))
                .mappings()
                .first()
            )
        return session_record(row) if row else None

    def end(self, token: str) -> bool:
        with self._db.begin() as tx:
            result = tx.execute(delete(sessions).where(sessions.c.id == _digest(token)))
        return result.rowcount == 1

    def end_all(self, user: str) -> int:
        """End every session of `user` (say, when their access changes); how many there were."""
        with self._db.begin() as tx:
            result = tx.execute(delete(sessions).where(sessions.c.user == user))
        return int(result.rowcount)

    def count(self, user: str | None = None) -> int:
        query = select(sessions.c.id).where(sessions.c.expires_at > now())
        if user is not None:
            query = query.where(sessions.c.user == user)
        with self._db.read() as db:
            return len(db.execute(query).all())
