"""What each relay's jobs taught the poll schedule, kept in the journal (issue 21 #13), so
a new kernel's first jobs on a relay start from what earlier kernels (or teammates on a
shared journal) learned instead of the cold-start defaults.

One row per relay (``relay`` is the engine's key: the base URL without credentials, the
wire style and the model — never the API key). The body is opaque JSON text to the
journal; the engine validates it (it is a teammate's data). The table is created here,
idempotently, from the schema's ``migrate`` (no schema version of its own: it is a cache
that a journal may lack or lose without harm).
"""

from __future__ import annotations

import time

from sora_widgets.journal.plans import Store
from sora_widgets.journal.records import Cursor

__all__ = ["MAX_BODY", "RelayPriors", "ensure_priors_table"]

#: The longest body kept or read (characters): a larger row is ignored, never parsed.
MAX_BODY = 256 * 1024


def ensure_priors_table(cur: Cursor, *, dialect: str) -> None:
    """Create the table if it is missing (inside the caller's migrate transaction).

    Looked up first: a PostgreSQL role with only row rights may open a journal whose
    tables exist (``CREATE ... IF NOT EXISTS`` checks the schema's CREATE right first)."""
    if dialect == "postgres":
        found = cur.execute("SELECT to_regclass('relay_priors') AS t").fetchone()["t"]
    else:
        found = cur.execute("SELECT name AS t FROM sqlite_master WHERE type = 'table'"
                            " AND name = 'relay_priors'").fetchone()
    if found:
        return
    real = "DOUBLE PRECISION" if dialect == "postgres" else "REAL"
    cur.execute("CREATE TABLE IF NOT EXISTS relay_priors (relay TEXT PRIMARY KEY,"
                f" body TEXT NOT NULL, jobs INTEGER NOT NULL, updated_at {real} NOT NULL)")


class RelayPriors(Store):
    """The journal's relay priors: read and written on the engine's events thread."""

    def load_prior(self, relay: str) -> str | None:
        """The stored body for ``relay`` (None: none, or too large to be one of ours)."""
        with self._read() as cur:
            row = cur.execute("SELECT body FROM relay_priors WHERE relay = ?"
                              " AND length(body) <= ?", (relay, MAX_BODY)).fetchone()
        if row is None:
            return None
        body = row["body"]
        return body if isinstance(body, str) and len(body) <= MAX_BODY else None

    def save_prior(self, relay: str, body: str, jobs: int) -> None:
        """Create or replace ``relay``'s row (last writer wins: each is a whole prior)."""
        if len(body) > MAX_BODY:
            raise ValueError("a relay prior body is larger than MAX_BODY")
        with self._tx() as cur:
            cur.execute("INSERT INTO relay_priors (relay, body, jobs, updated_at)"
                        " VALUES (?, ?, ?, ?) ON CONFLICT (relay) DO UPDATE SET"
                        " body = excluded.body, jobs = excluded.jobs,"
                        " updated_at = excluded.updated_at",
                        (relay, body, int(jobs), time.time()))
