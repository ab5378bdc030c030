"""The phrasebook every UI formats: durations, sizes, countdowns, phases, money lines.

As tqdm's UIs all call one ``format_meter``, the HTML renderer, the panel and the CLI say
the same thing in the same words by calling these plain-text functions; each UI only adds
its markup (escaping, colour). Nothing here knows HTML, IPython or rich.
"""

from __future__ import annotations

__all__ = ["EMULATOR_BADGE", "REUSED_WORDS", "duration", "money", "page_line", "size", "status"]

#: Every output of a job on the embedded emulator says this (once per output).
EMULATOR_BADGE = "local emulator — no charge"
#: How every UI says that a job came from the cache.
REUSED_WORDS = "reused — no new charge"


def duration(seconds: float | None) -> str:
    """'42s', '1:05', '12:00': an elapsed time or a time left (empty when unknown)."""
    if seconds is None:
        return ""
    whole = max(0, round(seconds))
    return f"{whole // 60}:{whole % 60:02d}" if whole >= 60 else f"{whole}s"


def size(n_bytes: int) -> str:
    """'834 KB' / '1.2 MB': how much a file (or an embedded video) weighs."""
    if n_bytes >= 1024 * 1024:
        return f"{n_bytes / (1024 * 1024):.1f} MB"
    return f"{max(1, round(n_bytes / 1024))} KB"


def money(usd: float) -> str:
    """'$0.90': an amount of money, always two decimals."""
    return f"${usd:.2f}"


def status(value: str) -> str:
    """A relay status or phase as words: 'in_progress' → 'in progress'."""
    return str(value).replace("_", " ")


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
