"""Backoff with jitter and ``Retry-After`` parsing, shared by the client and the poller."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = ["Backoff", "parse_retry_after"]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(seconds, 3600.0))


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base*2**n)).

    ``scale=0`` is the test mode: no waiting at all (as stamina's test mode).
    """

    base: float = 0.5
    cap: float = 30.0
    scale: float = 1.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        ceiling = min(self.cap, self.base * (2 ** min(attempt, 30)))
        wait = random.uniform(ceiling / 2, ceiling) * self.scale
        if retry_after is not None:
            # The server's word is a floor, never shortened by jitter or by scale.
            wait = max(wait, retry_after)
        return wait
