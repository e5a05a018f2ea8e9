"""Every query of the hot path and the desk finds its rows through an index (PostgreSQL's plans).

Each storage call a cycle or a desk page makes is run on a small PostgreSQL schema with the planner told to
avoid sequential scans and merge or hash joins where it can: a sequential scan that still shows up, or an index
walked end to end (its first column unbound), means no index serves the query, and it would read the whole
table once `mentions` and `replies` hold millions (bench/growth.py measures that).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from bot.models import Action, Decision, ReplyState
from bot.storage import Storage
from bot.storage.records import CasePlan, Classified
from connectors.base import Author, Mention
from tests.peers.database import postgres_schema_url

WATCHED = ("mentions", "replies", "cases", "alerts", "mention_topics", "account_leases", "workers")
KEYED_BY_ACCOUNT = ("account_leases",)  # one row per account: found by the account, that is its key
ACCOUNT = "acme"
NOW = datetime.now(UTC)


@pytest.fixture
def postgres() -> Iterator[Storage]:
    for url in postgres_schema_url():
        store = Storage.open(url)
        try:
            _seed(store)
            yield store
        finally:
            store.close()


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Storage]:
    store = Storage.open(f"sqlite:///{tmp_path / 'plans.db'}")
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
    if storage.db.dialect != "postgresql":
        return  # SQLite keeps no statistics (carebot never runs ANALYZE): its plans do not depend on the data
    # Alerts of other posts (team alerts, no mention): without them the planner reads an empty table whole.
    with storage.db._engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO alerts (key, kind, text, state, attempts, created_at) SELECT 'seed:' || i, 'urgent', "
            "'seed', 'delivered', 1, now() FROM generate_series(1, 2000) AS i"
        )
        connection.exec_driver_sql("ANALYZE")


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
        if storage.db.dialect == "sqlite":
            for statement, parameters in seen:
                rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
                found.append((statement, "\n".join(row[-1] for row in rows)))
            return found
        # The tables are tiny here: the planner would rather read them whole. Told not to (no sequential scans,
        # no merge or hash joins), it still does so only where no index can serve the query.
        for setting in ("enable_seqscan", "enable_mergejoin", "enable_hashjoin"):
            connection.exec_driver_sql(f"SET {setting} = off")
        for statement, parameters in seen:
            rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
            found.append((statement, "\n".join(r[0] for r in rows)))
    return found


# Not here: `carebot status`, whose totals (every mention and reply an account ever had) read history by
# design; bench/growth.py prints what that costs at a million mentions.
HOT_PATH: dict[str, Callable[[Storage], Any]] = {
    "has mention": lambda s: s.mentions.has(ACCOUNT, "p3"),
    "the overlap's recent count": lambda s: s.mentions.more_than_since(ACCOUNT, NOW - timedelta(minutes=2), 80),
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
    "thread": lambda s: s.mentions.thread(s.mentions.get(5)),
    "take a read lease": lambda s: (
        s.leases.take(ACCOUNT, "w1", timedelta(minutes=1)),
        s.leases.take(ACCOUNT, "w2", timedelta(minutes=1)),
    ),
    "a read lease": lambda s: s.leases.get(ACCOUNT),
    "live workers": lambda s: s.leases.sign("w1", NOW + timedelta(seconds=30)),
}


@pytest.mark.postgres
@pytest.mark.parametrize("name", sorted(HOT_PATH))
def test_no_query_reads_a_big_table_whole_on_postgresql(postgres: Storage, name: str) -> None:
    leading = leading_columns(postgres)
    scans = []
    for statement, plan in plans(postgres, lambda: HOT_PATH[name](postgres)):
        for table in whole_table_reads(plan, leading):
            scans.append(f"{table}: {' '.join(statement.split())[:200]}\n{plan}")
    assert scans == [], "\n\n".join(scans)


@pytest.mark.parametrize("name", sorted(HOT_PATH))
def test_no_query_reads_a_big_table_whole_on_sqlite(sqlite: Storage, name: str) -> None:
    """SQLite without statistics picks an index by how many of its columns the query binds, whatever the
    data: a scan of a big table, or an index bound only by the account (all of its history), is what it
    would do at a million rows too."""
    scans = []
    for statement, plan in plans(sqlite, lambda: HOT_PATH[name](sqlite)):
        for line in plan.splitlines():
            scan = re.match(r"SCAN (\w+)", line)
            by_account = re.match(r"SEARCH (\w+) USING (?:COVERING )?INDEX \w+ \(account=\?\)$", line)
            if by_account and by_account.group(1) in KEYED_BY_ACCOUNT:
                by_account = None
            found = scan or by_account
            if found and found.group(1) in WATCHED:
                scans.append(f"{line}: {' '.join(statement.split())[:300]}\n{plan}")
    assert scans == [], "\n\n".join(scans)


def leading_columns(storage: Storage) -> dict[str, tuple[str, str]]:
    """Index name -> (its table, its first column)."""
    with storage.db._engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT indexname, tablename, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        ).all()
    found = {}
    for name, table, definition in rows:
        first = re.search(r"\(\"?(\w+)", definition.split(" USING ", 1)[1])
        assert first, definition
        found[name] = (table, first.group(1))
    return found


NODE = re.compile(r"(Seq Scan|Index Scan|Index Only Scan|Bitmap Index Scan)(?: Backward)?(?: using (\w+))? on (\w+)")


def whole_table_reads(plan: str, leading: dict[str, tuple[str, str]]) -> list[str]:
    """The watched tables a plan reads whole: a sequential scan, or an index walked end to end because its
    condition (if any) does not bind the index's first column. At a million rows either reads them all."""
    lines = plan.splitlines()
    found = []
    for n, line in enumerate(lines):
        node = NODE.search(line)
        if node is None:
            continue
        kind, index, table = node.groups()
        if kind == "Bitmap Index Scan":  # "Bitmap Index Scan on <index>": the name is the index
            index = table
        if kind == "Seq Scan":
            if table in WATCHED:
                found.append(table)
            continue
        table, column = leading[index]
        if table not in WATCHED:
            continue
        depth = len(line) - len(line.lstrip(" ->"))
        condition = ""
        for following in lines[n + 1 :]:
            if "->" in following or len(following) - len(following.lstrip()) <= depth:
                break
            if "Index Cond:" in following:
                condition = following
        if not re.search(rf"\b{column}\b", condition):
            found.append(f"{table} (whole index {index}: no condition on {column})")
    return found
