"""The database: the only door to it. Every read and write carebot makes goes through `Storage`.

`Storage.open(url)` migrates the schema to the newest revision, then hands out one small repository per table
group: `accounts`, `mentions`, `replies`, `cases`, `alerts`, `decisions`, `incidents`, `sessions` (desk
logins), `quarantine` (posts set aside), `leases` (which worker reads an account's stream now), `privacy`
(retention, erasure on request, the audit of both), and `figures` (counts for the desk and status). `health()`
says what the latest transactions said about the database itself. Nothing outside this package imports
SQLAlchemy or the tables (tests/test_boundaries.py checks it): the driver's errors come out as storage's own
(`bot.storage.errors`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

from bot.storage.accounts import Accounts
from bot.storage.alerts import Alerts
from bot.storage.cases import Cases
from bot.storage.decisions import Decisions
from bot.storage.engine import Database, DatabaseHealth, create_db_engine
from bot.storage.errors import (
    CannotWrite,
    Conflict,
    DatabaseReplaced,
    DatabaseTrouble,
    DatabaseUnavailable,
    NotFound,
    Unstorable,
)
from bot.storage.figures import Figures
from bot.storage.incidents import Incidents
from bot.storage.leases import Leases
from bot.storage.mentions import Mentions
from bot.storage.privacy import Privacy
from bot.storage.quarantine import Quarantine
from bot.storage.replies import Replies
from bot.storage.sessions import Sessions

__all__ = [
    "CannotWrite",
    "Conflict",
    "DatabaseHealth",
    "DatabaseReplaced",
    "DatabaseTrouble",
    "DatabaseUnavailable",
    "NotFound",
    "Storage",
    "Unstorable",
]


@dataclass(frozen=True)
class Storage:
    db: Database
    accounts: Accounts
    mentions: Mentions
    replies: Replies
    alerts: Alerts
    figures: Figures
    cases: Cases
    decisions: Decisions
    incidents: Incidents
    sessions: Sessions
    quarantine: Quarantine
    privacy: Privacy
    leases: Leases

    def held(self) -> AbstractContextManager[None]:
        """One database connection for this thread's work inside the block (see `Database.held`)."""
        return self.db.held()

    def let_go(self) -> None:
        """Inside `held()`: the connection back to the pool before a wait on the network (see `Database.let_go`)."""
        self.db.let_go()

    @classmethod
    def open(cls, url: str) -> Storage:
        """The database at `url`, migrated. DatabaseTrouble if it cannot be reached or written."""
        db = Database.open(url, create_db_engine)
        return cls(
            db,
            Accounts(db),
            Mentions(db),
            Replies(db),
            Alerts(db),
            Figures(db),
            Cases(db),
            Decisions(db),
            Incidents(db),
            Sessions(db),
            Quarantine(db),
            Privacy(db),
            Leases(db),
        )

    def ping(self) -> None:
        """Raise if the database cannot be reached (for /health)."""
        self.db.ping()

    def health(self) -> DatabaseHealth:
        """The database as the latest transactions found it: fine, or the trouble, since when, and when
        this process last wrote to it."""
        return self.db.health()

    @property
    def backend(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self.db.dialect

    def close(self) -> None:
        self.db.dispose()
