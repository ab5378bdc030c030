"""The journal's logic, shared by its backends; a backend supplies connections and locking.

SQL here is written with ``?`` placeholders; a backend whose driver wants another style
translates them. Lifecycle predicates come from :mod:`sora_widgets.core.lifecycle`.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import Any, Protocol

from sora_widgets.core.errors import BudgetExceededError, ConfirmationRequired
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
from sora_widgets.core.models import Quote, VideoRequest
from sora_widgets.core.owner import Owner, current_owner, owner_alive

__all__ = ["Claim", "Cursor", "JobRecord", "Journal", "Limits", "Spend"]

SCHEMA_VERSION = 2
#: Every column of ``jobs`` in schema 2 (a backend's DDL must create exactly these).
COLUMNS = (
    "local_id", "task_id", "fingerprint", "request", "backend", "emulator", "status",
    "phase", "relay_status", "relay_word", "progress", "video_url", "error_message",
    "error_code", "error_type", "price_usd", "charge", "local_path", "session", "owner",
    "pid", "heartbeat_at", "created_at", "updated_at", "completed_at", "parent_id",
    "starred", "note", "user_name", "host",
)
_ORDER = " ORDER BY created_at DESC, local_id DESC"
INTERRUPTED = ("the session ended while this job was being submitted: it may have been "
               "charged, but its task id was never received")


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...


@dataclass(frozen=True)
class JobRecord:
    """One journal row."""

    local_id: str
    task_id: str | None
    fingerprint: str
    request: str
    backend: str
    emulator: bool
    status: str
    phase: str
    relay_status: str | None
    relay_word: str | None
    progress: int
    video_url: str | None
    error_message: str | None
    error_code: str | None
    error_type: str | None
    price_usd: float
    charge: str
    local_path: str | None
    session: str
    owner: str
    pid: int
    heartbeat_at: float | None
    created_at: float
    updated_at: float
    completed_at: float | None
    parent_id: str | None
    starred: bool
    note: str | None
    user_name: str | None
    host: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> JobRecord:
        values = {name: row[name] for name in COLUMNS}
        values["emulator"] = bool(values["emulator"])
        values["starred"] = bool(values["starred"])
        values["price_usd"] = float(values["price_usd"])
        return cls(**values)

    @property
    def state(self) -> JobState:
        return JobState.from_columns(self.__dict__)

    @property
    def video_request(self) -> VideoRequest:
        return VideoRequest.from_json(json.loads(self.request))

    @property
    def cost_usd(self) -> float:
        return self.state.cost(self.price_usd)


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


@dataclass(frozen=True)
class Limits:
    """The caps one claim is checked against (None: no such cap)."""

    session_usd: float | None = None
    daily_usd: float | None = None
    team_usd: float | None = None
    confirm_usd: float | None = None


@dataclass(frozen=True)
class Claim:
    """What :meth:`Journal.claim` decided, atomically: reuse these, submit those."""

    reused: list[JobRecord] = field(default_factory=list)
    created: list[JobRecord] = field(default_factory=list)


def _utc_day_start(now: float) -> float:
    day = datetime.fromtimestamp(now, timezone.utc).replace(hour=0, minute=0, second=0,
                                                             microsecond=0)
    return day.timestamp()


def _utc_month_start(now: float) -> float:
    month = datetime.fromtimestamp(now, timezone.utc).replace(day=1, hour=0, minute=0,
                                                               second=0, microsecond=0)
    return month.timestamp()


_SPEND_SQL = (
    f"SELECT COALESCE(SUM(CASE WHEN charge = '{Charge.CHARGED.value}' THEN price_usd END), 0)"
    f" AS charged, COALESCE(SUM(CASE WHEN charge = '{Charge.MAYBE.value}' THEN price_usd END),"
    f" 0) AS maybe, COALESCE(SUM(CASE WHEN {SQL_PENDING} THEN price_usd END), 0) AS pending,"
    " COUNT(*) AS n FROM jobs WHERE emulator = 0")


def _like_prefix(text: str) -> str:
    """A LIKE pattern matching ``text`` literally as a prefix (``_`` is in real task ids)."""
    return "".join("!" + c if c in "!%_" else c for c in text) + "%"


def _prompt_has(record: JobRecord, words: Sequence[str]) -> bool:
    """Every word (lower case) is in the record's prompt ("2" is not found in "duration")."""
    prompt = str(json.loads(record.request).get("prompt") or "").lower()
    return all(word in prompt for word in words)


def _total(items: Sequence[tuple[VideoRequest, int, float]],
           reused: Sequence[Sequence[JobRecord]], emulator: bool) -> Quote:
    """The quote of a whole call: new jobs and their amount (prices may differ by model)."""
    new = [n - len(earlier) for (_, n, _), earlier in zip(items, reused, strict=True)]
    amount = round(sum(count * price for count, (_, _, price) in zip(new, items, strict=True)), 2)
    price = items[0][2] if items else 0.0
    return Quote(new=sum(new), reused=sum(len(e) for e in reused), price_usd=price,
                 emulator=emulator, amount_usd=amount)


