"""Every query of the hot path and the desk finds its rows through an index (PostgreSQL's plans).

Each storage call a cycle or a desk page makes is run on a small PostgreSQL schema with the planner told to
avoid sequential scans where it can (`enable_seqscan = off`): a sequential scan that still shows up means no
index serves the query, and it would read the whole table once `mentions` and `replies` hold millions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from bot.models import Action, Decision, ReplyState
from bot.storage import Storage
from bot.storage.records import CasePlan, Classified
from connectors.base import Author, Mention
from tests.peers.database import postgres_schema_url

WATCHED = ("mentions", "replies", "cases", "alerts", "mention_topics")
ACCOUNT = "acme"
NOW = datetime.now(UTC)


@pytest.fixture
def storage() -> Iterator[Storage]:
    for url in postgres_schema_url():
        store = Storage.open(url)
        try:
            _seed(store)
            yield store
        finally:
            store.close()


def _seed(storage: Storage) -> None:
    storage.accounts.ensure(ACCOUNT, "mastodon")
    classified = Classified("en", "complaint", 0.9, {}, [], False, False)
    for n in range(60):
        mention = Mention(
            "mastodon",
            f"p{n}",
            str(n),
            Author(f"a{n % 7}", f"a{n % 7}"),
            "login is broken",
            NOW,
            conversation_id=f"c{n}",
        )
        decision = Decision("complaint", Action.REPLY, "seed", reply_text="@a sorry", direct_text="@a details?")
        plan = CasePlan(None, "open", "seed")
        state = ReplyState.PENDING if n % 2 else ReplyState.APPROVED
        storage.mentions.record(ACCOUNT, mention, classified, decision, state, plan, ("login",))


def plans(storage: Storage, call: Callable[[], Any]) -> list[tuple[str, str]]:
    """(statement, plan) of every SELECT `call` runs."""
    engine = storage.db._engine
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    found = []
    with engine.connect() as connection:
        connection.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in seen:
            rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
            found.append((statement, "\n".join(r[0] for r in rows)))
    return found


HOT_PATH: dict[str, Callable[[Storage], Any]] = {
    "has mention": lambda s: s.mentions.has(ACCOUNT, "p3"),
    "author history": lambda s: s.mentions.author_history("mastodon", "a3"),
    "due replies": lambda s: s.replies.due(ACCOUNT),
    "claims in flight": lambda s: s.replies.claims_in_flight(ACCOUNT),
    "case of a post": lambda s: s.cases.find_for(
        ACCOUNT,
        Mention("mastodon", "new", "9", Author("a3", "a3"), "x", NOW, in_reply_to_id="p3", conversation_id="c3"),
        window=timedelta(hours=24),
        at=NOW,
    ),
    "alerts to raise": lambda s: s.alerts.mention_candidates(urgent_since=NOW - timedelta(hours=1), waiting_since=NOW),
    "open incident": lambda s: s.incidents.open_for(ACCOUNT, ["login"]),
    "reporters": lambda s: s.incidents.enough_reporters(ACCOUNT, "login", NOW - timedelta(minutes=30), 5),
    "check-backs due": lambda s: s.cases.due_check_backs(NOW),
    "open cases": lambda s: s.cases.open_cases(ACCOUNT),
    "the queue": lambda s: s.replies.queue(),
    "desk figures": lambda s: s.figures.desk(NOW),
    "history": lambda s: s.replies.history(),
    "cases list": lambda s: s.cases.listed(["open", "waiting_on_us"]),
    "a case page": lambda s: (s.cases.posts(1), s.cases.replies(1), s.cases.events(1)),
    "status": lambda s: s.figures.activity(ACCOUNT),
    "thread": lambda s: s.mentions.thread(s.mentions.get(5)),
}


@pytest.mark.postgres
@pytest.mark.parametrize("name", sorted(HOT_PATH))
def test_no_sequential_scan_of_the_big_tables(storage: Storage, name: str) -> None:
    scans = []
    for statement, plan in plans(storage, lambda: HOT_PATH[name](storage)):
        for table in re.findall(r"Seq Scan on (\w+)", plan):
            if table in WATCHED:
                scans.append(f"{table}: {' '.join(statement.split())[:200]}\n{plan}")
    assert scans == [], "\n\n".join(scans)
