"""Opening the database: the engine for its URL, the schema migrated to the newest revision, and every
transaction watched: the driver's errors translated (`bot.storage.trouble`), the database's health kept
(for the daemon's watch and /health), and a SQLite file checked to still be the one opened."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError

from bot.clock import now
from bot.storage.errors import CannotWrite, DatabaseTrouble
from bot.storage.sqlite_file import SqliteFile, refuse_fresh_start
from bot.storage.trouble import TRANSLATABLE, translated

MIGRATION_LOCK = 0x6361726562  # PostgreSQL advisory lock id: "careb"
VERSIONS = Path(__file__).parent / "migrations" / "versions"


def newest_revision() -> str:
    """The head revision, from the migration files' names (`NNNN_what.py`, one chain: revision NNNN revises
    the one before; tests/test_storage.py checks that this is Alembic's head)."""
    return max(path.name.split("_", 1)[0] for path in VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))


def is_current(engine: Engine) -> bool:
    """Whether the schema is at the newest revision already: one query, and no Alembic to import (a third of
    a command's start-up). Any trouble (no such table, no database yet) says no: migrating will tell."""
    try:
        with engine.connect() as connection:
            found = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
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


# The pool (SQLAlchemy's defaults, named): connections kept, more lent at busy moments, and how long a
# thread waits for one before the database counts as unavailable. A thread keeps a connection only while it
# works with the database (a sender gives its own back before it posts: `Database.let_go`), so a daemon's
# dozens of readers and senders share these without waiting on each other's platforms.
POOL_SIZE = 5
POOL_OVERFLOW = 10
POOL_WAIT = 30.0


def create_db_engine(url: str) -> Engine:
    pool = {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW, "pool_timeout": POOL_WAIT}
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 10}, hide_parameters=True, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True, **pool)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database, or one in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).absolute()