def _update_statement(local_id: str, changes: dict[str, Any],
                      now: float) -> tuple[str, tuple[Any, ...]]:
    unknown = set(changes) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown journal columns: {sorted(unknown)}")
    changes = {**changes, "updated_at": now}
    assignments = ", ".join(f"{name} = ?" for name in changes)
    return f"UPDATE jobs SET {assignments} WHERE local_id = ?", (*changes.values(), local_id)


class Journal(ABC):
    """Thread-safe journal access. Backends implement ``_tx``, ``_read`` and ``close``."""

    location: str

    # -- backend hooks --------------------------------------------------------------------

    @abstractmethod
    def _tx(self, *, exclusive: bool = False) -> AbstractContextManager[Cursor]:
        """A transaction; ``exclusive`` serialises it against every other claim."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Cursor]:
        """A cursor for reads (a consistent snapshot is not required)."""

    @abstractmethod
    def close(self) -> None: ...

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[JobRecord]:
        with self._read() as cur:
            return [JobRecord.from_row(r) for r in cur.execute(sql, params).fetchall()]

    # -- the atomic money step ------------------------------------------------------------

    def claim(self, *, request: VideoRequest, backend: str, emulator: bool, price_usd: float,
              session: str, n: int = 1, force: bool = False, limits: Limits = Limits(),
              parent_id: str | None = None, user: str = "", host: str = "",
              new_ids: Sequence[str]) -> Claim:
        """Reuse up to ``n`` earlier identical jobs, check every cap for the rest and write
        their intents: one exclusive transaction, so it holds across processes."""
        (claim,) = self.claim_many(items=[(request, n, price_usd)], backend=backend,
                                   emulator=emulator, session=session, force=force,
                                   limits=limits, parent_id=parent_id, user=user, host=host,
                                   new_ids=new_ids)
        return claim

    def claim_many(self, *, items: Sequence[tuple[VideoRequest, int, float]], backend: str,
                   emulator: bool, session: str, force: bool = False,
                   limits: Limits = Limits(), parent_id: str | None = None, user: str = "",
                   host: str = "", new_ids: Sequence[str]) -> list[Claim]:
        """:meth:`claim` for several requests (a sweep, a storyboard) in one transaction:
        the caps and the confirmation hold for the whole call."""
        now = time.time()
        owner = current_owner()
        ids = iter(new_ids)
        with self._tx(exclusive=True) as cur:
            reused = [[] if force else self._reusable(cur, request.fingerprint(), backend, n)
                      for request, n, _ in items]
            quote = _total(items, reused, emulator)
            if quote.new and not emulator:
                self._check_limits(cur, quote, limits, session, now)
            claims = []
            for (request, n, price), earlier in zip(items, reused, strict=True):
                created = []
                for _ in range(n - len(earlier)):
                    created.append(self._insert(
                        cur, local_id=next(ids), request=request, backend=backend,
                        emulator=emulator, price_usd=price, session=session,
                        owner=str(owner), pid=owner.pid, now=now, parent_id=parent_id,
                        user=user, host=host))
                claims.append(Claim(reused=earlier, created=created))
        return claims

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
            "note": None, "user_name": user or None, "host": host or None,
        }
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        cur.execute(f"INSERT INTO jobs ({names}) VALUES ({marks})", tuple(row.values()))
        return JobRecord.from_row(row)     # what was written (no second query: every
                                           # query releases and re-takes the GIL)

    def quote(self, *, request: VideoRequest, backend: str, emulator: bool, price_usd: float,
              session: str, n: int = 1, force: bool = False,
              limits: Limits = Limits()) -> Quote:
        """What :meth:`claim` would do now, and why it would refuse (read only: the claim
        itself decides, atomically)."""
        return self.quote_many(items=[(request, n, price_usd)], backend=backend,
                               emulator=emulator, session=session, force=force, limits=limits)

    def quote_many(self, *, items: Sequence[tuple[VideoRequest, int, float]], backend: str,
                   emulator: bool, session: str, force: bool = False,
                   limits: Limits = Limits()) -> Quote:
        with self._read() as cur:
            reused = [[] if force else self._reusable(cur, request.fingerprint(), backend, n)
                      for request, n, _ in items]
            quote = _total(items, reused, emulator)
            if quote.new and not emulator:
                try:
                    self._check_limits(cur, quote, limits, session, time.time())
                except (BudgetExceededError, ConfirmationRequired) as exc:
                    return replace(quote, blocked=str(exc))
        return quote

    def _reusable(self, cur: Cursor, fingerprint: str, backend: str,
                  limit: int) -> list[JobRecord]:
        rows = cur.execute(
            f"SELECT * FROM jobs WHERE fingerprint = ? AND backend = ? AND {SQL_NOT_REJECTED}"
            f"{_ORDER} LIMIT ?", (fingerprint, backend, limit)).fetchall()
        return [JobRecord.from_row(r) for r in rows]

    def _check_limits(self, cur: Cursor, quote: Quote, limits: Limits, session: str,
                      now: float) -> None:
        if (limits.confirm_usd is not None and quote.new > 1
                and quote.new_usd > limits.confirm_usd + 1e-9):
            raise ConfirmationRequired(
                f"confirm: {quote.text} is more than SORA_CONFIRM_USD="
                f"${limits.confirm_usd:.2f} for one call; nothing was sent. Pass confirm=True "
                "(or --yes) to pay it.", quote=quote)
        scopes = (
            ("session", limits.session_usd, " AND session = ?", (session,),
             "this session", "SORA_BUDGET_USD"),
            ("day", limits.daily_usd, " AND created_at >= ?", (_utc_day_start(now),),
             "today (UTC), everyone on this journal", "SORA_DAILY_BUDGET_USD"),
            ("team", limits.team_usd, " AND created_at >= ?", (_utc_month_start(now),),
             "this month (UTC), everyone on this journal", "SORA_TEAM_BUDGET_USD"),
        )
        for scope, cap, where, params, who, name in scopes:
            if cap is None:
                continue
            spent = self._spend(cur, where, params).worst_case_usd
            if spent + quote.new_usd > cap + 1e-9:
                left = max(0.0, cap - spent)
                by = self._spenders(cur, where, params) if scope != "session" else ""
                raise BudgetExceededError(
                    f"budget: {quote.text} would pass the cap {name}=${cap:.2f}: "
                    f"${spent:.2f} spent {who} (charges of unknown outcome count), "
                    f"${left:.2f} left{by}; nothing was sent.",
                    spent_usd=spent, price_usd=quote.new_usd, budget_usd=cap, scope=scope)

    def _spenders(self, cur: Cursor, where: str, params: Sequence[Any]) -> str:
        rows = cur.execute(
            "SELECT COALESCE(user_name, '?') AS who, SUM(price_usd) AS usd FROM jobs"
            f" WHERE emulator = 0 AND (charge != '{Charge.NONE.value}' OR {SQL_PENDING}){where}"
            " GROUP BY COALESCE(user_name, '?') ORDER BY usd DESC LIMIT 5",
            tuple(params)).fetchall()
        parts = [f"{row['who']} ${float(row['usd']):.2f}" for row in rows]
        return f" (spent by {', '.join(parts)})" if parts else ""

    def _spend(self, cur: Cursor, where: str = "", params: Sequence[Any] = ()) -> Spend:
        row = cur.execute(_SPEND_SQL + where, tuple(params)).fetchone()
        return Spend(round(float(row["charged"]), 2), round(float(row["maybe"]), 2),
                     round(float(row["pending"]), 2), int(row["n"]))

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
        """Rows left 'submitting' by a process that is gone become 'unknown': maybe charged."""
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

    # -- plans (storyboards: the shots still to submit survive a crash) --------------------

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
        return [(str(row["plan_id"]), json.loads(row["body"])) for row in rows]

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
                return self._spend(cur)
            return self._spend(cur, " AND session = ?", (session,))

    def spend_by_user_day(self, since: float = 0.0) -> list[dict[str, Any]]:
        """Paid jobs (charged, maybe, in flight) per user and UTC day, newest day first."""
        rows = self._rows(f"SELECT * FROM jobs WHERE emulator = 0 AND created_at >= ?"
                          f" AND (charge != '{Charge.NONE.value}' OR {SQL_PENDING})"
                          " ORDER BY created_at DESC", (since,))
        table: dict[tuple[str, str], dict[str, Any]] = {}
        for record in rows:
            day = datetime.fromtimestamp(record.created_at, timezone.utc).strftime("%Y-%m-%d")
            who = record.user_name or "?"
            entry = table.setdefault((day, who), {"day": day, "user": who, "jobs": 0,
                                                  "charged_usd": 0.0, "maybe_usd": 0.0})
            entry["jobs"] += 1
            key = "maybe_usd" if record.charge != Charge.CHARGED.value else "charged_usd"
            entry[key] = round(entry[key] + record.price_usd, 2)
        return list(table.values())

    def iter_all(self) -> Iterator[JobRecord]:
        yield from self._rows("SELECT * FROM jobs ORDER BY created_at")


_FIELDS = tuple(f.name for f in fields(JobRecord))
assert _FIELDS == COLUMNS, "JobRecord and COLUMNS must list the same columns in order"
