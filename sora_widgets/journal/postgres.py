"""The team journal: the same journal in a PostgreSQL database (``SORA_JOURNAL_URL``).

Every kernel of a team (JupyterHub, laptops) points at one database; the journal's
transactions then hold across machines. :meth:`Journal.claim` runs under
``pg_advisory_xact_lock`` (one constant key per database), so the cache lookup, the budget
checks and the intent inserts of two claims never interleave, wherever they run; the lock
goes with the transaction's commit or rollback, or with the connection of a killed process.
Other writes touch only their own rows and need no global lock.

Connections are per thread and per process (a forked child opens its own; it never uses,
or closes, its parent's). They run in autocommit mode: a read is one statement, never an
idle open transaction; a write is an explicit ``BEGIN ... COMMIT`` at READ COMMITTED, so
each statement after the lock sees every claim committed before it.

psycopg 3 is optional (``pip install "sora-widgets[team]"``); this module imports it only
when a ``postgresql://`` journal is opened. The password of the URL is never shown: the
journal's ``location`` and its errors carry the URL without it. The API key never goes
into the database (the journal has no column for it).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from sora_widgets.core.errors import JournalError
from sora_widgets.journal.base import Cursor, Journal
from sora_widgets.journal.schema import migrate

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import DictRow

__all__ = ["CLAIM_LOCK", "MIGRATE_LOCK", "PostgresJournal", "redact_url", "to_pyformat"]

#: ``pg_advisory_xact_lock`` keys (bigint constants, per database): every claim of the
#: journal, and its schema migration at open.
CLAIM_LOCK = 0x534F_5241_4A01       # "SORA" "J" 1
MIGRATE_LOCK = 0x534F_5241_4A02
#: How long a transaction waits for a lock before the journal reports itself busy.
LOCK_TIMEOUT_MS = 60_000
#: A connection idle this long is checked before use: a kernel left open overnight must
#: not fail its next submit because the server restarted meanwhile.
IDLE_PING_SECONDS = 10.0

#: Connections of the parent process, kept (never closed or used) in a forked child: closing
#: one would end the parent's session on the socket they share.
_orphans: list[Any] = []


#: Query parameters of a libpq URL that carry a secret (``?password=``, ``sslpassword=``).
_SECRET_PARAMS = ("password", "sslpassword")


def redact_url(url: str) -> str:
    """``url`` without any password: the userinfo form (``postgresql://ann:***@host/db``)
    and every ``?password=`` / ``sslpassword=`` parameter (``password=***``)."""
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:
        return "postgresql://(unparsable URL)"
    if has_password:
        netloc = parts.netloc.rpartition("@")
        user = netloc[0].partition(":")[0]
        parts = parts._replace(netloc=f"{user}:***@{netloc[2]}")
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(name.lower() in _SECRET_PARAMS for name, _ in pairs):
            shown = [(name, "***" if name.lower() in _SECRET_PARAMS else value)
                     for name, value in pairs]
            parts = parts._replace(query=urlencode(shown, safe="*"))
    return urlunsplit(parts)


def _secrets(url: str) -> list[str]:
    """The passwords a connection to ``url`` may use (its own, and PGPASSWORD)."""
    found = [os.environ.get("PGPASSWORD", "")]
    try:
        parts = urlsplit(url)
        found.append(unquote(parts.password or ""))
        found += [value for name, value in parse_qsl(parts.query, keep_blank_values=True)
                  if name.lower() in _SECRET_PARAMS]
    except ValueError:
        pass
    return sorted({s for s in found if s}, key=len, reverse=True)


def _masked(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


@lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """The journal's ``?`` placeholders as psycopg's ``%s`` (and a literal ``%`` as ``%%``);
    a ``?`` inside a quoted string or identifier is left alone."""
    out: list[str] = []
    quote = ""
    for char in sql:
        if char == "%":
            out.append("%%")
            continue
        if quote:
            if char == quote:
                quote = ""          # a doubled quote ('') closes and reopens: same result
        elif char in "'\"":
            quote = char
        elif char == "?":
            out.append("%s")
            continue
        out.append(char)
    return "".join(out)


def _param(value: Any) -> Any:
    # The schema keeps flags as integers on both backends; a bool would not compare with them.
    return int(value) if isinstance(value, bool) else value


class PostgresJournal(Journal):
    """Thread-safe access to a PostgreSQL journal (one connection per thread)."""

    def __init__(self, url: str, *, connect_timeout: int = 10) -> None:
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://"):]
        self.location = redact_url(url)
        self._url = url
        self._connect_timeout = connect_timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: dict[threading.Thread, psycopg.Connection[DictRow]] = {}
        self._pid = os.getpid()
        with self._errors():
            db = self._connect()
            with db.transaction():
                # Two kernels opening a fresh database at once: one migrates, the other
                # waits, then finds the schema current.
                db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
                migrate(_PgCursor(db), dialect="postgres")

    def __repr__(self) -> str:
        return f"PostgresJournal({self.location!r})"

    # -- connections ------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[DictRow]:
        if os.getpid() != self._pid:          # forked: the parent's connections are not ours
            _orphans.extend(self._connections.values())
            self._connections = {}
            self._local = threading.local()
            self._lock = threading.Lock()
            self._pid = os.getpid()
        db: psycopg.Connection[DictRow] | None = getattr(self._local, "db", None)
        if db is not None and not db.closed and not db.broken:
            now = time.monotonic()
            if now - self._local.used > IDLE_PING_SECONDS and not self._alive(db):
                self._forget()                  # the server restarted, or dropped us
            else:
                self._local.used = now
                return db
        _require_psycopg(self.location)
        import psycopg
        from psycopg.rows import dict_row

        db = psycopg.connect(self._url, autocommit=True, row_factory=dict_row,
                             connect_timeout=self._connect_timeout,
                             application_name="sora-widgets")
        db.execute(f"SET lock_timeout = {int(LOCK_TIMEOUT_MS)}")
        self._local.db = db
        self._local.used = time.monotonic()
        with self._lock:
            for thread, old in list(self._connections.items()):
                if not thread.is_alive() or old.closed:      # a finished thread's connection
                    del self._connections[thread]
                    old.close()
            self._connections[threading.current_thread()] = db
        return db

    @staticmethod
    def _alive(db: psycopg.Connection[DictRow]) -> bool:
        """Whether an idle connection still reaches the server (one round trip)."""
        import psycopg

        try:
            db.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def _forget(self) -> None:
        """Drop this thread's connection after it broke (the next call reconnects)."""
        db = getattr(self._local, "db", None)
        self._local.db = None
        if db is not None:
            with self._lock:
                self._connections.pop(threading.current_thread(), None)
            db.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """The driver's errors, turned into what the user should do about them."""
        _require_psycopg(self.location)
        import psycopg
        from psycopg import errors as pg

        try:
            yield
        except psycopg.Error as exc:
            db = getattr(self._local, "db", None)
            if db is not None and (db.closed or db.broken):
                self._forget()
            secrets = _secrets(self._url)
            raise JournalError(_masked(f"journal {self.location}: {_first_line(exc)} — "
                                       f"{_advice(exc, pg)}", secrets)) from _Cause(
                                           _masked(f"{type(exc).__name__}: {exc}", secrets))

    @contextmanager
    def _tx(self, *, exclusive: bool = False) -> Iterator[Cursor]:
        with self._errors():
            db = self._connect()
            with db.transaction():
                if exclusive:
                    db.execute("SELECT pg_advisory_xact_lock(%s)", (CLAIM_LOCK,))
                yield _PgCursor(db)

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        with self._errors():
            yield _PgCursor(self._connect())

    def close(self) -> None:
        """Close every connection this process opened to the journal."""
        if os.getpid() != self._pid:
            return
        with self._lock:
            connections, self._connections = list(self._connections.values()), {}
        self._local = threading.local()
        for db in connections:
            db.close()

    @property
    def schema_version(self) -> int:
        with self._read() as cur:
            return int(cur.execute("SELECT MAX(version) AS v FROM schema_version").fetchone()["v"])


class _Cause(Exception):
    """The driver's error as text, passwords masked: what a traceback shows as the cause
    (the driver's own exception object may quote a conninfo string)."""


class _PgCursor:
    """The journal's cursor interface on a psycopg connection (``?`` → ``%s``)."""

    def __init__(self, db: psycopg.Connection[DictRow]) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[DictRow]:
        return self._db.execute(to_pyformat(sql), tuple(_param(p) for p in params))


def _require_psycopg(location: str) -> None:
    """The driver is an optional dependency: say how to install it when it is missing."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise JournalError(
            f"journal {location}: a PostgreSQL journal needs psycopg 3 — pip install "
            '"sora-widgets[team]" (or "psycopg[binary]"), or unset SORA_JOURNAL_URL to use '
            "the local journal file") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _advice(exc: BaseException, pg: Any) -> str:
    text = str(exc).lower()
    if isinstance(exc, pg.InsufficientPrivilege):
        return ("the database user lacks a permission: the journal needs SELECT, INSERT and "
                "UPDATE on its tables (and CREATE on the schema the first time, to create "
                "them); ask the database owner to GRANT them")
    if isinstance(exc, pg.LockNotAvailable):
        return ("another kernel held the journal's lock too long: try again; if it keeps "
                "happening, look for a stuck session in pg_stat_activity")
    if isinstance(exc, pg.ReadOnlySqlTransaction):
        return "the server is read-only (a standby?): point SORA_JOURNAL_URL at the primary"
    if isinstance(exc, pg.DiskFull):
        return "the database server's disk is full: ask its administrator"
    if "password authentication failed" in text or "pg_hba.conf" in text or (
            "role" in text and "does not exist" in text) or "authentication" in text:
        return ("the server refused the login: check the user and password in "
                "SORA_JOURNAL_URL (or ~/.pgpass) and the server's pg_hba.conf")
    if "database" in text and "does not exist" in text:
        return ("the database does not exist: create it once (createdb, or CREATE DATABASE) "
                "and the journal creates its tables")
    if isinstance(exc, pg.OperationalError) or "could not connect" in text or "refused" in text:
        return ("the database server cannot be reached: is it running, and are the host and "
                "port in SORA_JOURNAL_URL right? Unset SORA_JOURNAL_URL to work on the local "
                "journal file meanwhile (the team's budget and history are not shared then)")
    return "see the cause below"
