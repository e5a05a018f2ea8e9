"""What storage raises: a row not there or not in the state an action needs, a value the database cannot
hold, and trouble with the database itself (translated from the driver's errors, so nothing above storage
needs to know SQLAlchemy).

    NotFound                 no row with that id
    Conflict                 the row is not in a state that allows this
    Unstorable               this one value cannot be stored (a lone surrogate, too long): the database is fine
    DatabaseTrouble          the database itself: nothing can be done until it is back
    ├── DatabaseUnavailable  cannot reach it (server down, connection lost, locked too long): wait and retry
    ├── CannotWrite          reachable but refuses writes (disk full, read-only, I/O error): tell a person
    └── DatabaseReplaced     the SQLite file is not the one that was opened (deleted or swapped): stop
"""

from __future__ import annotations


class NotFound(LookupError):
    """No row with that id."""


class Conflict(RuntimeError):
    """The row is not in a state that allows this (someone else acted first)."""


class Unstorable(ValueError):
    """The database refused a value of this row (not the database's fault, nor a passing one)."""


class DatabaseTrouble(RuntimeError):
    """The database cannot do its work now. `kind` names the trouble for logs, alerts and /health."""

    kind = "unavailable"

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class DatabaseUnavailable(DatabaseTrouble):
    """Cannot reach the database: the server is down or restarting, the connection was cut."""

    kind = "unavailable"


class CannotWrite(DatabaseTrouble):
    """The database answers but cannot take writes: `kind` is "full", "read_only" or "io"."""

    kind = "io"


class DatabaseReplaced(DatabaseTrouble):
    """The SQLite file carebot opened was deleted or replaced under it (or its -shm file was cut short)."""

    kind = "replaced"
