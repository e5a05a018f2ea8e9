"""Desk sessions in storage (both backends), and migration 0006 on a database made by an older carebot."""

from __future__ import annotations

from datetime import timedelta

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, inspect, text

from bot.clock import now
from bot.storage import Storage
from bot.storage.tables import metadata


def test_a_session_is_found_by_its_token_only_until_it_ends_or_expires(storage: Storage) -> None:
    token, started = storage.sessions.start("alice", "fp-1", now() + timedelta(hours=1))
    found = storage.sessions.get(token)
    assert found is not None and found.user == "alice" and found.csrf == started.csrf and found.fingerprint == "fp-1"
    assert storage.sessions.get(token + "x") is None and storage.sessions.get("") is None
    assert storage.sessions.get("x" * 10_000) is None
    assert storage.sessions.end(token) and storage.sessions.get(token) is None
    assert not storage.sessions.end(token)

    old, _ = storage.sessions.start("bob", "fp-2", now() - timedelta(seconds=1))
    assert storage.sessions.get(old) is None  # expired
    storage.sessions.start("carol", "fp-3", now() + timedelta(hours=1))  # a new login drops expired rows
    assert storage.sessions.count() == 1
    storage.sessions.start("carol", "fp-3", now() + timedelta(hours=1))
    assert storage.sessions.end_all("carol") == 2 and storage.sessions.count() == 0


def test_the_database_keeps_no_token(storage: Storage, db_url: str) -> None:
    token, _ = storage.sessions.start("alice", "fp", now() + timedelta(hours=1))
    engine = create_engine(db_url)
    with engine.connect() as connection:
        rows = [tuple(row) for row in connection.execute(text("select * from sessions"))]
    engine.dispose()
    assert rows and all(token not in str(value) for row in rows for value in row)


def test_migration_0010_upgrades_a_database_of_revision_0009(db_url: str) -> None:
    engine = create_engine(db_url)
    with engine.begin() as connection:
        alembic = AlembicConfig()
        alembic.set_main_option("script_location", "bot.storage:migrations")
        alembic.attributes["connection"] = connection
        command.upgrade(alembic, "0009")
        connection.execute(
            text(
                "insert into accounts (name, platform, cursor, requests, posts_read, posts_created) "
                "values ('acme', 'mastodon', '42', 0, 0, 0)"
            )
        )
    engine.dispose()
    storage = Storage.open(db_url)
    try:
        state = storage.accounts.get("acme")
        assert state is not None and state.cursor == "42"
        assert state.last_cycle_at is None and state.answer_since is None
        token, _ = storage.sessions.start("alice", "fp", now() + timedelta(hours=1))
        assert storage.sessions.get(token) is not None
    finally:
        storage.close()
    engine = create_engine(db_url)
    schema = inspect(engine)
    for table in ("accounts", "sessions"):
        migrated = {c["name"] for c in schema.get_columns(table)}
        assert migrated == {c.name for c in metadata.tables[table].columns}, table
    engine.dispose()
