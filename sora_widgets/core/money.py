"""Every money rule, pure: what a call costs, and whether it may be paid now.

A call is quoted from its requests' catalogue prices and the jobs it can reuse
(:func:`total`); :func:`decide` then checks the quote against the caps and the
confirmation threshold, reading what was spent from a :class:`Ledger` (the journal
supplies one inside its claim transaction, so the check and the reservation commit
together). A refusal is typed (:class:`Refusal`): ``quote.require()`` raises it as
``ConfirmationRequired`` or ``BudgetExceededError``. Its words name the settings, never a
UI's flag: each UI adds its own hint (``--yes``, a button).

Rules that once lost money (issue 21): a paid relay's price is never 0 (:func:`paid_price`
refuses it before anything is sent; only the emulator is free), and nothing rounds a charge
down to 0 (:func:`cents` rounds up to the cent).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Protocol

from sora_widgets.core.errors import BudgetExceededError, ConfirmationRequired, ValidationError
from sora_widgets.core.words import EMULATOR_BADGE

__all__ = [
    "MIN_CHARGE_USD",
    "Ledger",
    "Limits",
    "Quote",
    "Refusal",
    "Scope",
    "billed_differs",
    "billed_figure",
    "billing_text",
    "cents",
    "charged_price",
    "decide",
    "paid_price",
    "total",
]

#: The least a paid row counts for in any cap, whatever price it carries (a row written by
#: a client whose catalogue said $0 still counts).
MIN_CHARGE_USD = 0.01
_EPSILON = 1e-9


def cents(usd: float) -> float:
    """``usd`` in whole cents, rounded *up*: a positive price never becomes $0.00."""
    if usd <= 0:
        return 0.0
    return math.ceil(round(usd * 100, 6)) / 100


#: A billed figure further than this from the quote (a fraction of it) is flagged.
BILLED_TOLERANCE = 0.05
#: A billed figure above this is not believed (a garbled row must not book a fortune).
MAX_BILLED_USD = 10_000.0


def billed_figure(value: object) -> float | None:
    """A billed figure as stored or reported (a finite number of USD, 0 to 10,000), or None:
    a row is data, so anything else is read as not known (the quote then counts)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    usd = float(value)
    return usd if math.isfinite(usd) and 0 <= usd <= MAX_BILLED_USD else None


def charged_price(quoted_usd: float, billed_usd: float | None) -> float:
    """What a job counts for: the relay's billed figure once known, else the quote (the
    reservation made at submit settles to the bill)."""
    return billed_usd if billed_usd is not None else quoted_usd


def billed_differs(quoted_usd: float, billed_usd: float | None) -> bool:
    """The bill is more than 5 % away from the quote (flagged on the job and in the costs)."""
    if billed_usd is None:
        return False
    return abs(billed_usd - quoted_usd) > BILLED_TOLERANCE * max(quoted_usd, MIN_CHARGE_USD) \
        + _EPSILON


def billing_text(quoted_usd: float, billed_usd: float | None) -> str:
    """'quoted $0.80 · billed $0.84' (with a ⚠ and the difference past 5 %), or the quote."""
    if billed_usd is None:
        return f"quoted ${quoted_usd:.2f}"
    text = f"quoted ${quoted_usd:.2f} · billed ${billed_usd:.2f}"
    if billed_differs(quoted_usd, billed_usd):
        change = (billed_usd - quoted_usd) / max(quoted_usd, MIN_CHARGE_USD) * 100
        text += f" ⚠ {change:+.0f}% from the quote"
    return text


def paid_price(usd: float, *, emulator: bool, what: str = "this request") -> float:
    """The price of one job, refused when a paid relay would be sent it at $0 (a catalogue
    file or SORA_PRICE_USD of 0 once switched every budget off). The emulator is free."""
    if emulator:
        return usd
    if not math.isfinite(usd) or usd <= 0:
        raise ValidationError(
            f"price: {what} is priced ${usd:.2f}, but a paid relay never charges nothing: fix "
            "the catalogue (SORA_CATALOG, catalog.json) or SORA_PRICE_USD; nothing was sent",
            field="price")
    return usd


class Scope(str, Enum):
    """Who a cap counts: this session, everyone today (UTC), everyone this month (UTC)."""

    SESSION = "session"
    DAY = "day"
    TEAM = "team"

    def __str__(self) -> str:
        return str(self.value)


#: What each scope's cap is called and whose spending it counts (for messages).
_SCOPES = {
    Scope.SESSION: ("SORA_BUDGET_USD", "this session"),
    Scope.DAY: ("SORA_DAILY_BUDGET_USD", "today (UTC), everyone on this journal"),
    Scope.TEAM: ("SORA_TEAM_BUDGET_USD", "this month (UTC), everyone on this journal"),
}


@dataclass(frozen=True)
class Limits:
    """The caps one call is checked against (None: no such cap)."""

    session_usd: float | None = None
    daily_usd: float | None = None
    team_usd: float | None = None
    #: One call whose new charges of more than one job pass this needs confirmation.
    confirm_usd: float | None = None

    def cap(self, scope: Scope) -> float | None:
        return {Scope.SESSION: self.session_usd, Scope.DAY: self.daily_usd,
                Scope.TEAM: self.team_usd}[scope]


