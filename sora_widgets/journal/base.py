"""The journal's logic, shared by its backends; a backend supplies connections and locking.

The journal stores, totals and reserves; it decides no money question. Its one atomic step,
:meth:`Journal.claim_many`, runs the cache lookup, the caps (decided by the pure
:func:`sora_widgets.core.money.decide`, fed by a ledger over the same transaction) and the
intent inserts in one exclusive transaction, so it holds across processes.

A commit whose answer is lost (the connection cut after the server committed) is resolved
by reading back: the claim's rows are there (the claim stands) or not (nothing happened).
When even that cannot be known, the rows are remembered, and settled as *not sent* (nothing
was charged: the POST only ever follows a confirmed claim) at the next chance.

SQL here is written with ``?`` placeholders; a backend whose driver wants another style
translates them. Lifecycle predicates come from :mod:`sora_widgets.core.lifecycle`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

from sora_widgets.core.errors import ErrorKind, JournalError
from sora_widgets.core.lifecycle import (
    SQL_NEEDS_RELAY,
    SQL_NOT_REJECTED,
    SQL_PENDING,
    UNKNOWN_OUTCOME,
    Charge,
    JobState,
    Phase,
    Status,
)
from sora_widgets.core.models import VideoRequest
from sora_widgets.core.money import (
    MIN_CHARGE_USD,
    Limits,
    Quote,
    Scope,
    charged_price,
    decide,
    paid_price,
    total,
)
from sora_widgets.core.owner import Owner, current_owner, owner_alive
from sora_widgets.journal.ledger import SQL_PAID, CursorLedger, read_spend
from sora_widgets.journal.priors import RelayPriors
from sora_widgets.journal.records import (
    COLUMNS,
    INTERRUPTED,
    NOT_SENT,
    SCHEMA_VERSION,
    Claim,
    Cursor,
    JobRecord,
    Spend,
)

__all__ = ["COLUMNS", "INTERRUPTED", "SCHEMA_VERSION", "Claim", "Cursor", "JobRecord",
           "Journal", "Limits", "Spend"]

_ORDER = " ORDER BY created_at DESC, local_id DESC"
#: How often an unconfirmed commit is read back before its outcome is called unknown.
_READ_BACK_TRIES = 3
#: Rows this process wrote whose claim's commit was never confirmed (nothing was sent for
#: them): settled as not sent at the next chance. Per process: a forked child has none.
_unsent: set[str] = set()
_unsent_lock = threading.Lock()
_unsent_pid = [os.getpid()]

NO_LIMITS = Limits()
#: One claim item: (request, how many asked, price of one).
Item = tuple[VideoRequest, int, float]


def _like_prefix(text: str) -> str:
    """A LIKE pattern matching ``text`` literally as a prefix (``_`` is in real task ids)."""
    return "".join("!" + c if c in "!%_" else c for c in text) + "%"


def _prompt_has(record: JobRecord, words: Sequence[str]) -> bool:
    """Every word (lower case) is in the record's prompt ("2" is not found in "duration")."""
    prompt = record.prompt.lower()
    return all(word in prompt for word in words)


def _update_statement(local_id: str, changes: dict[str, Any],
                      now: float) -> tuple[str, tuple[Any, ...]]:
    unknown = set(changes) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown journal columns: {sorted(unknown)}")
    changes = {**changes, "updated_at": now}
    assignments = ", ".join(f"{name} = ?" for name in changes)
    return f"UPDATE jobs SET {assignments} WHERE local_id = ?", (*changes.values(), local_id)


def _remember_unsent(local_ids: Sequence[str]) -> None:
    with _unsent_lock:
        if _unsent_pid[0] != os.getpid():
            _unsent.clear()
            _unsent_pid[0] = os.getpid()
        _unsent.update(local_ids)


def _take_unsent() -> list[str]:
    with _unsent_lock:
        if _unsent_pid[0] != os.getpid():
            _unsent.clear()
            _unsent_pid[0] = os.getpid()
        taken = sorted(_unsent)
        _unsent.clear()
        return taken


