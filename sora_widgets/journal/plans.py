"""The journal's backend hooks, and its plans: multi-job work (storyboards) whose shots
still to submit must survive a crash.

A plan's body is JSON (never a key). Plans read back are data: a body that is not a JSON
object (a hand-edited or hostile row) is left out, never raised.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from sora_widgets.journal.records import Cursor, request_body

__all__ = ["Store"]


class Store(ABC):
    """What a backend supplies (transactions, reads), and the plans kept with the jobs."""

    location: str

    @abstractmethod
    def _tx(self, *, exclusive: bool = False) -> AbstractContextManager[Cursor]:
        """A transaction; ``exclusive`` serialises it against every other claim."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Cursor]:
        """A cursor for reads (a consistent snapshot is not required)."""

    @abstractmethod
    def close(self) -> None: ...

    def save_plan(self, plan_id: str, kind: str, body: Mapping[str, Any], *, session: str,
                  done: bool = False) -> None:
        """Create or replace a plan (its body is JSON: no key, ever)."""
        now = time.time()
        text = json.dumps(dict(body))
        with self._tx() as cur:
            updated = cur.execute(
                "UPDATE plans SET body = ?, done = ?, updated_at = ? WHERE plan_id = ?",
                (text, int(done), now, plan_id)).rowcount
            if not updated:
                cur.execute("INSERT INTO plans (plan_id, kind, body, session, done, created_at,"
                            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (plan_id, kind, text, session, int(done), now, now))

    def plans(self, kind: str, *, done: bool | None = False) -> list[tuple[str, dict[str, Any]]]:
        """``(plan_id, body)`` of the plans of a kind, oldest first (unfinished by default)."""
        sql, params = "SELECT plan_id, body FROM plans WHERE kind = ?", list[Any]([kind])
        if done is not None:
            sql += " AND done = ?"
            params.append(int(done))
        with self._read() as cur:
            rows = cur.execute(sql + " ORDER BY created_at", params).fetchall()
        found = [(str(row["plan_id"]), request_body(row["body"])) for row in rows]
        return [(plan_id, body) for plan_id, body in found if body]
