"""The journal's schema and its migrations, the same for every backend.

``schema_version`` holds the version; a journal of 0.1 (a ``jobs`` table without that
table) is version 1 and is migrated in place: its status strings become the lifecycle's
phase / relay status / error type, so nothing it knew about a paid job is lost. A journal
of 0.2 (version 2) recorded an exception's class name in ``error_type``; version 3 records
its kind (:class:`~sora_widgets.core.errors.ErrorKind`), and the migration rewrites each
name as its kind. Version 4 adds ``billed_usd``: what the relay says it charged (NULL
until it says; the quote stays in ``price_usd``).
"""

from __future__ import annotations

from typing import Any

from sora_widgets.core.errors import kind_named
from sora_widgets.core.lifecycle import Phase, RelayStatus, state_for_status
from sora_widgets.journal.priors import ensure_priors_table
from sora_widgets.journal.records import SCHEMA_VERSION, Cursor

__all__ = ["migrate"]

_TYPES = {
    "sqlite": {"real": "REAL", "int": "INTEGER", "text": "TEXT"},
    "postgres": {"real": "DOUBLE PRECISION", "int": "BIGINT", "text": "TEXT"},
}

#: (column, type, constraint) of schemas 2 to 4.
_JOBS = (
    ("local_id", "text", "PRIMARY KEY"),
    ("task_id", "text", ""),
    ("fingerprint", "text", "NOT NULL"),
    ("request", "text", "NOT NULL"),
    ("backend", "text", "NOT NULL"),
    ("emulator", "int", "NOT NULL DEFAULT 0"),
    ("status", "text", "NOT NULL"),
    ("phase", "text", f"NOT NULL DEFAULT '{Phase.SUBMITTING.value}'"),
    ("relay_status", "text", ""),
    ("relay_word", "text", ""),
    ("progress", "int", "NOT NULL DEFAULT 0"),
    ("video_url", "text", ""),
    ("error_message", "text", ""),
    ("error_code", "text", ""),
    ("error_type", "text", ""),
    ("price_usd", "real", "NOT NULL DEFAULT 0"),
    ("charge", "text", "NOT NULL DEFAULT 'none'"),
    ("local_path", "text", ""),
    ("session", "text", "NOT NULL"),
    ("owner", "text", "NOT NULL DEFAULT ''"),
    ("pid", "int", "NOT NULL"),
    ("heartbeat_at", "real", ""),
    ("created_at", "real", "NOT NULL"),
    ("updated_at", "real", "NOT NULL"),
    ("completed_at", "real", ""),
    ("parent_id", "text", ""),
    ("starred", "int", "NOT NULL DEFAULT 0"),
    ("note", "text", ""),
    ("user_name", "text", ""),
    ("host", "text", ""),
    ("billed_usd", "real", ""),
)
#: Multi-job plans (storyboards): what is still to submit survives a crash.
_PLANS = (
    ("plan_id", "text", "PRIMARY KEY"),
    ("kind", "text", "NOT NULL"),
    ("body", "text", "NOT NULL"),
    ("session", "text", "NOT NULL"),
    ("done", "int", "NOT NULL DEFAULT 0"),
    ("created_at", "real", "NOT NULL"),
    ("updated_at", "real", "NOT NULL"),
)
#: Columns schema 4 added (the relay's billed figure, where it reports one).
_ADDED_IN_4 = ("billed_usd",)
#: Columns schema 2 added to 0.1's table.
_ADDED_IN_2 = ("phase", "relay_status", "relay_word", "error_type", "owner", "heartbeat_at",
               "parent_id", "starred", "note", "user_name", "host")
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS jobs_fingerprint ON jobs (fingerprint, backend)",
    "CREATE INDEX IF NOT EXISTS jobs_task ON jobs (task_id)",
    "CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at)",
    "CREATE INDEX IF NOT EXISTS jobs_phase ON jobs (phase)",
)
def _column(name: str, kind: str, constraint: str, dialect: str) -> str:
    return f"{name} {_TYPES[dialect][kind]} {constraint}".strip()