_WROTE = "carebot_wrote"
_WRITES = ("INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "DROP")


def _note_writes(connection: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
    """Mark a transaction that writes: only a committed write proves the database writable again."""
    if statement.lstrip()[:6].upper().startswith(_WRITES):
        connection.info[_WROTE] = True


@dataclass(frozen=True)
class DatabaseHealth:
    """What the latest transactions said about the database (for the daemon's watch and /health)."""

    trouble: str | None  # None: fine; else the kind: unavailable, locked, full, read_only, io, replaced, shm
    message: str | None  # the latest error, one line, no data
    since: datetime | None  # when the current trouble began
    last_write: datetime | None  # the latest committed write of this process

    @property
    def ok(self) -> bool:
        return self.trouble is None


class Database:
    """The engine, lent out one transaction (`begin`) or one read (`read`) at a time.

    Both raise storage's own errors (`bot.storage.errors`) for the database's trouble and for values it
    cannot hold, and keep `health()` up to date.
    """

    def __init__(self, engine: Engine, file: SqliteFile | None = None) -> None:
        self._engine = engine
        event.listen(engine, "before_cursor_execute", _note_writes)
        self._file = file
        self._lock = threading.Lock()
        self._trouble: DatabaseTrouble | None = None
        self._since: datetime | None = None
        self._last_write: datetime | None = None
        self._wal_ceiling: int | None = None  # SQLite: the log's size when a write failed for want of room
        # SQLite has one writer at a time, and a writer kept waiting sleeps in steps of up to 100 ms (its busy
        # handler): this process's threads (the reader and the senders) queue here instead, and are woken at
        # once. Re-entrant, should a transaction's code ever call storage again. Taken only with a connection
        # in hand (see `begin`).
        self._one_writer = threading.RLock() if engine.dialect.name == "sqlite" else None
        self._held = threading.local()  # inside `held()` (active), and the connection it has taken, if any

    @classmethod
    def open(cls, url: str, engine_for: Callable[[str], Engine] = create_db_engine) -> Database:
        """The database at `url`, migrated; a SQLite file pinned (see `SqliteFile`)."""
        path = sqlite_path(url)
        if path is not None:
            refuse_fresh_start(path)
        db = cls(engine_for(url))
        if not is_current(db._engine):
            try:
                with db.begin() as connection:
                    migrate(connection)  # under a lock, and Alembic checks the revision again: one migrates
            except BaseException:
                db._engine.dispose()
                raise
            if db.dialect == "sqlite":
                db._engine.dispose()  # the migration's connection has foreign keys off: new ones turn them on
        if path is not None:
            db._file = SqliteFile(path)
            db._file.pin()
        return db

    @contextmanager
    def held(self) -> Iterator[None]:
        """One connection for this thread's reads and transactions inside the block: one checkout from the
        pool (on PostgreSQL one pre-ping, one reset) for a mention or a reply rather than one for each of
        its ten-odd statements. Each read and each transaction still ends on its own. The connection is
        taken at the block's first statement, and `let_go` gives it back before a wait on the network."""
        if getattr(self._held, "active", False):
            yield
            return
        self._check_file()
        self._held.active = True
        try:
            yield
        except TRANSLATABLE as exc:
            self._raise_translated(exc)
            raise
        finally:
            self._held.active = False
            self.let_go()

    def let_go(self) -> None:
        """Inside `held()`: give this thread's connection back to the pool now; its next statement takes one
        again. For a sender before it posts: a post can take seconds, and a connection kept idle across it
        is one fewer for every other thread, which with more senders than connections and a slow platform
        waited out the pool's timeout and took the platform's slowness for the database's."""
        connection: Connection | None = getattr(self._held, "connection", None)
        self._held.connection = None
        if connection is not None:
            connection.close()

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        if not getattr(self._held, "active", False):
            with self._engine.connect() as connection:
                yield connection
            return
        held: Connection | None = getattr(self._held, "connection", None)
        if held is None:
            held = self._held.connection = self._engine.connect()
        try:
            yield held
        finally:
            if held.in_transaction():
                held.rollback()  # a read ends here, as a connection of its own would

    @contextmanager
    def _without_transaction(self, connection: Connection) -> Iterator[None]:
        """PostgreSQL: a read's statements each on their own (autocommit), as READ COMMITTED sees them anyway,
        without a BEGIN and a ROLLBACK around them: two round trips fewer for each of a mention's reads."""
        if self.dialect != "postgresql" or connection.in_transaction():
            yield
            return
        connection.execution_options(isolation_level="AUTOCOMMIT")
        try:
            yield
        finally:
            if connection.in_transaction():
                connection.rollback()  # SQLAlchemy's own bookkeeping: with autocommit no ROLLBACK is sent
            connection.execution_options(isolation_level=connection.default_isolation_level)

    @contextmanager
    def begin(self, one_statement: bool = False) -> Iterator[Connection]:
        """A transaction. `one_statement`: the block runs a single statement, atomic by itself; on PostgreSQL
        it then runs without BEGIN and COMMIT (two round trips fewer for a claim)."""
        autocommit = one_statement and self.dialect == "postgresql"
        self._check_file()
        try:
            # The connection first, then the writers' lock: a thread that waits for a free connection must
            # hold nothing that a thread with one needs to write. The other way round, with every connection
            # in use (a sender keeps its own across its post), the waiting writer held the lock and the
            # holders of the connections waited for it until the pool's timeout.
            with (
                self._connection() as connection,
                self._one_writer or nullcontext(),
                self._without_transaction(connection) if autocommit else connection.begin(),
            ):
                connection.info.pop(_WROTE, None)
                yield connection
                wrote = bool(connection.info.pop(_WROTE, False))
        except TRANSLATABLE as exc:
            self._raise_translated(exc)
            raise
        self._went_well(wrote=wrote)
        ceiling = self._wal_ceiling
        if wrote and ceiling is not None and self._file is not None and self._file.wal_size() > ceiling // 2:
            self._relieve()  # keep the log well below the size at which the disk refused it

    @contextmanager
    def read(self) -> Iterator[Connection]:
        self._check_file()
        try:
            with self._connection() as connection, self._without_transaction(connection):
                yield connection
        except TRANSLATABLE as exc:
            self._raise_translated(exc)
            raise
        self._went_well(wrote=False)

    def ping(self) -> None:
        """Raise DatabaseTrouble if the database cannot be reached (for /health)."""
        with self.read() as connection:
            connection.execute(text("SELECT 1"))

    def check_writable(self) -> None:
        """Raise DatabaseTrouble if the database takes no writes. Start-up skips the migration when the
        schema is current, so without this a read-only file would only show in the first cycle's write."""
        with self.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = version_num"))

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def health(self) -> DatabaseHealth:
        with self._lock:
            trouble = self._trouble
            return DatabaseHealth(
                trouble=trouble.kind if trouble else None,
                message=str(trouble) if trouble else None,
                since=self._since,
                last_write=self._last_write,
            )

    @property
    def safe_to_close(self) -> bool:
        """False when SQLite must not touch the files again, not even to close them (a cut -shm file)."""
        return self._file is None or not self._file.shm_broken

    def dispose(self) -> None:
        if not self.safe_to_close:
            return  # closing would make SQLite read the -shm file: SIGBUS. The process ends without it.
        self._engine.dispose()
        if self._file is not None:
            self._file.close()

    # --- health -------------------------------------------------------------------------------------

    def _check_file(self) -> None:
        if self._file is None:
            return
        try:
            self._file.check()
        except DatabaseTrouble as trouble:
            self._went_wrong(trouble)
            raise

    def _raise_translated(self, exc: BaseException) -> None:
        storage_error = translated(exc)
        if storage_error is None:
            return
        if isinstance(storage_error, DatabaseTrouble):
            self._went_wrong(storage_error)
            if isinstance(storage_error, CannotWrite) and self._file is not None:
                size = self._file.wal_size()
                if size:
                    self._wal_ceiling = min(size, self._wal_ceiling or size)
                self._relieve()
        raise storage_error from exc

    def _went_wrong(self, trouble: DatabaseTrouble) -> None:
        with self._lock:
            if self._trouble is None:
                self._since = now()
            self._trouble = trouble

    def _went_well(self, wrote: bool) -> None:
        with self._lock:
            if wrote:
                self._last_write = now()
            # A read proves the database reachable, not writable.
            if self._trouble is not None and (wrote or not isinstance(self._trouble, CannotWrite)):
                self._trouble, self._since = None, None

    def _relieve(self) -> None:
        """After a failed write: move the write-ahead log into the database and truncate it.

        The log only shrinks at a checkpoint, and SQLite checkpoints on its own only once the log holds
        1000 pages: on a disk too small for that, every write would fail for ever. Most of the log is
        older versions of the same pages, so the checkpoint usually frees room. Best effort: if it fails
        too, the next try will tell.
        """
        try:
            with self._engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        except DBAPIError:
            pass
