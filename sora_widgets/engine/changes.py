"""Listeners of every handle's transitions (a live History follows every job in the kernel).

One tuple for the process, copied on change and iterated unlocked, so following every job
costs a handle nothing (a callback per handle would: the footprint test counts them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

__all__ = ["on_every_change", "tell"]

log = logging.getLogger(__name__)

_listeners: tuple[Callable[[Any], None], ...] = ()


def on_every_change(listener: Callable[[Any], None]) -> Callable[[], None]:
    """Call ``listener(job)`` after each transition of any handle, from the engine's events
    thread (it must be quick and never block). Returns the function that unsubscribes."""
    global _listeners
    _listeners = (*_listeners, listener)

    def unsubscribe() -> None:
        global _listeners
        _listeners = tuple(f for f in _listeners if f is not listener)
    return unsubscribe


def tell(job: Any) -> None:
    """A handle changed: tell every listener (a failing one is logged, the others still run)."""
    for listener in _listeners:
        try:
            listener(job)
        except Exception:
            log.exception("a job-change listener failed on job %s", getattr(job, "local_id", "?"))
