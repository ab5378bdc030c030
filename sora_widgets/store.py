"""The durable job journal: one sqlite file in ``SORA_WIDGETS_HOME``.

Money rule: an intent row is written *before* each POST and the task id *right
after* the answer, each in its own committed transaction, so a crash at any
instant leaves a row that tells what may have been paid for. WAL mode and a
busy timeout make two kernels on one journal safe. The API key is never stored.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .models import FINAL_STATUSES, VideoRequest

__all__ = ["JobRecord", "Journal", "Spend"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    local_id      TEXT PRIMARY KEY,
    task_id       TEXT,
    fingerprint   TEXT NOT NULL,
    request       TEXT NOT NULL,
    backend       TEXT NOT NULL,
    emulator      INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL,
    progress      INTEGER NOT NULL DEFAULT 0,
    video_url     TEXT,
    error_message TEXT,
    error_code    TEXT,
    price_usd     REAL NOT NULL DEFAULT 0,
    charge        TEXT NOT NULL DEFAULT 'none',
    local_path    TEXT,
    session       TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    completed_at  REAL
);
CREATE INDEX IF NOT EXISTS jobs_fingerprint ON jobs (fingerprint, backend);
CREATE INDEX IF NOT EXISTS jobs_task ON jobs (task_id);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
"""

#: charge: 'none' (rejected, emulator), 'charged' (accepted by the relay), 'maybe' (unknown).
CHARGES = ("none", "charged", "maybe")
#: Statuses after which nothing more will happen to the row's task.
SETTLED = frozenset(FINAL_STATUSES | {"unknown"})


@dataclass(frozen=True)
class JobRecord:
    local_id: str
    task_id: str | None
    fingerprint: str
    request: str
    backend: str
    emulator: bool
    status: str
    progress: int
    video_url: str | None
    error_message: str | None
    error_code: str | None
    price_usd: float
    charge: str
    local_path: str | None
    session: str
    pid: int
    created_at: float
    updated_at: float
    completed_at: float | None

    @property
    def video_request(self) -> VideoRequest:
        return VideoRequest.from_json(json.loads(self.request))

    @property
    def cost_usd(self) -> float:
        """What this job cost (or may have cost, for 'maybe')."""
        return self.price_usd if self.charge in ("charged", "maybe") else 0.0


@dataclass(frozen=True)
class Spend:
    """Money: charged (accepted by the relay), maybe (outcome unknown), pending (submitting)."""

    charged_usd: float
    maybe_usd: float
    pending_usd: float
    jobs: int

    @property
    def worst_case_usd(self) -> float:
        return round(self.charged_usd + self.maybe_usd + self.pending_usd, 2)


_COLUMNS = tuple(f.name for f in fields(JobRecord))


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


