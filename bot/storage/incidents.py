"""The `incidents`, `mention_topics` and `incident_events` tables: many reports of one problem as one.

State changes are compare-and-set on the state they start from. Members are cases (`cases.incident_id`):
merging moves every member, splitting takes one out, and nothing else ever drops one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from bot.clock import now
from bot.storage.engine import Database
from bot.storage.errors import Conflict, NotFound
from bot.storage.records import (
    CaseEvent,
    Reporter,
    StoredCase,
    StoredIncident,
    case_record,
    incident_record,
)
from bot.storage.tables import cases, incident_events, incidents, mention_topics, mentions

OPEN, RESOLVED, FALSE_ALARM, MERGED = "open", "resolved", "false_alarm", "merged"
# Characters: "the problem with {words}" and "(we expect it fixed by {eta})" must leave room in a post of 280.
WORDING_LIMIT, ETA_LIMIT = 80, 60


class Incidents:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, incident_id: int) -> StoredIncident:
        with self._db.read() as db:
            row = db.execute(select(incidents).where(incidents.c.id == incident_id)).mappings().first()
        if row is None:
            raise NotFound(f"no incident {incident_id}")
        return incident_record(row)

    def listed(self, states: Sequence[str] | None = None, limit: int = 200) -> list[StoredIncident]:
        query = select(incidents).order_by((incidents.c.state == OPEN).desc(), incidents.c.id.desc()).limit(limit)
        if states:
            query = query.where(incidents.c.state.in_(list(states)))
        with self._db.read() as db:
            return [incident_record(row) for row in db.execute(query).mappings()]

    def open_for(self, account: str, topics: Sequence[str]) -> StoredIncident | None:
        """The open incident of this account about one of `topics`, the most recent one."""
        if not topics:
            return None
        with self._db.read() as db:
            row = (
                db.execute(
                    select(incidents)
                    .where(incidents.c.account == account, incidents.c.state == OPEN, incidents.c.topic.in_(topics))
                    .order_by(incidents.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return incident_record(row) if row else None

    def enough_reporters(self, account: str, topic: str, since: datetime, needed: int) -> bool:
        """At least `needed` different people complained about `topic` since `since` (stops counting there)."""
        query = (
            select(mention_topics.c.author_id)
            .where(mention_topics.c.account == account, mention_topics.c.topic == topic, mention_topics.c.at >= since)
            .distinct()
            .limit(needed)
        )
        with self._db.read() as db:
            return len(db.execute(query).all()) >= needed

    def reporters(self, account: str, topic: str, since: datetime) -> list[Reporter]:
        """Complaints about `topic` since `since`, oldest first, whose cases are in no incident yet: the
        people a new incident would take in (a case is in one incident at most)."""
        with self._db.read() as db:
            rows = db.execute(
                select(mention_topics.c.mention_id, mentions.c.case_id, mention_topics.c.author_id)
                .add_columns(mention_topics.c.lang, mention_topics.c.at)
                .join(mentions, mentions.c.id == mention_topics.c.mention_id)
                .join(cases, cases.c.id == mentions.c.case_id)
                .where(
                    mention_topics.c.account == account,
                    mention_topics.c.topic == topic,
                    mention_topics.c.at >= since,
                    cases.c.incident_id.is_(None),
                )
                .order_by(mention_topics.c.at, mention_topics.c.mention_id)
            ).all()
        return [Reporter(r.mention_id, r.case_id, r.author_id, r.lang, r.at) for r in rows]

    def open(self, account: str, topic: str, case_ids: Sequence[int], at: datetime, why: str) -> StoredIncident | None:
        """A new incident with these cases as members; None if one about `topic` is open already, or if none
        of the cases is free to join it (each joined another incident meanwhile): an incident of nobody."""
        try:
            with self._db.begin() as tx:
                exists = tx.execute(
                    select(incidents.c.id).where(
                        incidents.c.account == account, incidents.c.topic == topic, incidents.c.state == OPEN
                    )
                ).first()
                if exists is not None:
                    return None
                incident_id = tx.execute(
                    insert(incidents)
                    .values(
                        account=account,
                        topic=topic,
                        state=OPEN,
                        wording={},
                        opened_at=at,
                        updated_at=at,
                        alerted_size=len(case_ids),
                    )
                    .returning(incidents.c.id)
                ).scalar_one()
                if not _join(tx, incident_id, case_ids):
                    raise _NobodyJoined  # rolls the incident back
                event(tx, incident_id, "opened", "bot", why, at)
        except _NobodyJoined:
            return None
        return self.get(int(incident_id))

    def members(self, incident_id: int) -> list[StoredCase]:
        with self._db.read() as db:
            rows = db.execute(select(cases).where(cases.c.incident_id == incident_id).order_by(cases.c.id)).mappings()
            return [case_record(row) for row in rows]

    def size(self, incident_id: int) -> int:
        with self._db.read() as db:
            return int(
                db.execute(
                    select(func.count()).select_from(cases).where(cases.c.incident_id == incident_id)
                ).scalar_one()
            )

    def grew(self, incident_id: int, size: int, expected: int) -> bool:
        """Note that the team was told about `size` members (compare-and-set: one alert per growth)."""
        with self._db.begin() as tx:
            changed = tx.execute(
                update(incidents)
                .where(incidents.c.id == incident_id, incidents.c.alerted_size == expected)
                .values(alerted_size=size, updated_at=now())
            )
        return changed.rowcount == 1

    def events(self, incident_id: int) -> list[CaseEvent]:
        with self._db.read() as db:
            rows = db.execute(
                select(incident_events)
                .where(incident_events.c.incident_id == incident_id)
                .order_by(incident_events.c.id)
            ).mappings()
            return [
                CaseEvent(
                    id=r["id"],
                    case_id=r["case_id"] or 0,
                    at=r["at"],
                    kind=r["kind"],
                    actor=r["actor"],
                    text=r["text"],
                    mention_id=None,
                    reply_id=None,
                )
                for r in rows
            ]

    def add_event(self, incident_id: int, kind: str, actor: str, text: str = "", case_id: int | None = None) -> None:
        with self._db.begin() as tx:
            event(tx, incident_id, kind, actor, text, now(), case_id=case_id)

    def edit(self, incident_id: int, by: str, *, wording: dict[str, str] | None = None, eta: str | None = None) -> None:
        """The team's public wording of the topic (per language) and expected fix time, while it is open.
        ValueError for words longer than fit the incident's answer in one post (they were dropped at the next
        report, for the generic answer, with nothing said)."""
        for lang, words in (wording or {}).items():
            if len(words) > WORDING_LIMIT:
                raise ValueError(f"the words for {lang} have {len(words)} characters; at most {WORDING_LIMIT}")
        if eta is not None and len(eta) > ETA_LIMIT:
            raise ValueError(f"the expected fix time has {len(eta)} characters; at most {ETA_LIMIT}")
        values: dict[str, Any] = {"updated_at": now()}
        said = []
        if wording is not None:
            values["wording"] = wording
            said.append("wording: " + "; ".join(f"{k}: {v}" for k, v in sorted(wording.items())))
        if eta is not None:
            values["eta"] = eta or None
            said.append(f"expected fix: {eta or 'not said'}")
        with self._db.begin() as tx:
            changed = tx.execute(
                update(incidents).where(incidents.c.id == incident_id, incidents.c.state == OPEN).values(**values)
            )
            if changed.rowcount == 1:
                event(tx, incident_id, "edited", by, "; ".join(said), now())
        if changed.rowcount != 1:
            # Nobody new joins a closed incident, and its fixed-notices are already written: words
            # changed now would go nowhere while the command said they were taken.
            state = self.get(incident_id).state
            raise Conflict(f"incident {incident_id} is {state}: its words and fix time change only while it is open")

    def close(self, incident_id: int, state: str, by: str, note: str | None, at: datetime) -> StoredIncident:
        """Resolve it or call it a false alarm (compare-and-set from open)."""
        with self._db.begin() as tx:
            changed = tx.execute(
                update(incidents)
                .where(incidents.c.id == incident_id, incidents.c.state == OPEN)
                .values(state=state, resolved_at=at, resolved_by=by, note=note, updated_at=at)
            )
            if changed.rowcount == 1:
                event(tx, incident_id, state, by, note or "", at)
        if changed.rowcount != 1:
            raise Conflict(f"incident {incident_id} is {self.get(incident_id).state}: only an open one can be closed")
        return self.get(incident_id)

    def merge(self, source: int, target: int, by: str) -> None:
        """Every member of `source` joins `target`; `source` is marked merged. Both must be open."""
        at = now()
        with self._db.begin() as tx:
            states = dict(
                tx.execute(select(incidents.c.id, incidents.c.state).where(incidents.c.id.in_([source, target]))).all()
            )
            if source == target or states.get(source) != OPEN or states.get(target) != OPEN:
                raise Conflict(f"incidents {source} and {target} must be two open incidents")
            moved = tx.execute(update(cases).where(cases.c.incident_id == source).values(incident_id=target)).rowcount
            tx.execute(
                update(incidents)
                .where(incidents.c.id == source)
                .values(state=MERGED, merged_into=target, updated_at=at)
            )
            event(tx, source, "merged", by, f"into incident #{target}", at)
            event(tx, target, "merged", by, f"incident #{source} and its {moved} members joined", at)

    def split(self, incident_id: int, case_id: int, by: str) -> None:
        """Take one case out of the incident (it was joined by mistake)."""
        with self._db.begin() as tx:
            changed = tx.execute(
                update(cases).where(cases.c.id == case_id, cases.c.incident_id == incident_id).values(incident_id=None)
            )
            if changed.rowcount != 1:
                raise Conflict(f"case {case_id} is not a member of incident {incident_id}")
            event(tx, incident_id, "split", by, f"case #{case_id} is not about this", now(), case_id=case_id)

    def join(self, incident_id: int, case_ids: Sequence[int]) -> None:
        with self._db.begin() as tx:
            _join(tx, incident_id, case_ids)


class _NobodyJoined(Exception):
    pass


def _join(tx: Connection, incident_id: int, case_ids: Sequence[int]) -> int:
    """The cases, those in no incident yet, into this one; how many joined."""
    if not case_ids:
        return 0
    joined = tx.execute(
        update(cases)
        .where(cases.c.id.in_(list(case_ids)), cases.c.incident_id.is_(None))
        .values(incident_id=incident_id)
    )
    return int(joined.rowcount)


def event(
    tx: Connection, incident_id: int, kind: str, actor: str, text: str, at: datetime, *, case_id: int | None = None
) -> None:
    tx.execute(
        insert(incident_events).values(
            incident_id=incident_id, at=at, kind=kind, actor=actor, text=text, case_id=case_id
        )
    )
