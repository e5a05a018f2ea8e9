"""Storage under trouble, on real SQLite files and a real PostgreSQL: the driver's errors come out as
storage's own, the database's health follows what happened, a SQLite file deleted, replaced or cut short
under an open Storage is noticed before SQLite touches it again, set-aside posts are stored whatever they
hold, and the reliability migration keeps replies whose outcome is unknown looked up."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from bot.models import Action, Decision, ReplyState
from bot.storage import CannotWrite, DatabaseReplaced, DatabaseUnavailable, Storage, Unstorable
from bot.storage.engine import Database
from bot.storage.records import Classified
from bot.storage.tables import metadata
from connectors.base import Author, Mention
from tests.peers.database import POSTGRES_URL, postgres_schema_url

CLASSIFIED = Classified("en", "complaint", 0.9, {"complaint": 0.9}, [], False, False)
DECISION = Decision("complaint", Action.REPLY, "test", reply_text="@alice sorry", template_id="complaint/ack/en/0")


def mention(post_id: str, text: str = "@acme it broke", author: str = "alice") -> Mention:
    return Mention(
        platform="mastodon",
        post_id=post_id,
        cursor=post_id,
        author=Author(id=f"id-{author}", handle=author),
        text=text,
        created_at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
    )


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from postgres_schema_url()


# --- values that cannot be stored ----------------------------------------------------------------------


def test_a_lone_surrogate_is_unstorable_and_the_database_stays_healthy(storage: Storage) -> None:
    storage.accounts.ensure("a", "mastodon")
    with pytest.raises(Unstorable):
        storage.mentions.record("a", mention("1", "bad \ud800 text"), CLASSIFIED, DECISION, ReplyState.APPROVED)
    assert storage.health().ok
    assert storage.mentions.record("a", mention("2"), CLASSIFIED, DECISION, ReplyState.APPROVED)


def test_a_set_aside_post_is_stored_whatever_it_holds_once(storage: Storage) -> None:
    nasty = "x\ud800y\x00z" * 300
    assert storage.quarantine.add(
        account="a", platform="mastodon", post_id="p\ud800", cursor="c\x00", stage="store", reason=nasty,
        excerpt=nasty, author_handle=nasty,
    )  # fmt: skip
    assert not storage.quarantine.add(
        account="a", platform="mastodon", post_id="p\ud800", cursor="c", stage="store", reason="again", excerpt=""
    )
    assert storage.quarantine.has("a", "p\ud800") and storage.quarantine.count("a") == 1
    (kept,) = storage.quarantine.recent("a")
    assert "\ud800" not in kept.excerpt and "\x00" not in kept.excerpt and len(kept.excerpt) <= 1000


def test_a_value_too_long_for_postgresql_is_unstorable(pg_url: str) -> None:
    storage = Storage.open(pg_url)
    try:
        storage.accounts.ensure("a", "mastodon")
        with pytest.raises(Unstorable):
            storage.mentions.record("a", mention("9" * 150), CLASSIFIED, DECISION, ReplyState.APPROVED)
        assert storage.health().ok
    finally:
        storage.close()


# --- PostgreSQL trouble, for real ----------------------------------------------------------------------


def test_a_read_only_postgresql_is_cannot_write_and_a_read_does_not_clear_it(pg_url: str) -> None:
    Storage.open(pg_url).close()  # migrated while writable
    read_only = pg_url.replace("options=-c", "options=-cdefault_transaction_read_only%3Don%20-c")
    storage = Storage.open(read_only)
    try:
        with pytest.raises(CannotWrite) as refused:
            storage.accounts.ensure("a", "mastodon")
        assert refused.value.kind == "read_only"
        health = storage.health()
        assert health.trouble == "read_only" and health.since is not None
        assert storage.accounts.all() == []  # reading works...
        assert storage.health().trouble == "read_only"  # ...and proves nothing about writing
    finally:
        storage.close()


def test_a_terminated_backend_is_unavailable_then_the_next_transaction_reconnects(pg_url: str) -> None:
    storage = Storage.open(pg_url)
    admin = create_engine(POSTGRES_URL)
    try:
        storage.accounts.ensure("a", "mastodon")
        with pytest.raises(DatabaseUnavailable), storage.db.begin() as tx:
            pid = tx.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with admin.begin() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            tx.execute(text("SELECT 1"))
        assert storage.health().trouble == "unavailable"
        storage.accounts.add_usage("a", requests=1)  # pool_pre_ping: a fresh connection
        assert storage.health().ok and storage.health().last_write is not None
    finally:
        admin.dispose()
        storage.close()


def test_a_server_that_is_not_there_is_unavailable() -> None:
    with socket_nobody_listens() as port, pytest.raises(DatabaseUnavailable):
        Storage.open(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test?connect_timeout=2")


class socket_nobody_listens:
    """A loopback port nobody listens on, for the length of the block."""

    def __enter__(self) -> int:
        import socket

        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self._probe = probe
        port: int = probe.getsockname()[1]
        return port  # bound, never listening: connections are refused

    def __exit__(self, *_exc: object) -> None:
        self._probe.close()


# --- every connection of the pool in use ----------------------------------------------------------------


def one_connection(url: str, wait: float) -> Database:
    """A Database whose pool lends one connection, and waits `wait` seconds for it to come back."""
    database = Database(create_engine(url, pool_size=1, max_overflow=0, pool_timeout=wait))
    with database.begin() as tx:
        tx.execute(text("CREATE TABLE notes (who VARCHAR(10))"))
    return database


def test_a_write_waiting_for_a_connection_holds_up_no_thread_that_has_one(db_url: str) -> None:
    """Inside `held` a thread keeps one connection between its statements (a mention's dozen). Before, on
    SQLite, a write outside `held` took the writers' lock and then waited for a connection: with every
    connection in use, the holders then waited for that lock until the pool gave up, and the waiting write
    failed with SQLAlchemy's own TimeoutError. Now a thread takes the lock only with a connection in hand."""
    database = one_connection(db_url, wait=3.0)
    holds_one, outcome = threading.Event(), {}

    def sender() -> None:
        with database.held():
            with database.read() as db:  # the block's first statement takes the connection, and keeps it
                db.execute(text("SELECT 1"))
            holds_one.set()
            time.sleep(0.5)  # the other write is waiting for the pool's only connection by now
            with database.begin() as tx:
                tx.execute(text("INSERT INTO notes VALUES ('sender')"))
            outcome["sender"] = time.monotonic()

    def other() -> None:
        holds_one.wait()
        try:
            with database.begin() as tx:
                tx.execute(text("INSERT INTO notes VALUES ('other')"))
            outcome["other"] = time.monotonic()
        except Exception as exc:
            outcome["other"] = exc

    threads = [threading.Thread(target=sender), threading.Thread(target=other)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        with database.read() as connection:
            written = sorted(connection.execute(text("SELECT who FROM notes")).scalars())
    finally:
        database.dispose()
    assert not isinstance(outcome.get("other"), Exception), f"the waiting write failed: {outcome['other']!r}"
    assert written == ["other", "sender"]
    assert outcome["sender"] < outcome["other"]  # the sender wrote first, then gave its connection back


def test_no_free_connection_in_time_is_database_trouble_not_a_bug(db_url: str) -> None:
    """SQLAlchemy's pool timeout is not a driver error: it came through as itself, and the daemon logged it
    as an unexpected error (and a streamed mention that met it was set aside for good)."""
    database = one_connection(db_url, wait=0.3)
    try:
        with database.held():
            database.ping()  # takes the pool's only connection, kept until the block ends
            with pytest.raises(DatabaseUnavailable, match="no free database connection"):
                run_in_thread(database.ping)
            assert database.health().trouble == "unavailable"
        with database.read() as connection:  # the connection is back: all is well again
            connection.execute(text("SELECT 1"))
        assert database.health().ok
    finally:
        database.dispose()


def test_a_thread_that_lets_go_of_its_connection_before_a_wait_holds_up_no_other_thread(db_url: str) -> None:
    """A sender gives its connection back before it posts (`let_go`): the platform may take seconds to
    answer, and meanwhile another thread writes on that connection; the sender's next statement takes one
    again."""
    database = one_connection(db_url, wait=0.5)
    try:
        with database.held():
            with database.begin() as tx:
                tx.execute(text("INSERT INTO notes VALUES ('claim')"))
            database.let_go()
            run_in_thread(lambda: _note(database, "other"))  # DatabaseUnavailable if still kept
            with database.begin() as tx:
                tx.execute(text("INSERT INTO notes VALUES ('sent')"))
            with pytest.raises(DatabaseUnavailable):  # taken again, and kept to the end of the block
                run_in_thread(lambda: _note(database, "too soon"))
        with database.read() as db:
            written = [who for (who,) in db.execute(text("SELECT who FROM notes"))]
        assert sorted(written) == ["claim", "other", "sent"]
    finally:
        database.dispose()


def _note(database: Database, who: str) -> None:
    with database.begin() as tx:
        tx.execute(text("INSERT INTO notes VALUES (:who)"), {"who": who})


def run_in_thread(work: Callable[[], object]) -> None:
    """Run `work` in another thread (which has no connection of its own) and raise what it raised."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    if raised:
        raise raised[0]


# --- the SQLite file itself ----------------------------------------------------------------------------


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[tuple[Path, Storage]]:
    path = tmp_path / "carebot.db"
    storage = Storage.open(f"sqlite:///{path}")
    storage.accounts.ensure("a", "mastodon")
    storage.mentions.record("a", mention("1"), CLASSIFIED, DECISION, ReplyState.APPROVED)
    yield path, storage
    storage.close()


def test_a_deleted_sqlite_file_is_noticed_before_the_next_write_and_rescued_next_to_it(
    sqlite_file: tuple[Path, Storage],
) -> None:
    path, storage = sqlite_file
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink()
    with pytest.raises(DatabaseReplaced) as stopped:
        storage.mentions.record("a", mention("2"), CLASSIFIED, DECISION, ReplyState.APPROVED)
    (rescued,) = path.parent.glob("carebot.db.rescued-*")
    assert "was deleted" in str(stopped.value) and str(rescued) in str(stopped.value)
    with pytest.raises(DatabaseReplaced):  # and every later use, without a second rescue
        storage.accounts.all()
    assert len(list(path.parent.glob("carebot.db.rescued-*"))) == 1
    assert storage.health().trouble == "replaced"
    with sqlite3.connect(rescued) as copy:  # what it held, the mention recorded before
        assert copy.execute("SELECT post_id FROM mentions").fetchall() == [("1",)]
    with pytest.raises(DatabaseReplaced, match="Move it to"):
        Storage.open(f"sqlite:///{path}")  # no fresh start while the rescued copy lies there
    shutil.move(rescued, path)
    again = Storage.open(f"sqlite:///{path}")
    try:
        assert again.mentions.has("a", "1")
    finally:
        again.close()


def test_a_sqlite_file_replaced_by_another_is_noticed_and_the_other_left_alone(
    sqlite_file: tuple[Path, Storage], tmp_path: Path
) -> None:
    path, storage = sqlite_file
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE restored (x)")
    os.replace(other, path)
    with pytest.raises(DatabaseReplaced, match="replaced by another file"):
        storage.accounts.all()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("restored",)]


def test_a_shm_file_cut_short_is_noticed_and_never_touched_again(sqlite_file: tuple[Path, Storage]) -> None:
    path, storage = sqlite_file
    shm = Path(f"{path}-shm")
    size = shm.stat().st_size
    shm.write_bytes(b"")
    with pytest.raises(DatabaseReplaced) as stopped:
        storage.accounts.all()
    assert stopped.value.kind == "shm" and "cut short" in str(stopped.value)
    assert not storage.db.safe_to_close
    storage.close()  # does not close the connections: SQLite would read the cut file (SIGBUS)
    # This test's process goes on (carebot run leaves with os._exit): give SQLite back a file of the size
    # it mapped, so that the connections can be closed when they are collected.
    shm.write_bytes(b"\0" * size)
    storage.db._engine.dispose()
    assert storage.db._file is not None
    storage.db._file._broken = None
    storage.db._file.close()


# --- the reliability migration ------------------------------------------------------------------------


def test_the_migration_keeps_unknown_outcomes_looked_up_and_matches_the_tables(db_url: str) -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", "bot.storage:migrations")
    engine = create_engine(db_url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0010")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO accounts (name, platform, requests, posts_read, posts_created) "
                "VALUES ('a', 'mastodon', 0, 0, 0)"
            )
        )
        cases = (("1", "k1", "failed", 3), ("2", "k2", "approved", 0), ("3", "k3", "sent", 1))
        for post_id, key, state, attempts in cases:
            mention_id = connection.execute(
                text(
                    "INSERT INTO mentions (account, platform, post_id, cursor, author_id, author_handle, "
                    "author_name, author_is_bot, text, created_at, received_at, visibility, mentions_brand, lang, "
                    "situation, confidence, scores, personal_data, angry, opt_out, action, reason, urgent, "
                    "priority) VALUES ('a', 'mastodon', :post, :post, 'x', 'alice', '', false, 't', :at, :at, "
                    "'public', true, 'en', 'complaint', 0.9, '{}', '[]', false, false, 'reply', 'r', false, 0) "
                    "RETURNING id"
                ),
                {"post": post_id, "at": datetime(2026, 1, 1, tzinfo=UTC)},
            ).scalar_one()
            connection.execute(
                text(
                    "INSERT INTO replies (mention_id, account, kind, purpose, text, state, idempotency_key, "
                    "attempts, reworded, decided_by, created_at, updated_at) VALUES (:m, 'a', 'public', "
                    "'answer', 't', :state, :key, :attempts, false, 'auto', :at, :at)"
                ),
                {
                    "m": mention_id,
                    "state": state,
                    "key": key,
                    "attempts": attempts,
                    "at": datetime(2026, 1, 1, tzinfo=UTC),
                },
            )
    engine.dispose()
    storage = Storage.open(db_url)
    try:
        replies = [r for m in storage.mentions.all("a") for r in storage.replies.for_mention(m.id)]
        unknown = {r.idempotency_key: r.outcome_unknown for r in replies}
        assert unknown == {"k1": True, "k2": False, "k3": False}
    finally:
        storage.close()
    engine = create_engine(db_url)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    engine.dispose()
