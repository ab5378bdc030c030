"""Totals of what was spent, read from the journal: the journal supplies them, the money
rules (:mod:`sora_widgets.core.money`) decide with them.

A paid row counts in every total at least :data:`~sora_widgets.core.money.MIN_CHARGE_USD`,
whatever price it carries: a teammate whose catalogue said $0 must not switch the team's
cap off. Each row counts at the price it was quoted (or billed) when it was written, never
at what the reader's own catalogue says now.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    """A :class:`~sora_widgets.core.money.Ledger` over one open transaction's cursor."""

    def __init__(self, cur: Cursor, *, session: str, now: float) -> None:
        self._cur = cur
        self._filters: dict[Scope, tuple[str, tuple[Any, ...]]] = {
            Scope.SESSION: (" AND session = ?", (session,)),
            Scope.DAY: (" AND created_at >= ?", (utc_day_start(now),)),
            Scope.TEAM: (" AND created_at >= ?", (utc_month_start(now),)),
        }

    def spent(self, scope: Scope) -> float:
        where, params = self._filters[scope]
        return read_spend(self._cur, where, params).worst_case_usd

    def spenders(self, scope: Scope) -> list[tuple[str, float]]:
        where, params = self._filters[scope]
        rows = self._cur.execute(
            f"SELECT COALESCE(user_name, '?') AS who, SUM({COUNTED_USD}) AS usd FROM jobs"
            f" WHERE {SQL_PAID}{where} GROUP BY COALESCE(user_name, '?') ORDER BY usd DESC"
            " LIMIT 5", params).fetchall()
        return [(str(row["who"]), float(row["usd"])) for row in rows]
