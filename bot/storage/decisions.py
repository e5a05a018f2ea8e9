"""The `decisions` table: what people decided about the bot's reading of a post (label confirmed,
corrected, or "it is trolling"), kept as labelled examples. Callers mask the text before it gets here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select

from bot.storage.engine import Database
from bot.storage.records import Decided
from bot.storage.tables import decisions


class Decisions:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        *,
        account: str,
        mention_id: int | None,
        lang: str,
        label: str,
        source: str,
        text: str,
        by: str,
        at: datetime,
    ) -> None:
        with self._db.begin() as tx:
            tx.execute(
                insert(decisions).values(
                    account=account,
                    mention_id=mention_id,
                    lang=lang,
                    label=label,
                    source=source,
                    text=text,
                    decided_by=by,
                    at=at,
                )
            )

    def all(self) -> list[Decided]:
        """Every decision, oldest first."""
        with self._db.read() as db:
            rows = db.execute(select(decisions).order_by(decisions.c.id)).mappings()
            return [Decided(**{f: row[f] for f in Decided.__dataclass_fields__}) for row in rows]