class Journal:
    """Thread-safe access to the journal file (one connection per thread)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        db = self._connect()
        _retry_locked(lambda: db.executescript(SCHEMA))  # idempotent; commits itself

    def _connect(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                 check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA busy_timeout=30000")
            _retry_locked(lambda: db.execute("PRAGMA journal_mode=WAL"))
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _row(self, row: sqlite3.Row | None) -> JobRecord | None:
        if row is None:
            return None
        values = dict(row)
        values["emulator"] = bool(values["emulator"])
        return JobRecord(**values)

    # -- writes ---------------------------------------------------------------------------

    def record_intent(self, *, local_id: str, request: VideoRequest, backend: str,
                      emulator: bool, price_usd: float, session: str) -> JobRecord:
        """Written before the POST: if we die now, the row says a charge may exist."""
        now = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT INTO jobs (local_id, fingerprint, request, backend, emulator, status,"
                " price_usd, charge, session, pid, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, 'submitting', ?, 'none', ?, ?, ?, ?)",
                (local_id, request.fingerprint(), json.dumps(request.to_json()), backend,
                 int(emulator), price_usd, session, os.getpid(), now, now))
        record = self.get(local_id)
        assert record is not None
        return record

    def update(self, local_id: str, **changes: Any) -> JobRecord | None:
        unknown = set(changes) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown journal columns: {sorted(unknown)}")
        if "charge" in changes and changes["charge"] not in CHARGES:
            raise ValueError(f"bad charge {changes['charge']!r}")
        changes["updated_at"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in changes)
        with self._tx() as db:
            db.execute(f"UPDATE jobs SET {assignments} WHERE local_id = ?",  # noqa: S608
                       (*changes.values(), local_id))
        return self.get(local_id)

    def recover_interrupted_submits(self) -> list[JobRecord]:
        """Rows left in 'submitting' by a dead process become 'unknown' (maybe charged)."""
        recovered = []
        with self._tx() as db:
            rows = db.execute("SELECT local_id, pid, emulator FROM jobs"
                              " WHERE status = 'submitting'").fetchall()
            for row in rows:
                if _pid_alive(int(row["pid"])):
                    continue
                db.execute(
                    "UPDATE jobs SET status = 'unknown', charge = ?, error_message = ?,"
                    " updated_at = ? WHERE local_id = ?",
                    ("none" if row["emulator"] else "maybe",
                     "the session ended while this job was being submitted: it may have been "
                     "charged, but its task id was never received", time.time(),
                     row["local_id"]))
                recovered.append(row["local_id"])
        return [r for r in (self.get(i) for i in recovered) if r is not None]

    # -- reads ----------------------------------------------------------------------------

    def get(self, local_id: str) -> JobRecord | None:
        return self._row(self._connect().execute(
            "SELECT * FROM jobs WHERE local_id = ?", (local_id,)).fetchone())

    def find_task(self, task_id: str) -> JobRecord | None:
        return self._row(self._connect().execute(
            "SELECT * FROM jobs WHERE task_id = ? ORDER BY created_at DESC LIMIT 1",
            (task_id,)).fetchone())

    def find(self, ref: str) -> JobRecord | None:
        """A job by task id, local id, or a unique prefix of either."""
        exact = self.find_task(ref) or self.get(ref)
        if exact is not None:
            return exact
        rows = self._connect().execute(
            "SELECT * FROM jobs WHERE task_id LIKE ? OR local_id LIKE ? LIMIT 2",
            (ref.replace("%", "") + "%", ref.replace("%", "") + "%")).fetchall()
        return self._row(rows[0]) if len(rows) == 1 else None

    def history(self, limit: int | None = None) -> list[JobRecord]:
        sql = "SELECT * FROM jobs ORDER BY created_at DESC"
        params: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (limit,)
        return [r for r in map(self._row, self._connect().execute(sql, params)) if r]

    def reusable(self, fingerprint: str, backend: str, limit: int = 1) -> list[JobRecord]:
        """The newest jobs for this request that a re-run should show instead of paying again.

        Rejected submits (nothing charged) are not reused: re-running them is free.
        """
        rows = self._connect().execute(
            "SELECT * FROM jobs WHERE fingerprint = ? AND backend = ?"
            " AND NOT (status = 'failed' AND charge = 'none' AND task_id IS NULL)"
            " ORDER BY created_at DESC LIMIT ?", (fingerprint, backend, limit)).fetchall()
        return [r for r in map(self._row, rows) if r]

    def unfinished(self) -> list[JobRecord]:
        """Jobs that still need the relay: tracked but not final, or completed but not saved."""
        rows = self._connect().execute(
            "SELECT * FROM jobs WHERE task_id IS NOT NULL AND"
            " (status NOT IN ('completed', 'failed', 'unknown')"
            "  OR (status = 'completed' AND local_path IS NULL))"
            " ORDER BY created_at").fetchall()
        return [r for r in map(self._row, rows) if r]

    def spend(self, session: str | None = None) -> Spend:
        sql = ("SELECT COALESCE(SUM(CASE WHEN charge = 'charged' THEN price_usd END), 0),"
               " COALESCE(SUM(CASE WHEN charge = 'maybe' THEN price_usd END), 0),"
               " COALESCE(SUM(CASE WHEN status = 'submitting' THEN price_usd END), 0),"
               " COUNT(*) FROM jobs WHERE emulator = 0")
        params: tuple[Any, ...] = ()
        if session is not None:
            sql += " AND session = ?"
            params = (session,)
        charged, maybe, pending, count = self._connect().execute(sql, params).fetchone()
        return Spend(round(float(charged), 2), round(float(maybe), 2), round(float(pending), 2),
                     int(count))

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
