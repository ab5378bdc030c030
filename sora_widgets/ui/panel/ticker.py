"""The panel's one-second ticker: elapsed time on the running takes and in the queue.

A daemon thread, started when a take runs and gone when none does (or on close); it only
sets traits, once a second for all running takes together.
"""

from __future__ import annotations

import threading

from sora_widgets.ui.panel.card import JobCard

__all__ = ["TICK_SECONDS", "Ticking"]

#: How often the elapsed time of running jobs is refreshed (a daemon thread, traits only).
TICK_SECONDS = 1.0


class Ticking:
    """Mixed into ``SoraWidget``: ``_ensure_ticker`` after a take is shown."""

    cards: list[JobCard]
    _lock: threading.RLock
    _stop: threading.Event
    _ticker: threading.Thread | None

    def _on_tick(self) -> None:
        """One second passed with takes running (the panel redraws them)."""
        raise NotImplementedError

    def _ensure_ticker(self) -> None:
        with self._lock:
            if self._ticker is None and self._running() and not self._stop.is_set():
                self._ticker = threading.Thread(target=self._tick, daemon=True,
                                                name="sora-widgets-ticker")
                self._ticker.start()

    def _running(self) -> list[JobCard]:
        return [c for c in self.cards if not c.job.done and c.job.tracking]

    def _tick(self) -> None:
        """Refresh elapsed time once a second; stop when every job is done (or on close)."""
        while not self._stop.wait(TICK_SECONDS):
            with self._lock:
                if not self._running():
                    self._ticker = None
                    return
            self._on_tick()
        with self._lock:
            self._ticker = None
