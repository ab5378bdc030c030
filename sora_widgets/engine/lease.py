"""The poller's second timer: leases renewed and failed journal writes retried on a clock
of their own, never only when some poll falls due.

Issue 21 #4: with a long ``openai-poll-after-ms`` or ``Retry-After`` no poll fell due for
longer than the lease, the live owner's lease lapsed, and another host took the job over
(both polled, both downloaded). Issue 21 #3: a renewal covers the rows this process
*owns*, never those it only watches (it once kept a dead host's lease alive for ever),
and the first renewal of a fresh poller waits a full period, after its take-over checks.
Issue 21 #1: a pending journal write is retried whether or not its job is still tracked.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import TYPE_CHECKING

from sora_widgets.core import owner
from sora_widgets.engine.persist import pending_writes, retry_pending

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job
    from sora_widgets.journal import Journal

__all__ = ["HEARTBEAT_SECONDS", "RETRY_SECONDS", "Lease", "heartbeat_seconds"]

log = logging.getLogger("sora_widgets.engine.job")

#: The most time between two renewals of this process's leases (and a quarter of the
#: lease at most, so three renewals may fail before another host takes a row over).
HEARTBEAT_SECONDS = 30.0
#: How often a journal write that failed is tried again while one is pending.
RETRY_SECONDS = 1.0


def heartbeat_seconds() -> float:
    """The renewal period, read at each beat (a test or a team may shorten the lease)."""
    return max(0.05, min(HEARTBEAT_SECONDS, owner.LEASE_SECONDS / 4))


class Lease:
    """One timer on the poller's loop: renew ``owned()``'s rows, retry pending writes.

    ``owned`` lists the handles whose rows this process works on; ``executor`` runs the
    journal calls (the events thread: they queue behind the transitions); ``lost`` is
    called there with a journal and the ids of rows another process owns now (it took
    them over while this one was frozen longer than the lease)."""

    def __init__(self, owned: Callable[[], Iterable[Job]],
                 executor: Callable[[], Executor | None],
                 lost: Callable[[Journal, list[str]], None]) -> None:
        self._owned = owned
        self._executor = executor
        self._lost = lost
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self) -> None:
        """On the loop thread; the first renewal one full period from now."""
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._due = loop.time() + heartbeat_seconds()
            self._timer = loop.call_later(min(RETRY_SECONDS, heartbeat_seconds()), self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def forget(self) -> None:
        """The loop it ran on is gone (the poller's thread died)."""
        self._timer = None

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        period = heartbeat_seconds()
        if now >= self._due:
            self._due = now + period
            self.renew()
        if pending_writes():
            self._run(retry_pending)
        self._timer = loop.call_later(min(RETRY_SECONDS, period), self._tick)

    def renew(self) -> None:
        """Renew the lease on the rows this process owns, one call per journal."""
        by_journal: dict[int, tuple[Journal, list[str]]] = {}
        for job in self._owned():
            journal = job.journal
            by_journal.setdefault(id(journal), (journal, []))[1].append(job.local_id)
        for journal, ids in by_journal.values():
            self._run(functools.partial(self._renew_rows, journal, ids))

    def _renew_rows(self, journal: Journal, ids: list[str]) -> None:
        lost = journal.heartbeat(ids)
        if lost:
            log.warning("%d job(s) were taken over by another process while this one did "
                        "not renew its lease; following them through the journal", len(lost))
            self._lost(journal, lost)

    def _run(self, fn: Callable[[], object]) -> None:
        executor = self._executor()
        if executor is not None:
            with contextlib.suppress(RuntimeError):
                executor.submit(logged, fn)


def logged(fn: Callable[[], object]) -> None:
    """Run ``fn`` on the events thread; a failure is logged, never kills the thread."""
    try:
        fn()
    except Exception:
        log.exception("sora-widgets events thread: a step failed")
