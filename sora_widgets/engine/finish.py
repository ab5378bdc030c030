"""The one condition every handle's "finished" flag is guarded by.

An Event per handle was six objects for the garbage collector to walk (Event, Condition,
lock, deque, two bound methods), and with thousands of handles every full collection
paused the kernel longer. Few threads ever wait, so waking them all on each change costs
nothing. Its own module so that the poller's fork handler (registered after this one)
finds it already renewed in a forked child.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["mark", "wait_for", "wait_with_hook"]

log = logging.getLogger("sora_widgets.engine.job")

_finished = threading.Condition(threading.Lock())


def wait_with_hook(job: Any, hook: Callable[[Any], Callable[[], None] | None] | None,
                   finished: Callable[[], bool], timeout: float | None) -> bool:
    """:func:`wait_for` ``finished``, with a UI's progress ``hook`` (``engine.job.wait_hook``)
    told first and its closer called after; a failing hook never breaks a wait."""
    done = None
    if hook is not None and not finished():
        try:
            done = hook(job)
        except Exception:
            log.exception("the wait() progress hook failed")
    try:
        return wait_for(finished, timeout)
    finally:
        if done is not None:
            try:
                done()
            except Exception:
                log.exception("the wait() progress hook failed")


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