def _has_table(cur: Cursor, name: str, dialect: str) -> bool:
    if dialect == "sqlite":
        sql = "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?"
    else:
        sql = ("SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_name = ?"
               " AND table_schema = current_schema()")
    return int(cur.execute(sql, (name,)).fetchone()["n"]) > 0


def _has_column(cur: Cursor, table: str, column: str, dialect: str) -> bool:
    if dialect == "sqlite":
        sql = "SELECT COUNT(*) AS n FROM pragma_table_info(?) WHERE name = ?"
    else:
        sql = ("SELECT COUNT(*) AS n FROM information_schema.columns WHERE table_name = ?"
               " AND column_name = ? AND table_schema = current_schema()")
    return int(cur.execute(sql, (table, column)).fetchone()["n"]) > 0


def migrate(cur: Cursor, *, dialect: str) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION` inside the caller's transaction."""
    if not _has_table(cur, "schema_version", dialect):
        cur.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        version = 1 if _has_table(cur, "jobs", dialect) else 0
        cur.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    version = int(cur.execute("SELECT MAX(version) AS v FROM schema_version").fetchone()["v"])
    if version == 0:
        columns = ", ".join(_column(*c, dialect) for c in _JOBS)
        cur.execute(f"CREATE TABLE jobs ({columns})")
    elif version == 1:
        _from_1(cur, dialect)
    if version < 2:
        columns = ", ".join(_column(*c, dialect) for c in _PLANS)
        cur.execute(f"CREATE TABLE IF NOT EXISTS plans ({columns})")
    if 1 <= version < 3:
        _kinds_for_names(cur)
    if 1 <= version < 4:
        spec = {name: (kind, constraint) for name, kind, constraint in _JOBS}
        for name in _ADDED_IN_4:     # a table faked or half-migrated by hand may have it
            if not _has_column(cur, "jobs", name, dialect):
                cur.execute(f"ALTER TABLE jobs ADD COLUMN {_column(name, *spec[name], dialect)}")
    if version < SCHEMA_VERSION:
        for sql in _INDEXES:
            cur.execute(sql)
        cur.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
    ensure_priors_table(cur, dialect=dialect)   # a cache, not versioned (journal/priors.py)
    return SCHEMA_VERSION


def _from_1(cur: Cursor, dialect: str) -> None:
    """0.1 kept one status string; derive phase, relay status and error type from it."""
    spec = {name: (kind, constraint) for name, kind, constraint in _JOBS}
    for name in _ADDED_IN_2:
        kind, constraint = spec[name]
        cur.execute(f"ALTER TABLE jobs ADD COLUMN {_column(name, kind, constraint, dialect)}")
    rows = cur.execute("SELECT local_id, task_id, status, local_path, error_code FROM jobs"
                       ).fetchall()
    for row in rows:
        phase, relay, error_type = _v1_meaning(row)
        cur.execute("UPDATE jobs SET phase = ?, relay_status = ?, relay_word = ?,"
                    " error_type = ? WHERE local_id = ?",
                    (phase.value, relay.value if relay else None, row["status"], error_type,
                     row["local_id"]))


def _v1_meaning(row: Any) -> tuple[Phase, RelayStatus | None, str | None]:
    state = state_for_status(row["status"], task_id=row["task_id"],
                             local_path=row["local_path"], error_code=row["error_code"])
    return state.phase, state.relay_status, state.error_type


def _kinds_for_names(cur: Cursor) -> None:
    """0.2 stored a class name (``PermissionDeniedError``); 3 stores its kind."""
    rows = cur.execute("SELECT DISTINCT error_type FROM jobs WHERE error_type IS NOT NULL"
                       ).fetchall()
    for row in rows:
        name = row["error_type"]
        kind = kind_named(name)
        if kind is not None and kind.value != name:
            cur.execute("UPDATE jobs SET error_type = ? WHERE error_type = ?",
                        (kind.value, name))