class Ledger(Protocol):
    """What was spent, per scope (worst case: charged, maybe, and submits in flight)."""

    def spent(self, scope: Scope) -> float: ...

    def spenders(self, scope: Scope) -> Sequence[tuple[str, float]]:
        """Who spent it, most first (asked only when a cap refuses)."""
        ...


@dataclass(frozen=True)
class Refusal:
    """Why a call may not be paid now: a confirmation (``scope`` None) or a cap."""

    message: str
    scope: Scope | None = None
    spent_usd: float = 0.0
    amount_usd: float = 0.0
    cap_usd: float = 0.0

    def error(self, quote: Quote) -> BudgetExceededError | ConfirmationRequired:
        """A fresh exception to raise (each raise gets its own traceback)."""
        if self.scope is None:
            return ConfirmationRequired(self.message, quote=quote)
        return BudgetExceededError(self.message, spent_usd=self.spent_usd,
                                   price_usd=self.amount_usd, budget_usd=self.cap_usd,
                                   scope=self.scope.value)


@dataclass(frozen=True)
class Quote:
    """What one call will pay, said before anything is sent, and why it may not."""

    new: int
    reused: int
    price_usd: float
    emulator: bool = False
    #: The new charges when prices differ within the call (None: new × price_usd).
    amount_usd: float | None = None
    #: Why the call would be refused now (a cap, a confirmation), or None.
    refusal: Refusal | None = field(default=None, compare=False)
    #: What the quote must also say (a model about to retire), each shown after the price.
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def blocked(self) -> str | None:
        """The refusal's words, or None (what a UI shows next to the quote)."""
        return self.refusal.message if self.refusal is not None else None

    def require(self) -> Quote:
        """This quote, or its refusal raised (``ConfirmationRequired``,
        ``BudgetExceededError``): the one way a caller turns a quote into a decision."""
        if self.refusal is not None:
            raise self.refusal.error(self)
        return self

    @property
    def new_usd(self) -> float:
        if self.emulator:
            return 0.0
        return self.amount_usd if self.amount_usd is not None else cents(
            self.new * self.price_usd)

    @property
    def text(self) -> str:
        """'6 new × $0.90 = $5.40 · 2 reused free' (the emulator: 'free')."""
        if self.emulator:
            paid = f"{self.new} new · {EMULATOR_BADGE}"
        elif self.new and abs(self.new_usd - self.new * self.price_usd) > 0.005:
            paid = f"{self.new} new = ${self.new_usd:.2f}"
        elif self.new:
            paid = f"{self.new} new × ${self.price_usd:.2f} = ${self.new_usd:.2f}"
        else:
            paid = "nothing new to pay"
        return paid + (f" · {self.reused} reused free" if self.reused else "") + "".join(
            f" · ⚠ {note}" for note in self.notes)


def total(items: Sequence[tuple[int, int, float]], *, emulator: bool) -> Quote:
    """The quote of a whole call from ``(asked, reused, price)`` per distinct request
    (prices may differ by model); no refusal yet (:func:`decide` adds it)."""
    new = [asked - reused for asked, reused, _ in items]
    amount = cents(sum(count * price for count, (_, _, price) in zip(new, items, strict=True)))
    return Quote(new=sum(new), reused=sum(reused for _, reused, _ in items),
                 price_usd=items[0][2] if items else 0.0, emulator=emulator,
                 amount_usd=amount)


def decide(quote: Quote, limits: Limits, ledger: Ledger) -> Quote:
    """``quote`` with its refusal, if any: the confirmation first, then every cap in
    order (session, day, team); the first one passed refuses. Nothing new, or the
    emulator: never refused."""
    if not quote.new or quote.emulator:
        return replace(quote, refusal=None)
    amount = quote.new_usd
    if limits.confirm_usd is not None and quote.new > 1 and (
            amount > limits.confirm_usd + _EPSILON):
        return replace(quote, refusal=Refusal(
            f"confirm: {quote.text} is more than SORA_CONFIRM_USD=${limits.confirm_usd:.2f} "
            "for one call; nothing was sent. Confirm the call to pay it."))
    for scope in Scope:
        cap = limits.cap(scope)
        if cap is None:
            continue
        spent = ledger.spent(scope)
        if spent + amount > cap + _EPSILON:
            return replace(quote, refusal=_over_cap(quote, scope, cap, spent, ledger))
    return replace(quote, refusal=None)


def _over_cap(quote: Quote, scope: Scope, cap: float, spent: float,
              ledger: Ledger) -> Refusal:
    name, who = _SCOPES[scope]
    by = ""
    if scope is not Scope.SESSION:
        parts = [f"{user} ${usd:.2f}" for user, usd in ledger.spenders(scope)]
        by = f" (spent by {', '.join(parts)})" if parts else ""
    left = max(0.0, cap - spent)
    return Refusal(
        f"budget: {quote.text} would pass the cap {name}=${cap:.2f}: ${spent:.2f} spent {who} "
        f"(charges of unknown outcome count), ${left:.2f} left{by}; nothing was sent.",
        scope=scope, spent_usd=spent, amount_usd=quote.new_usd, cap_usd=cap)
