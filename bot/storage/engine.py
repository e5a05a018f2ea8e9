"""Opening the database: the engine for its URL, and the schema migrated to the newest revision."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError

MIGRATION_LOCK = 0x6361726562  # PostgreSQL advisory lock id: "careb"
VERSIONS = Path(__file__).parent / "migrations" / "versions"


def newest_revision() -> str:
    """The head revision, from the migration files' names (`NNNN_what.py`, one chain: revision NNNN revises
    the one before; tests/test_storage.py checks that this is Alembic's head)."""
    return max(path.name.split("_", 1)[0] for path in VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))


def is_current(engine: Engine) -> bool:
    """Whether the schema is at the newest revision already: one query, and no Alembic to import (a third of
    a command's start-up)."""
    with engine.connect() as connection:
        try:
            found = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError:  # no such table: a new database
            return False
    return found == newest_revision()


def migrate(connection: Connection) -> None:
    """Bring the schema to the newest revision (a fresh database is created from revision one).

    All of it in one transaction, so a process killed half-way leaves the schema as it found it, and
    processes starting together take turns instead of both creating the same tables.
    """
    if connection.dialect.name == "sqlite":
        # SQLite changes a table by copying it and dropping the old one; with foreign keys on, dropping
        # `mentions` would delete every reply (ON DELETE CASCADE). The pragma only works outside a
        # transaction, so before BEGIN; whoever migrates must not reuse this connection (Storage.open).
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        # pysqlite runs DDL outside any transaction until a write opens one; open it first. IMMEDIATE
        # takes the write lock now, so a second process starting waits (busy_timeout) and finds it done.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    from alembic import command
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", "bot.storage:migrations")
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"the migration left {len(broken)} rows pointing nowhere: {broken[:3]}")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the web page read while the daemon writes; busy_timeout waits for a lock instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_db_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 10}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


class Database:
    """The engine, lent out one transaction (`begin`) or one read (`read`) at a time."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self._engine.begin() as connection:
            yield connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._engine.connect() as connection:
            yield connection

    def ping(self) -> None:
        with self._engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def dispose(self) -> None:
        self._engine.dispose()
