"""Totals of what was spent, read from the journal: the journal supplies them, the money
rules (:mod:`sora_widgets.core.money`) decide with them.

A paid row counts in every total at least :data:`~sora_widgets.core.money.MIN_CHARGE_USD`,
whatever price it carries: a teammate whose catalogue said $0 must not switch the team's
cap off. Each row counts at the price it was quoted (or billed) when it was written, never
at what the reader's own catalogue says now.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from sora_widgets.core.lifecycle import SQL_PENDING, Charge
from sora_widgets.core.money import MIN_CHARGE_USD, Scope
from sora_widgets.journal.records import Cursor, Spend

__all__ = ["COUNTED_USD", "CursorLedger", "read_spend", "utc_day_start", "utc_month_start"]

#: What one paid row counts for: the relay's billed figure once it reported one, else the
#: quote reserved at submit; never less than the least charge.
_CHARGED_USD = "COALESCE(billed_usd, price_usd)"
COUNTED_USD = (f"(CASE WHEN {_CHARGED_USD} < {MIN_CHARGE_USD} THEN {MIN_CHARGE_USD}"
               f" ELSE {_CHARGED_USD} END)")
_SPEND_SQL = (
    f"SELECT COALESCE(SUM(CASE WHEN charge = '{Charge.CHARGED.value}' THEN {COUNTED_USD} END),"
    f" 0) AS charged, COALESCE(SUM(CASE WHEN charge = '{Charge.MAYBE.value}' THEN"
    f" {COUNTED_USD} END), 0) AS maybe, COALESCE(SUM(CASE WHEN {SQL_PENDING} THEN"
    f" {COUNTED_USD} END), 0) AS pending, COUNT(*) AS n FROM jobs WHERE emulator = 0")
#: Paid rows: charged, maybe, or in flight.
SQL_PAID = f"emulator = 0 AND (charge != '{Charge.NONE.value}' OR {SQL_PENDING})"
#: What :class:`Spend` sums apart, as :data:`_SPEND_SQL` does.
_KINDS = (f"charge = '{Charge.CHARGED.value}'", f"charge = '{Charge.MAYBE.value}'",
          SQL_PENDING)
#: ``SUM(...) FILTER (WHERE ...)`` (SQLite 3.30+, every PostgreSQL we support) skips the
#: rows a sum does not count; ``SUM(CASE ...)`` feeds it a NULL for each (about a quarter
#: of the budget query's time; the same totals either way).
_FILTER = sqlite3.sqlite_version_info >= (3, 30, 0)


def _counted_where(condition: str) -> str:
    """The sum of :data:`COUNTED_USD` over the rows meeting ``condition`` (0 for none)."""
    if _FILTER:
        return f"COALESCE(SUM({COUNTED_USD}) FILTER (WHERE {condition}), 0)"
    return f"COALESCE(SUM(CASE WHEN {condition} THEN {COUNTED_USD} END), 0)"


def utc_day_start(now: float) -> float:
    day = datetime.fromtimestamp(now, timezone.utc).replace(hour=0, minute=0, second=0,
                                                             microsecond=0)
    return day.timestamp()


def utc_month_start(now: float) -> float:
    month = datetime.fromtimestamp(now, timezone.utc).replace(day=1, hour=0, minute=0,
                                                               second=0, microsecond=0)
    return month.timestamp()


def read_spend(cur: Cursor, where: str = "", params: Sequence[Any] = ()) -> Spend:
    row = cur.execute(_SPEND_SQL + where, tuple(params)).fetchone()
    return Spend(round(float(row["charged"]), 2), round(float(row["maybe"]), 2),
                 round(float(row["pending"]), 2), int(row["n"]))


class CursorLedger:
    """A :class:`~sora_widgets.core.money.Ledger` over one open transaction's cursor.

    The first :meth:`spent` reads every scope in ``scopes`` (those with a cap) in one pass
    over the journal: three budget queries per claim, each walking the month's rows, were
    most of the submit step's cost. The totals are the same as :func:`read_spend`'s, per
    scope, from the same transaction."""

    def __init__(self, cur: Cursor, *, session: str, now: float,
                 scopes: Iterable[Scope] = tuple(Scope)) -> None:
        self._cur = cur
        self._session = session
        self._starts = {Scope.DAY: utc_day_start(now), Scope.TEAM: utc_month_start(now)}
        self._scopes = tuple(scopes)
        self._spent: dict[Scope, float] = {}

    def _filter(self, scope: Scope) -> tuple[str, tuple[Any, ...]]:
        if scope is Scope.SESSION:
            return "session = ?", (self._session,)
        return "created_at >= ?", (self._starts[scope],)

    def spent(self, scope: Scope) -> float:
        if scope not in self._spent:
            self._spent.update(self._read([s for s in self._scopes if s not in self._spent]
                                          if scope in self._scopes else [scope]))
        return self._spent[scope]

    def _read(self, scopes: Sequence[Scope]) -> dict[Scope, float]:
        columns, params = [], list[Any]()
        for i, scope in enumerate(scopes):
            where, args = self._filter(scope)
            for j, kind in enumerate(_KINDS):
                # The kind first: it is false for most rows, and AND stops there.
                columns.append(f"{_counted_where(f'{kind} AND {where}')} AS s{i}k{j}")
                params += args
        # The rows of any of the scopes: this session's, and (one range of the created_at
        # index) those since the earliest start asked for.
        any_of, starts = [], [self._starts[s] for s in scopes if s is not Scope.SESSION]
        if Scope.SESSION in scopes:
            any_of.append("session = ?")
            params.append(self._session)
        if starts:
            any_of.append("created_at >= ?")
            params.append(min(starts))
        row = self._cur.execute(f"SELECT {', '.join(columns)} FROM jobs WHERE emulator = 0"
                                f" AND ({' OR '.join(any_of)})", tuple(params)).fetchone()
        def usd(i: int, j: int) -> float:
            return round(float(row[f"s{i}k{j}"]), 2)

        return {scope: Spend(usd(i, 0), usd(i, 1), usd(i, 2), 0).worst_case_usd
                for i, scope in enumerate(scopes)}

    def spenders(self, scope: Scope) -> list[tuple[str, float]]:
        where, params = self._filter(scope)
        rows = self._cur.execute(
            f"SELECT COALESCE(user_name, '?') AS who, SUM({COUNTED_USD}) AS usd FROM jobs"
            f" WHERE {SQL_PAID} AND {where} GROUP BY COALESCE(user_name, '?')"
            " ORDER BY usd DESC LIMIT 5", params).fetchall()
        return [(str(row["who"]), float(row["usd"])) for row in rows]