class Journal(RelayPriors):
    """Thread-safe journal access. Backends implement ``_tx``, ``_read`` and ``close``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[JobRecord]:
        with self._read() as cur:
            return [JobRecord.from_row(r) for r in cur.execute(sql, params).fetchall()]

    # -- the atomic money step ------------------------------------------------------------

    def claim(self, *, request: VideoRequest, backend: str, emulator: bool, price_usd: float,
              session: str, n: int = 1, force: bool = False, limits: Limits = NO_LIMITS,
              parent_id: str | None = None, user: str = "", host: str = "",
              new_ids: Sequence[str]) -> Claim:
        """Reuse up to ``n`` earlier identical jobs, check every cap for the rest and write
        their intents: one exclusive transaction, so it holds across processes."""
        (claim,) = self.claim_many(items=[(request, n, price_usd)], backend=backend,
                                   emulator=emulator, session=session, force=force,
                                   limits=limits, parent_id=parent_id, user=user, host=host,
                                   new_ids=new_ids)
        return claim

    def claim_many(self, *, items: Sequence[Item], backend: str, emulator: bool, session: str,
                   force: bool = False, limits: Limits = NO_LIMITS,
                   parent_id: str | None = None, user: str = "", host: str = "",
                   new_ids: Sequence[str]) -> list[Claim]:
        """:meth:`claim` for several requests (a sweep, a storyboard) in one transaction:
        the caps and the confirmation hold for the whole call. A refusal raises
        (``BudgetExceededError``, ``ConfirmationRequired``) and writes nothing."""
        for request, _, price in items:        # a paid row is never written at $0
            paid_price(price, emulator=emulator, what=f"{request.model} ({request.style})")
        now = time.time()
        owner = current_owner()
        ids = iter(new_ids)
        claims: list[Claim] = []
        self.settle_unsent()
        try:
            with self._tx(exclusive=True) as cur:
                reused = self._reuse(cur, items, backend, force)
                quote = self._decide(cur, items, reused, emulator, limits, session, now)
                quote.require()
                for (request, n, price), earlier in zip(items, reused, strict=True):
                    created = [self._insert(
                        cur, local_id=next(ids), request=request, backend=backend,
                        emulator=emulator, price_usd=price, session=session,
                        owner=str(owner), pid=owner.pid, now=now, parent_id=parent_id,
                        user=user, host=host) for _ in range(n - len(earlier))]
                    claims.append(Claim(reused=earlier, created=created))
        except JournalError as exc:
            written = [r.local_id for claim in claims for r in claim.created]
            if len(claims) < len(items) or not written:
                raise          # failed before the claim was complete: nothing was written
            landed = self._landed(written)
            if landed:
                return claims  # the commit had happened: the claim stands
            if landed is None:
                _remember_unsent(written)
            raise JournalError(f"{exc} (the claim was not written: nothing was sent, "
                               "nothing was charged)") from exc
        return claims

    def _landed(self, local_ids: Sequence[str]) -> bool | None:
        """Whether a claim's rows are in the journal (read back after an unconfirmed
        commit): True, False, or None when the journal cannot be read either."""
        marks = ", ".join("?" for _ in local_ids)
        for attempt in range(_READ_BACK_TRIES):
            try:
                with self._read() as cur:
                    found = cur.execute(f"SELECT COUNT(*) AS n FROM jobs WHERE local_id IN"
                                        f" ({marks})", tuple(local_ids)).fetchone()
                return int(found["n"]) > 0
            except JournalError:
                time.sleep(0.05 * (attempt + 1))
        return None

    def _settle_unsent(self, cur: Cursor, local_ids: Sequence[str], owner: Owner,
                       now: float) -> None:
        """Rows of an unconfirmed claim of this process: never sent, so not charged."""
        for local_id in local_ids:
            cur.execute(
                "UPDATE jobs SET phase = ?, status = ?, error_type = ?, error_message = ?,"
                " charge = ?, updated_at = ? WHERE local_id = ? AND owner = ? AND task_id IS"
                f" NULL AND {SQL_PENDING}",
                (Phase.SETTLED.value, Status.FAILED.value, ErrorKind.NOT_SENT.value, NOT_SENT,
                 Charge.NONE.value, now, local_id, str(owner)))

    def settle_unsent(self) -> None:
        """Settle, now, the rows of this process's unconfirmed claims (resume, a new claim)."""
        unsent = _take_unsent()
        if not unsent:
            return
        try:
            with self._tx() as cur:
                self._settle_unsent(cur, unsent, current_owner(), time.time())
        except JournalError:
            _remember_unsent(unsent)
            raise

    def _reuse(self, cur: Cursor, items: Sequence[Item], backend: str,
               force: bool) -> list[list[JobRecord]]:
        return [[] if force else self._reusable(cur, request.fingerprint(), backend, n)
                for request, n, _ in items]

    @staticmethod
    def _decide(cur: Cursor, items: Sequence[Item], reused: Sequence[Sequence[JobRecord]],
                emulator: bool, limits: Limits, session: str, now: float) -> Quote:
        quote = total([(n, len(earlier), price)
                       for (_, n, price), earlier in zip(items, reused, strict=True)],
                      emulator=emulator)
        capped = [scope for scope in Scope if limits.cap(scope) is not None]
        return decide(quote, limits, CursorLedger(cur, session=session, now=now,
                                                  scopes=capped))

    def _insert(self, cur: Cursor, *, local_id: str, request: VideoRequest, backend: str,
                emulator: bool, price_usd: float, session: str, owner: str, pid: int,
                now: float, parent_id: str | None, user: str, host: str) -> JobRecord:
        state = JobState()
        row = {
            **state.as_columns(), "local_id": local_id, "fingerprint": request.fingerprint(),
            "request": json.dumps(request.to_json()), "backend": backend,
            "emulator": int(emulator), "status": state.status.value, "price_usd": price_usd,
            "session": session, "owner": owner, "pid": pid, "heartbeat_at": now,
            "created_at": now, "updated_at": now, "parent_id": parent_id, "starred": 0,
            "note": None, "user_name": user or None, "host": host or None, "billed_usd": None,
        }
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        cur.execute(f"INSERT INTO jobs ({names}) VALUES ({marks})", tuple(row.values()))
        return JobRecord.from_row(row)     # what was written (no second query: every
                                           # query releases and re-takes the GIL)

    def quote(self, *, request: VideoRequest, backend: str, emulator: bool, price_usd: float,
              session: str, n: int = 1, force: bool = False,
              limits: Limits = NO_LIMITS) -> Quote:
        """What :meth:`claim` would do now, and its refusal if it would refuse (read only:
        the claim itself decides, atomically)."""
        return self.quote_many(items=[(request, n, price_usd)], backend=backend,
                               emulator=emulator, session=session, force=force, limits=limits)

    def quote_many(self, *, items: Sequence[Item], backend: str, emulator: bool,
                   session: str, force: bool = False, limits: Limits = NO_LIMITS) -> Quote:
        with self._read() as cur:
            reused = self._reuse(cur, items, backend, force)
            return self._decide(cur, items, reused, emulator, limits, session, time.time())

    def _reusable(self, cur: Cursor, fingerprint: str, backend: str,
                  limit: int) -> list[JobRecord]:
        rows = cur.execute(
            f"SELECT * FROM jobs WHERE fingerprint = ? AND backend = ? AND {SQL_NOT_REJECTED}"
            f"{_ORDER} LIMIT ?", (fingerprint, backend, limit)).fetchall()
        return [JobRecord.from_row(r) for r in rows]

    # -- state changes ----------------------------------------------------------------------

    def save_state(self, local_id: str, state: JobState, before: JobState | None = None) -> None:
        """Write a lifecycle transition (only what changed, and the derived status)."""
        self.save_states([(local_id, state, before)])

    def save_states(self, transitions: Sequence[tuple[str, JobState, JobState | None]]) -> None:
        """Several transitions (local id, new state, what the journal holds) in one
        transaction: the engine writes what piled up at once, one commit for all."""
        now = time.time()
        statements = []
        for local_id, state, before in transitions:
            changes = state.changes_from(before) if before is not None else state.as_columns()
            if changes:
                changes["status"] = state.status.value
                statements.append(_update_statement(local_id, changes, now))
        if statements:
            with self._tx() as cur:
                for sql, params in statements:
                    cur.execute(sql, params)

    def record_submitted(self, local_id: str, state: JobState, before: JobState) -> None:
        """The POST was answered: the task id (and the charge) right away, before the handle
        shows it. A failure here must not lose the id: the engine keeps and retries it."""
        self.save_state(local_id, state, before)

    def update(self, local_id: str, **changes: Any) -> None:
        sql, params = _update_statement(local_id, changes, time.time())
        with self._tx() as cur:
            cur.execute(sql, params)

    def heartbeat(self, local_ids: Sequence[str]) -> list[str]:
        """Renew this process's lease on the rows it owns among ``local_ids`` (other hosts
        judge by it; a row it only watches keeps its owner's lease). Returns the ids of the
        rows another process owns now (it took them over while this one was frozen)."""
        if not local_ids:
            return []
        me, now, lost = str(current_owner()), time.time(), []
        with self._tx() as cur:
            for start in range(0, len(local_ids), 500):
                chunk = local_ids[start:start + 500]
                marks = ", ".join("?" for _ in chunk)
                cur.execute(f"UPDATE jobs SET heartbeat_at = ? WHERE owner = ?"
                            f" AND local_id IN ({marks})", (now, me, *chunk))
                rows = cur.execute(f"SELECT local_id FROM jobs WHERE local_id IN ({marks})"
                                   " AND (owner IS NULL OR owner <> ?)", (*chunk, me))
                lost += [str(row["local_id"]) for row in rows.fetchall()]
        return lost

    def adopt(self, local_id: str) -> None:
        """This process takes over a row's lease (resume)."""
        owner = current_owner()
        self.update(local_id, owner=str(owner), pid=owner.pid, heartbeat_at=time.time())

    def take_over(self, local_id: str) -> tuple[JobRecord | None, bool]:
        """Whether this process may work on a row now, and the row.

        Yes for its own rows, and for a row whose owner is gone (its PID is dead, or another
        host's lease expired): that row becomes ours, in one exclusive transaction, so two
        processes never resume one job at once. A submit left by a dead owner is settled as
        'unknown' instead (its POST may have been paid: it is never sent again)."""
        now = time.time()
        me = current_owner()
        with self._tx(exclusive=True) as cur:
            record = self._get(cur, local_id)
            if record is None or record.state.settled:
                return record, False
            owner = Owner.parse(record.owner)
            if owner is not None and owner.token == me.token:
                return record, True
            if owner_alive(record.owner, heartbeat_at=record.heartbeat_at, now=now):
                return record, False
            if record.state.phase is Phase.SUBMITTING:
                self._settle_interrupted(cur, record, now)
                return self._get(cur, local_id), False
            cur.execute("UPDATE jobs SET owner = ?, pid = ?, heartbeat_at = ?, updated_at = ?"
                        " WHERE local_id = ?", (str(me), me.pid, now, now, local_id))
            return self._get(cur, local_id), True

    def _settle_interrupted(self, cur: Cursor, record: JobRecord, now: float) -> None:
        state = record.state.evolve(
            phase=Phase.SETTLED, error_type=UNKNOWN_OUTCOME, error_message=INTERRUPTED,
            charge=Charge.NONE if record.emulator else Charge.MAYBE)
        cur.execute(
            "UPDATE jobs SET phase = ?, status = ?, error_type = ?, error_message = ?,"
            " charge = ?, updated_at = ? WHERE local_id = ?",
            (state.phase.value, state.status.value, state.error_type, state.error_message,
             state.charge.value, now, record.local_id))

    def recover_interrupted_submits(self) -> list[JobRecord]:
        """Rows left 'submitting' by a process that is gone become 'unknown': maybe charged
        (and this process's own unconfirmed claims are settled as never sent)."""
        self.settle_unsent()
        now = time.time()
        recovered = []
        with self._tx(exclusive=True) as cur:
            rows = cur.execute(f"SELECT * FROM jobs WHERE {SQL_PENDING}").fetchall()
            for row in rows:
                record = JobRecord.from_row(row)
                if owner_alive(record.owner, heartbeat_at=record.heartbeat_at, now=now):
                    continue
                self._settle_interrupted(cur, record, now)
                recovered.append(record.local_id)
        return [r for r in map(self.get, recovered) if r is not None]

    # -- reads ------------------------------------------------------------------------------

    def _get(self, cur: Cursor, local_id: str) -> JobRecord | None:
        row = cur.execute("SELECT * FROM jobs WHERE local_id = ?", (local_id,)).fetchone()
        return JobRecord.from_row(row) if row is not None else None

    def get(self, local_id: str) -> JobRecord | None:
        with self._read() as cur:
            return self._get(cur, local_id)

    def find(self, ref: str) -> JobRecord | None:
        """A job by task id, local id, or a unique prefix of either."""
        rows = self._rows(f"SELECT * FROM jobs WHERE task_id = ? OR local_id = ?{_ORDER} LIMIT 1",
                          (ref, ref))
        if rows:
            return rows[0]
        prefix = _like_prefix(ref)
        rows = self._rows("SELECT * FROM jobs WHERE task_id LIKE ? ESCAPE '!'"
                          " OR local_id LIKE ? ESCAPE '!' LIMIT 2", (prefix, prefix))
        return rows[0] if len(rows) == 1 else None

    def history(self, limit: int | None = None, *, starred: bool | None = None,
                search: str | None = None, status: str | None = None,
                offset: int = 0, user: str | None = None) -> list[JobRecord]:
        sql, params = "SELECT * FROM jobs WHERE 1 = 1", list[Any]()
        if user is not None:
            sql += " AND (user_name = ? OR user_name IS NULL)"
            params.append(user)
        if starred is not None:
            sql += " AND starred = ?"
            params.append(int(starred))
        words = search.lower().split() if search else []
        for word in words:
            # A first cut on the request's JSON (keys and other fields too, non-ASCII
            # escaped): a superset, narrowed to the prompt's words below.
            if word.isascii() and not set(word) & set('"\\'):
                sql += " AND LOWER(request) LIKE ? ESCAPE '!'"
                params.append("%" + _like_prefix(word))
        if status is not None:
            sql += " AND status = ?"
            params.append(Status(status).value)
        sql += _ORDER
        if words:
            rows = [r for r in self._rows(sql, params) if _prompt_has(r, words)]
            return rows[offset:None if limit is None else offset + limit]
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            params += [limit if limit is not None else 2**62, offset]
        return self._rows(sql, params)

    def unfinished(self) -> list[JobRecord]:
        """Jobs that still need the relay: polling, or completed but not saved."""
        return self._rows(f"SELECT * FROM jobs WHERE {SQL_NEEDS_RELAY} ORDER BY created_at")

    def spend(self, session: str | None = None) -> Spend:
        with self._read() as cur:
            if session is None:
                return read_spend(cur)
            return read_spend(cur, " AND session = ?", (session,))

    def spend_by_user_day(self, since: float = 0.0) -> list[dict[str, Any]]:
        """Paid jobs (charged, maybe, in flight) per user and UTC day, newest day first."""
        rows = self._rows(f"SELECT * FROM jobs WHERE {SQL_PAID} AND created_at >= ?"
                          " ORDER BY created_at DESC", (since,))
        table: dict[tuple[str, str], dict[str, Any]] = {}
        for record in rows:
            day = datetime.fromtimestamp(record.created_at, timezone.utc).strftime("%Y-%m-%d")
            who = record.user_name or "?"
            entry = table.setdefault((day, who), {"day": day, "user": who, "jobs": 0,
                                                  "charged_usd": 0.0, "maybe_usd": 0.0})
            entry["jobs"] += 1
            key = "maybe_usd" if record.charge != Charge.CHARGED.value else "charged_usd"
            entry[key] = round(entry[key] + max(charged_price(record.price_usd,
                                                                  record.billed_usd),
                                                    MIN_CHARGE_USD), 2)
        return list(table.values())

    def iter_all(self) -> Iterator[JobRecord]:
        yield from self._rows("SELECT * FROM jobs ORDER BY created_at")

