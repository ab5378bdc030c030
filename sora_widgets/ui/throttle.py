"""At most one call per interval, the last request never lost: the panel's progress updates.

A running job's progress moves many times a second on a fast relay; each change redrawn
on a card is a comm message to the browser. :class:`Throttle` runs its function at once
when it has not run for ``interval`` seconds, else once at the end of the interval (a
trailing run, so the final value always shows). One daemon thread serves every throttle,
sleeping on a condition until the next due run (like tqdm's monitor): no thread per card.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

__all__ = ["Throttle"]

log = logging.getLogger("sora_widgets.ui.throttle")


class Throttle:
    """``throttle()`` asks for a run of ``fn``; runs happen at most once per ``interval``.

    ``run_now()`` runs at once (an important change: a status, an error) and starts a new
    interval; ``cancel()`` drops a pending trailing run. ``interval <= 0`` runs every time.
    ``defer``: every run happens on the timer thread, never in the caller's.
    """

    def __init__(self, fn: Callable[[], None], interval: float = 1.0, *,
                 defer: bool = False) -> None:
        self._fn = fn
        self.interval = interval
        #: Never run in the caller's thread (the caller is the engine's events thread and
        #: ``fn`` reads the journal): every run is the timer thread's, at most one per
        #: interval, the first as soon as possible.
        self.defer = defer
        self._clock = time.monotonic
        self._lock = threading.Lock()
        self._last = -float("inf")
        self._pending = False
        self.runs = 0

    def __call__(self) -> None:
        with self._lock:
            wait = self._last + self.interval - self._clock()
            if wait > 0 or self.defer:
                if not self._pending:
                    self._pending = True
                    _timer().at(self._clock() + max(0.0, wait), self._trailing)
                return
            self._last = self._clock()
        self._run()

    def run_now(self) -> None:
        with self._lock:
            self._pending = False
            self._last = self._clock()
        self._run()

    def cancel(self) -> None:
        with self._lock:
            self._pending = False

    def ran(self) -> None:
        """Someone else just did what ``fn`` does (read the latest state and drew it): a
        new interval starts and a pending trailing run is dropped."""
        with self._lock:
            self._pending = False
            self._last = self._clock()

    def _trailing(self) -> None:
        with self._lock:
            if not self._pending:
                return
            self._pending = False
            self._last = self._clock()
        self._run()

    def _run(self) -> None:
        self.runs += 1
        try:
            self._fn()
        except Exception:
            log.exception("a throttled update failed")


class _Timer:
    """One daemon thread running callbacks at their due times (monotonic clock)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def at(self, due: float, fn: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._order), fn))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name="sora-widgets-throttle")
                self._thread.start()
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else 30.0
                    if not self._cond.wait(max(0.0, timeout)) and not self._heap:
                        self._thread = None     # idle: the next at() starts a new one
                        return
                _, _, fn = heapq.heappop(self._heap)
            try:
                fn()
            except Exception:
                log.exception("a throttled update failed")


_shared: _Timer | None = None
_shared_lock = threading.Lock()


def _timer() -> _Timer:
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = _Timer()
        return _shared
