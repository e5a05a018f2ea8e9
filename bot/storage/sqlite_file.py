"""The SQLite file carebot opened, watched: is it still that file?

SQLite keeps writing to a file that was deleted or replaced under it, as long as it has it open: the
history goes to a file nobody will read again, and the next start begins from nothing. So before every
transaction storage checks that the file at the path is still the one it opened (device and inode), and
that its -wal and -shm files were not deleted, replaced or cut short (SQLite maps the -shm file into
memory: cut short, the next access kills the process with SIGBUS).

When the database file itself is gone or replaced, what the open file still holds is saved next to it
(`carebot.db.rescued-<time>`, through a connection kept open for that) before carebot stops; a later start
refuses to begin a fresh database while such a file lies there.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from bot.storage.errors import CannotWrite, DatabaseReplaced

RESCUED = ".rescued-"


def rescued_copies(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}{RESCUED}*"))


def refuse_fresh_start(path: Path) -> None:
    """DatabaseReplaced if the database file is missing but a rescued copy of it lies next to it;
    CannotWrite if its directory does not exist (SQLite only says "unable to open database file")."""
    if path.exists():
        return
    if not path.parent.is_dir():
        raise CannotWrite(f"{path}: the directory {path.parent} does not exist; create it, or set storage.url")
    found = rescued_copies(path)
    if found:
        raise DatabaseReplaced(
            f"{path} does not exist, but {found[-1]} does: the database saved when its file was deleted under "
            f"a running carebot. Move it to {path} to keep its history and carry on where it stopped, or delete "
            "it to start afresh (mentions posted meanwhile would then not be answered)."
        )


class SqliteFile:
    """One SQLite database file and its -wal and -shm companions, as they were when carebot opened them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._anchor: sqlite3.Connection | None = None
        self._identity: dict[str, tuple[int, int]] = {}  # suffix -> (device, inode)
        self._shm_size = 0
        self._broken: DatabaseReplaced | None = None
        self._lock = threading.Lock()

    @property
    def shm_broken(self) -> bool:
        """The -shm file changed under us: SQLite must not touch it again in this process (not even to close)."""
        return self._broken is not None and self._broken.kind == "shm"

    def pin(self) -> None:
        """Remember the files as they are now, and keep one connection to them open (for a rescue)."""
        anchor = sqlite3.connect(str(self.path), check_same_thread=False)
        anchor.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the -wal and -shm too
        self._anchor = anchor
        for suffix in ("", "-wal", "-shm"):
            found = _stat(self.path, suffix)
            if found is not None:
                self._identity[suffix] = (found.st_dev, found.st_ino)
                if suffix == "-shm":
                    self._shm_size = found.st_size

    def check(self) -> None:
        """DatabaseReplaced if the files are no longer the ones opened (the first time: after a rescue)."""
        if self._broken is not None:
            raise self._broken
        with self._lock:
            if self._broken is not None:
                raise self._broken
            problem = self._problem()
            if problem is None:
                return
            what, kind = problem
            self._broken = DatabaseReplaced(self._explain(what, kind), kind)
        raise self._broken

    def _problem(self) -> tuple[str, str] | None:
        main = _stat(self.path, "")
        if main is None:
            return " was deleted", "replaced"
        if (main.st_dev, main.st_ino) != self._identity.get(""):
            return " was replaced by another file", "replaced"
        for suffix in ("-wal", "-shm"):
            found = _stat(self.path, suffix)
            known = self._identity.get(suffix)
            if known is None:
                if found is not None:
                    self._identity[suffix] = (found.st_dev, found.st_ino)
                    if suffix == "-shm":
                        self._shm_size = found.st_size
                continue
            if found is None or (found.st_dev, found.st_ino) != known:
                return f"'s {suffix} file was deleted or replaced", "shm" if suffix == "-shm" else "replaced"
            if suffix == "-shm":
                if found.st_size < self._shm_size:
                    return "'s -shm file was cut short", "shm"
                self._shm_size = found.st_size
        return None

    def _explain(self, what: str, kind: str) -> str:
        where = f"the database file {self.path}"
        if kind == "shm":
            return (
                f"{where}{what} while carebot was running. carebot stops before SQLite touches it again (it "
                "would die of SIGBUS). Nothing committed is lost: start carebot again once the files are "
                "readable and writable by it."
            )
        rescued = self._rescue()
        saved = (
            f"what carebot had is saved in {rescued}: to carry on without losing anything, stop anything else "
            f"using {self.path}, move that file to {self.path} and start carebot again"
            if rescued
            else "carebot could not save a copy of what it had"
        )
        return f"{where}{what} while carebot was running. carebot stops; {saved}."

    def _rescue(self) -> Path | None:
        """Copy what the open file holds to a new file next to the path, through the kept connection."""
        if self._anchor is None:
            return None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = self.path.with_name(f"{self.path.name}{RESCUED}{stamp}")
        try:
            copy = sqlite3.connect(str(target))
            try:
                self._anchor.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            finally:
                copy.close()
        except (sqlite3.Error, OSError):
            return None
        return target

    def wal_size(self) -> int:
        found = _stat(self.path, "-wal")
        return found.st_size if found is not None else 0

    def close(self) -> None:
        if self._anchor is not None and not self.shm_broken:
            self._anchor.close()
        self._anchor = None


def _stat(path: Path, suffix: str) -> os.stat_result | None:
    try:
        return os.stat(f"{path}{suffix}")
    except FileNotFoundError:
        return None
