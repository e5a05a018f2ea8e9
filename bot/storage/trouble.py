"""The database driver's errors, read: which mean "this value cannot be stored", which mean "the database
is in trouble" (and what kind), and which are neither (a bug, a lost race: left as they are)."""

from __future__ import annotations

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.storage.errors import CannotWrite, DatabaseTrouble, DatabaseUnavailable, Unstorable

# What `translated` reads; anything else a database call raises is left as it is.
TRANSLATABLE: tuple[type[BaseException], ...] = (DBAPIError, UnicodeEncodeError, PoolTimeout)

# SQLite says what went wrong in words; these are its messages (sqlite3_errstr) for the troubles we know.
_SQLITE: tuple[tuple[str, type[DatabaseTrouble], str], ...] = (
    ("database or disk is full", CannotWrite, "full"),
    ("disk i/o error", CannotWrite, "io"),  # also a write past the file size limit (EFBIG)
    ("attempt to write a readonly database", CannotWrite, "read_only"),
    ("readonly database", CannotWrite, "read_only"),
    ("unable to open database file", CannotWrite, "io"),
    ("database is locked", DatabaseUnavailable, "locked"),
    ("database table is locked", DatabaseUnavailable, "locked"),
)
# PostgreSQL's SQLSTATE classes and codes.
_POSTGRES_CODES: dict[str, tuple[type[DatabaseTrouble], str]] = {
    "53100": (CannotWrite, "full"),  # disk_full
    "58030": (CannotWrite, "io"),  # io_error
    "25006": (CannotWrite, "read_only"),  # read_only_sql_transaction (a standby, or default_transaction_read_only)
    "53200": (DatabaseUnavailable, "unavailable"),  # out_of_memory
    "53300": (DatabaseUnavailable, "unavailable"),  # too_many_connections
    "57P01": (DatabaseUnavailable, "unavailable"),  # admin_shutdown (a terminated backend)
    "57P02": (DatabaseUnavailable, "unavailable"),  # crash_shutdown
    "57P03": (DatabaseUnavailable, "unavailable"),  # cannot_connect_now (starting up, shutting down)
}


def translated(exc: BaseException) -> Exception | None:
    """The storage error `exc` stands for, or None to let it through unchanged."""
    if isinstance(exc, UnicodeEncodeError):
        return Unstorable(f"text the database cannot hold ({exc.reason})")
    if isinstance(exc, PoolTimeout):  # every connection of the pool in use for its whole wait
        return DatabaseUnavailable(f"no free database connection in time ({_first_line(exc)})")
    if not isinstance(exc, DBAPIError) or isinstance(exc, IntegrityError):
        return None
    if isinstance(exc, DataError):
        return Unstorable(f"a value the database refused ({_first_line(exc.orig)})")
    orig = exc.orig
    detail = _first_line(orig)
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        if sqlstate in _POSTGRES_CODES:
            kind, name = _POSTGRES_CODES[sqlstate]
            return kind(detail, name)
        if sqlstate.startswith("08"):  # connection_exception
            return DatabaseUnavailable(detail)
        return None
    if type(orig).__module__.startswith("sqlite3"):
        lowered = detail.lower()
        for words, kind, name in _SQLITE:
            if words in lowered:
                return kind(detail, name)
        return None
    if exc.connection_invalidated or exc.__class__.__name__ in ("OperationalError", "InterfaceError"):
        # No SQLSTATE: the client could not reach the server (refused, reset, closed mid-query).
        return DatabaseUnavailable(detail)
    return None


def _first_line(error: BaseException | None) -> str:
    text = str(error or "").strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:300]
