"""The phrasebook every UI formats: durations, sizes, countdowns, phases, money lines.

As tqdm's UIs all call one ``format_meter``, the HTML renderer, the panel, the magic and the
CLI say the same thing in the same words by calling these plain-text functions; each UI
only adds its markup (escaping, colour, a bar). Nothing here knows HTML, IPython or rich,
and nothing here decides a money question: it words what the lifecycle says.

A job is read through :class:`JobFacts` (the public fields of ``sw.Job`` these words
need), so the core does not import the engine and tests may pass any object that has them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from sora_widgets.core.lifecycle import TERMINAL_ERROR_STATUSES, Charge, Status

__all__ = [
    "EMULATOR_BADGE",
    "ESTIMATING",
    "FINISHING",
    "REUSED_WORDS",
    "UNKNOWN_WORDS",
    "Countdown",
    "JobFacts",
    "duration",
    "money",
    "money_line",
    "page_line",
    "phase",
    "saving",
    "size",
    "status",
    "time_left",
]

#: Every output of a job on the embedded emulator says this (once per output).
EMULATOR_BADGE = "local emulator — no charge"
#: How every UI says that a job came from the cache.
REUSED_WORDS = "reused — no new charge"
#: A submit whose answer was lost (it may have been charged).
UNKNOWN_WORDS = "submit outcome unknown"
#: Time left before the engine has an estimate, and once the estimate has run out.
ESTIMATING = "estimating…"
FINISHING = "finishing…"


class JobFacts(Protocol):
    """What the words read of a job (``sw.Job`` has all of it)."""

    @property
    def status(self) -> str: ...
    @property
    def progress(self) -> float: ...
    @property
    def local_path(self) -> Path | None: ...
    @property
    def reused(self) -> bool: ...
    @property
    def emulator(self) -> bool: ...
    @property
    def charge(self) -> str: ...
    @property
    def price_usd(self) -> float: ...
    @property
    def cost_usd(self) -> float | None: ...


def duration(seconds: float | None) -> str:
    """'42s', '1:05', '12:00', '2:03:04': an elapsed time or a time left (empty when
    unknown). Whole seconds, rounded down, as a clock shows them (tqdm's format too)."""
    if seconds is None:
        return ""
    whole = max(0, int(seconds))
    if whole >= 3600:
        return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
    return f"{whole // 60}:{whole % 60:02d}" if whole >= 60 else f"{whole}s"


def size(n_bytes: int) -> str:
    """'834 KB' / '1.2 MB': how much a file (or an embedded video) weighs."""
    if n_bytes >= 1024 * 1024:
        return f"{n_bytes / (1024 * 1024):.1f} MB"
    return f"{max(1, round(n_bytes / 1024))} KB"


def money(usd: float | None) -> str:
    """'$0.90': an amount of money, always two decimals."""
    return f"${usd or 0.0:.2f}"


def status(value: str) -> str:
    """A relay status or phase as words: 'in_progress' → 'generating', 'unknown' → the
    submit-outcome words, anything else with its underscores as spaces."""
    if value == Status.IN_PROGRESS:
        return "generating"
    if value == Status.UNKNOWN:
        return UNKNOWN_WORDS
    return str(value).replace("_", " ")


def time_left(left: float | None) -> str:
    """'about 1:05 left', 'estimating…' (no estimate yet), 'finishing…' (it has run out)."""
    if left is None:
        return ESTIMATING
    if left < 1:
        return FINISHING
    return f"about {duration(left)} left"


def phase(job: JobFacts, elapsed: float | None, left: float | None) -> str:
    """What the job is doing now: 'generating 42% · 1:01 · about 1:15 left',
    'queued · 0s · estimating…', 'completed in 17s', 'failed after 3s'."""
    took = duration(elapsed)
    if job.status == Status.COMPLETED:
        return f"completed in {took}" + ("" if job.local_path else " · saving the video…")
    if job.status == Status.FAILED:
        return f"failed after {took}"
    if job.status in TERMINAL_ERROR_STATUSES:
        return status(job.status)
    if job.status == Status.SUBMITTING:
        return f"submitting… · {took}"
    if job.status == Status.QUEUED:
        return f"queued · {took} · {time_left(left)}"
    return f"{status(job.status)} {int(job.progress)}% · {took} · {time_left(left)}"


def saving(elapsed: float | None) -> str:
    """'saving the video… · 12s': a finished job whose file is still being written, said
    by a UI whose final line is the one that says "completed in" (the CLI's)."""
    return f"saving the video… · {duration(elapsed)}"


def money_line(job: JobFacts, *, reused: bool | None = None, badge: bool = True) -> str:
    """What the job cost, in words.

    ``reused``: the job came from the cache in the call being shown (default: the handle's
    ``cached`` flag) — every UI then says "reused — no new charge". ``badge=False``: the
    output says "local emulator — no charge" once elsewhere, so an emulator job says
    nothing here (the words once per output, not on every tile)."""
    if job.reused if reused is None else reused:
        if job.charge == Charge.MAYBE:
            return (f"{REUSED_WORDS} (its first submit may have been charged "
                    f"{money(job.price_usd)})")
        return REUSED_WORDS
    if job.emulator:
        return EMULATOR_BADGE if badge else ""
    if job.charge == Charge.MAYBE:
        return f"may have been charged {money(job.price_usd)}"
    if job.charge == Charge.CHARGED:
        return money(job.cost_usd)
    if job.status == Status.SUBMITTING:
        return f"{money(job.price_usd)} at submit"
    return "not charged"


def page_line(page: int, size: int, shown: int, *, more: bool, command: str) -> str:
    """Where a paged list is: 'jobs 21–40 · next: %sora jobs --page 3' (empty when one
    page holds everything). ``command`` has a ``{page}`` slot for the page to ask for."""
    if page == 1 and not more:
        return ""
    if shown == 0:
        return f"no jobs on page {page} · first page: {command.format(page=1)}"
    first = (page - 1) * size + 1
    parts = [f"jobs {first}–{first + shown - 1}"]
    if more:
        parts.append(f"next: {command.format(page=page + 1)}")
    if page > 1:
        parts.append(f"previous: {command.format(page=page - 1)}")
    return " · ".join(parts)


class _HasEta(Protocol):
    @property
    def eta_seconds(self) -> float | None: ...
    @property
    def local_id(self) -> str: ...


class Countdown:
    """Time left that keeps ticking between polls: the engine sets ``eta_seconds`` only
    when a poll lands, so a UI that redraws every second counts it down from when it was
    first seen. ``clock`` is injectable for unit testing (as tqdm's monitor's)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, float]] = {}

    def __call__(self, job: _HasEta, now: float | None = None) -> float | None:
        """Seconds left by the job's estimate at ``now`` (default: the clock); None while
        there is no estimate."""
        eta = job.eta_seconds
        with self._lock:
            if eta is None:
                self._seen.pop(job.local_id, None)
                return None
            now = self.clock() if now is None else now
            seen = self._seen.get(job.local_id)
            if seen is None or seen[0] != eta:
                self._seen[job.local_id] = (eta, now)
                return eta
        return max(0.0, eta - (now - seen[1]))

    def forget(self, job: _HasEta) -> None:
        """Drop a settled job's entry (a long-lived UI follows thousands of jobs)."""
        with self._lock:
            self._seen.pop(job.local_id, None)
