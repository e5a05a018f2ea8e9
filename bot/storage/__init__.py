"""The database: the only door to it. Every read and write carebot makes goes through `Storage`.

`Storage.open(url)` migrates the schema to the newest revision, then hands out one small repository per
table group: `accounts`, `mentions`, `replies`, `cases`, `alerts`, `sessions` (desk logins), and `figures`
(counts for the desk and status).
Nothing outside this package imports SQLAlchemy or the tables (tests/test_boundaries.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.storage.accounts import Accounts
from bot.storage.alerts import Alerts
from bot.storage.cases import Cases
from bot.storage.decisions import Decisions
from bot.storage.engine import Database, create_db_engine, is_current, migrate
from bot.storage.errors import Conflict, NotFound
from bot.storage.figures import Figures
from bot.storage.incidents import Incidents
from bot.storage.mentions import Mentions
from bot.storage.replies import Replies
from bot.storage.sessions import Sessions

__all__ = ["Conflict", "NotFound", "Storage"]


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

    @classmethod
    def open(cls, url: str) -> Storage:
        engine = create_db_engine(url)
        if not is_current(engine):
            with engine.begin() as connection:
                migrate(connection)  # under a lock, and Alembic checks the revision again: one migrates
            if engine.dialect.name == "sqlite":
                engine.dispose()  # the migration's connection has foreign keys off: new ones turn them on
        db = Database(engine)
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
        )

    def ping(self) -> None:
        """Raise if the database cannot be reached (for /health)."""
        self.db.ping()

    @property
    def backend(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self.db.dialect

    def close(self) -> None:
        self.db.dispose()
