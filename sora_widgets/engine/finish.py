"""The one condition every handle's "finished" flag is guarded by.

An Event per handle was six objects for the garbage collector to walk (Event, Condition,
lock, deque, two bound methods), and with thousands of handles every full collection
paused the kernel longer. Few threads ever wait, so waking them all on each change costs
nothing. Its own module so that the poller's fork handler (registered after this one)
finds it already renewed in a forked child.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

__all__ = ["mark", "wait_for"]

_finished = threading.Condition(threading.Lock())


def wait_for(predicate: Callable[[], bool], timeout: float | None) -> bool:
    """Block until ``predicate()`` holds (re-checked on every change) or the timeout ends."""
    with _finished:
        return _finished.wait_for(predicate, timeout)


def mark(setter: Callable[[], None], *, wake: bool) -> None:
    """Run ``setter`` under the condition; wake every waiter when ``wake``."""
    with _finished:
        setter()
        if wake:
            _finished.notify_all()


def _renew_after_fork() -> None:
    global _finished
    _finished = threading.Condition(threading.Lock())


os.register_at_fork(after_in_child=_renew_after_fork)
