"""The default journal: one sqlite file in ``SORA_WIDGETS_HOME``.

WAL mode and a busy timeout let several kernels share it; ``BEGIN IMMEDIATE`` takes the
file's write lock, which is what makes :meth:`Journal.claim` atomic across processes.
Connections are per thread and per process: a forked child never touches its parent's
connections (SQLite forbids carrying one across ``fork``), it opens its own.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sora_widgets.core.errors import JournalError
from sora_widgets.journal.base import SCHEMA_VERSION, Cursor, Journal
from sora_widgets.journal.schema import migrate

__all__ = ["SqliteJournal"]

#: Connections of the parent process, kept (never closed or used) in a forked child.
_orphans: list[sqlite3.Connection] = []


def _retry_locked(action: Callable[[], object], seconds: float = 30.0) -> None:
    """Switching to WAL and creating the schema can meet SQLITE_BUSY without the busy
    handler (another kernel opening the same new journal): retry for a while."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            action()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class SqliteJournal(Journal):
    """Thread-safe access to the journal file (one connection per thread)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._local = threading.local()
        self._pid = os.getpid()
        self._writing = threading.Lock()
        with self._errors():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = self._connect()
            _retry_locked(lambda: self._migrate(db))

    def _migrate(self, db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            migrate(_SqliteCursor(db), dialect="sqlite")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """sqlite's own errors, turned into what the user should do about them."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            text = str(exc).lower()
            if "readonly" in text or "read-only" in text or "unable to open" in text:
                advice = ("it cannot be written: check the folder's permissions and free "
                          "space, or point SORA_WIDGETS_HOME at a writable folder")
            elif "full" in text:
                advice = "the disk is full: free some space"
            elif "not a database" in text or "malformed" in text or "corrupt" in text:
                advice = ("the file is damaged: move it aside (your videos stay in the "
                          "videos folder) and run again to start a new journal")
            else:
                advice = "see the cause below"
            raise JournalError(f"journal {self.path}: {exc} — {advice}") from exc
        except OSError as exc:
            raise JournalError(f"journal {self.path}: cannot create its folder "
                               f"({exc.strerror}); set SORA_WIDGETS_HOME to a writable "
                               "folder") from exc

    def _connect(self) -> sqlite3.Connection:
        if os.getpid() != self._pid:          # forked: the parent's connections are not ours
            inherited = getattr(self._local, "db", None)
            if inherited is not None:
                _orphans.append(inherited)
            self._local = threading.local()
            self._writing = threading.Lock()     # the parent's may have been held at fork
            self._pid = os.getpid()
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                 check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA busy_timeout=30000")
            conn = db
            _retry_locked(lambda: conn.execute("PRAGMA journal_mode=WAL"))
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    @contextmanager
    def _tx(self, *, exclusive: bool = False) -> Iterator[Cursor]:
        # Threads of this process queue on a lock of ours: sqlite's busy handler would make
        # them sleep in growing steps (1, 2, 5 ... 100 ms) while another thread writes —
        # it held generate() for up to 200 ms while the events thread saved progress.
        # Other processes still meet the file lock and the busy timeout.
        with self._errors(), self._writing:
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteCursor(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        with self._errors():
            yield _SqliteCursor(self._connect())

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None and os.getpid() == self._pid:
            db.close()
            self._local.db = None

    @property
    def schema_version(self) -> int:
        with self._read() as cur:
            return int(cur.execute("SELECT MAX(version) AS v FROM schema_version").fetchone()["v"])


class _SqliteCursor:
    """The journal's cursor interface on a sqlite connection (``?`` placeholders as is)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, tuple(params))


assert SCHEMA_VERSION >= 2
