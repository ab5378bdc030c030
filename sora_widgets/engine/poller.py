"""The one background poller: an asyncio loop on its own thread, whatever the number of jobs.

It does I/O and scheduling only: a heap of due times and one timer, a coroutine only while
a request is in flight (at most ``MAX_IN_FLIGHT``, of which ``MAX_SAVING`` downloads per
relay), one ``AsyncSoraClient`` per relay, one :class:`~sora_widgets.engine.track.Track`
per job. Each step (:mod:`sora_widgets.engine.steps`) decides a job's next state; the
poller queues it for the events thread (:mod:`sora_widgets.engine.persist`: journal, then
handle, then callbacks), so a slow observer or a slow disk never delays polling.

A second timer, independent of any poll falling due (issue 21 #4: a long poll hint once
let a live owner's lease lapse), renews the lease of the rows this process *owns* (never
those it only watches: issue 21 #3) and retries journal writes that failed, tracked or not.
A row another process took over while this one was frozen past its lease is followed
through the journal from then on, never polled or downloaded twice. A forked child never
adopts its parent's jobs; a poller restarted after its thread died re-sends only POSTs
that provably never started.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import functools
import heapq
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from sora_widgets.core.errors import ErrorKind, SoraError
from sora_widgets.core.lifecycle import UNKNOWN_OUTCOME, JobState, Phase, submit_charge
from sora_widgets.engine.backend import Backend
from sora_widgets.engine.events import EventsThread
from sora_widgets.engine.lease import Lease, logged
from sora_widgets.engine.persist import Transition, apply_all, retry_pending
from sora_widgets.engine.schedule import PollPolicy, PollSchedule
from sora_widgets.engine.steps import run_step
from sora_widgets.engine.track import Mode, Track
from sora_widgets.engine.warm import PriorBook
from sora_widgets.relay.client import MAY_BE_CHARGED, AsyncSoraClient

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job
    from sora_widgets.journal import Journal

__all__ = ["MAX_IN_FLIGHT", "MAX_SAVING", "Poller", "poller"]

log = logging.getLogger("sora_widgets.engine.job")

#: Requests in flight at once (httpcore's pool scan costs CPU per connection).
MAX_IN_FLIGHT = 32
#: Of those, video downloads from one relay at once: its slow links (a congested CDN, a
#: hostile relay) must not take every slot and hold up the polls, submits and downloads of
#: every other job and relay.
MAX_SAVING = 8


@functools.lru_cache(maxsize=16)
def _policy(scale: float) -> PollPolicy:
    """One schedule policy per time scale, shared by every job's schedule."""
    return PollPolicy(scale=scale)


class Poller:
    """The one background poller: a heap of due times, one timer, requests as they fall due.

    The thread-safe API is ``submit``, ``track``, ``fetch``, ``untrack``, ``tracked`` and
    ``stop``. ``emit``, ``push``, ``finish``, ``drop``, ``client``, ``schedule`` and
    ``events`` are the engine's own (the steps call them on the loop thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: EventsThread[Transition] | None = None
        self._tracked: dict[str, Job] = {}          # under _lock, by handle key (Job.key)
        self._entries: dict[str, Track] = {}         # loop thread only, by handle key
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._lease = Lease(lambda: [t.job for t in self._entries.values() if t.owned],
                            lambda: self._events, self._taken_over)
        self._clients: dict[Backend, AsyncSoraClient] = {}
        #: What each relay's jobs taught the schedule (loop thread; kept across restarts,
        #: and in the journal: a new kernel starts warm).
        self._priors = PriorBook(lambda: self._events)
        self._in_flight = 0                            # steps running (loop thread)
        self._saving: collections.Counter[Backend] = collections.Counter()  # downloads
        self._waiting_saves: dict[Backend, collections.deque[tuple[int, str]]] = {}

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    @property
    def events(self) -> EventsThread[Transition] | None:
        """The events thread (also the executor of the loop's blocking work)."""
        return self._events

    # -- thread-safe API --------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """POST the job's request from the poller thread, then track it."""
        self._add(job, Mode.SUBMIT)

    def track(self, job: Job) -> None:
        """Follow a job that is not settled. It starts by asking the journal who owns it:
        this process polls (or saves) its own jobs and those whose owner is gone; a job
        another live process works on is followed through the journal, never polled twice."""
        if not job.state.settled:
            self._add(job, Mode.WATCH)

    def fetch(self, job: Job) -> None:
        """Save a completed job's video that is not on this machine (a teammate's job):
        from a fresh link, never by generating it again."""
        self._add(job, Mode.SAVE, borrowed=True)

    def untrack(self, job: Job) -> None:
        """Stop following a job at once; a POST in flight is still answered and its task id
        recorded first (it is paid for), then tracking stops."""
        loop = self._loop
        key = job.key
        with self._lock:
            known = self._tracked.pop(key, None) is not None
        submitting = job.state.phase is Phase.SUBMITTING
        if not submitting or loop is None or not known:
            job.detach("tracking was cancelled")
        if loop is None or not known:
            return

        def stop() -> None:
            track = self._entries.get(key)
            if track is not None and track.busy and track.mode is Mode.SUBMIT:
                track.detach_after_submit = True       # its answer is paid for: record it
                return
            self._entries.pop(key, None)
            if track is not None and track.mode is Mode.SUBMIT and not track.post_started:
                # Cancelled before its POST left: settled, nothing sent, nothing charged.
                self.emit(job, track.state.evolve(
                    phase=Phase.SETTLED, error_type=ErrorKind.NOT_SENT.value,
                    error_message="cancelled before it was sent; nothing was charged"),
                    detach="")
            elif submitting:
                self.emit(job, None, detach="tracking was cancelled")

        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(stop)

    def tracked(self) -> list[Job]:
        with self._lock:
            return list(self._tracked.values())

    def records(self) -> dict[str, Track]:
        """A copy of the tracking records by handle key (diagnostics and tests: the
        records belong to the loop thread, so this is a glimpse, not a lock)."""
        return dict(self._entries)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def tracked_after_fork(self) -> list[Job]:
        """The handles it tracked, read without the lock (in a forked child only: the
        thread that held it at the fork does not exist there)."""
        return list(self._tracked.values())

    def stop(self, timeout: float = 5.0) -> None:
        """Let POSTs in flight finish (their ids are paid for), detach every other handle,
        try the pending journal writes once more, close the clients and end the threads."""
        with self._lock:
            loop, thread, events = self._loop, self._thread, self._events
            self._loop = self._thread = self._events = None
            jobs = list(self._tracked.values())
            self._tracked.clear()
        if loop is not None and thread is not None and thread.is_alive():
            done = threading.Event()

            async def shutdown() -> None:
                deadline = loop.time() + timeout
                while any(t.busy and t.mode is Mode.SUBMIT for t in self._entries.values()) \
                        and loop.time() < deadline:
                    await asyncio.sleep(0.01)
                self._heap.clear()         # nothing more starts (a finishing step re-arms)
                self._waiting_saves.clear()
                if self._timer is not None:
                    self._timer.cancel()
                self._lease.stop()
                self._priors.flush(events)  # written by the events thread before it ends
                tasks = [t for t in asyncio.all_tasks(loop) if t is not asyncio.current_task()]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                for client in self._clients.values():
                    await client.aclose()
                done.set()
                loop.stop()

            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: asyncio.ensure_future(shutdown()))
            done.wait(timeout + 2.0)
            thread.join(2.0)
        if events is not None:
            with contextlib.suppress(RuntimeError):
                events.submit(logged, retry_pending)   # a last try before exit
            events.shutdown(wait=True)
        self._entries.clear()
        self._heap.clear()
        self._clients.clear()
        self._timer = None
        self._lease.forget()
        for job in jobs:
            job.detach()

    # -- for the steps (loop thread) --------------------------------------------------------

    def emit(self, job: Job, state: JobState | None, *, persist: bool = True,
             detach: str | None = None, **extra: Any) -> None:
        """One transition, applied on the events thread: journal, then handle, then event."""
        events = self._events
        if events is not None:
            with contextlib.suppress(RuntimeError):
                events.post(Transition(job, state, persist, detach, extra))

    def push(self, track: Track, delay: float) -> None:
        """Schedule the record's next step."""
        self._seq += 1
        track.seq = self._seq
        due = asyncio.get_running_loop().time() + max(0.0, delay)
        heapq.heappush(self._heap, (due, self._seq, track.job.key))
        self._arm()

    def finish(self, track: Track, detach: str | None = None) -> None:
        """The record is done here: untracked, the handle told (detached with a reason)."""
        self.drop(track)
        self.emit(track.job, None, detach=detach or "")

    def drop(self, track: Track) -> None:
        """Forget the record (the caller tells the handle)."""
        key = track.job.key
        self._entries.pop(key, None)
        with self._lock:
            self._tracked.pop(key, None)

    def is_tracked(self, track: Track) -> bool:
        return self._entries.get(track.job.key) is track

    def client(self, backend: Backend) -> AsyncSoraClient:
        client = self._clients.get(backend)
        if client is None:
            client = self._clients[backend] = backend.async_client()
            client.io_executor = self._events      # no thread of asyncio's own
        return client

    def schedule(self, track: Track) -> PollSchedule:
        if track.schedule is None:
            backend = track.job.backend
            track.schedule = PollSchedule(_policy(backend.time_scale),
                                          self._priors.prior_for(track.job))
        return track.schedule

    # -- plumbing ---------------------------------------------------------------------------

    def _ensure_running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._thread is not None and self._thread.is_alive() and self._loop:
                return self._loop
            crashed = self._thread is not None
            old = self._entries                        # its loop thread is gone
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                try:
                    loop.run_forever()
                finally:
                    loop.close()

            self._loop = loop
            self._entries, self._heap, self._clients, self._timer = {}, [], {}, None
            self._lease.forget()
            self._in_flight = 0
            self._saving.clear()
            self._waiting_saves.clear()
            if self._events is None:
                self._events = EventsThread(apply_all, name="sora-widgets-events")
            self._thread = threading.Thread(target=run, name="sora-widgets-poller", daemon=True)
            self._thread.start()
            ready.wait()
            orphans = [(job, old.get(key)) for key, job in self._tracked.items()] \
                if crashed else []
        loop.call_soon_threadsafe(self._lease.start)
        for job, track in orphans:
            self._readopt(job, track is not None and track.post_started)
        return loop

    def _readopt(self, job: Job, post_started: bool) -> None:
        """After a crash of the poller thread: a POST that started may have been charged."""
        log.warning("poller restarted: re-adopting job %s", job.id or job.local_id)
        if job.state.phase is Phase.SUBMITTING and post_started:
            state = job.state.evolve(
                phase=Phase.SETTLED, error_type=UNKNOWN_OUTCOME,
                error_message=f"{MAY_BE_CHARGED} (the poller stopped during the submit)",
                charge=submit_charge(emulator=job.emulator, answered=False))
            self.emit(job, state)
            with self._lock:
                self._tracked.pop(job.key, None)
            return
        self._add(job, Mode.SUBMIT if job.state.phase is Phase.SUBMITTING else Mode.POLL,
                  readopt=True)

    def _add(self, job: Job, mode: Mode, *, readopt: bool = False,
             borrowed: bool = False) -> None:
        if job.owner_pid != os.getpid():
            raise SoraError("this job handle belongs to the parent process (it was forked); "
                            "use sw.jobs() or sw.resume() in this process")
        loop = self._ensure_running()
        key = job.key
        with self._lock:
            if key in self._tracked and not readopt:
                return
            self._tracked[key] = job
        job.mark_tracked()
        if mode in (Mode.SAVE, Mode.POLL):
            mode = Mode.SAVE if job.state.phase is Phase.SAVING else mode

        def start() -> None:
            if key in self._entries:
                return
            track = Track(job, job.state, mode, borrowed=borrowed)
            self._entries[key] = track
            self._priors.prior_for(job)       # read from the journal before the first poll
            self.push(track, 0.0)

        loop.call_soon_threadsafe(start)

    def _taken_over(self, journal: Journal, local_ids: list[str]) -> None:
        """(Events thread.) Rows another process took over: this one only watches them now,
        so two live processes never both poll or download one job."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._watch_instead, journal, set(local_ids))

    def _watch_instead(self, journal: Journal, local_ids: set[str]) -> None:
        for track in list(self._entries.values()):
            job = track.job
            if (track.owned and not track.busy and job.local_id in local_ids
                    and job.journal is journal):
                track.mode = Mode.WATCH
                self.push(track, 0.0)

    def _arm(self) -> None:
        """Wake up when the earliest step falls due. Not while every request slot is taken:
        the step that ends first re-arms, so a due job waits in the heap, not as a task."""
        if not self._heap or self._in_flight >= MAX_IN_FLIGHT:
            return
        first = self._heap[0][0]
        if self._timer is not None:
            if self._timer.when() <= first:
                return
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(first, self._fire)

    def _fire(self) -> None:
        """Start the steps that are due (up to the free request slots), then sleep until
        the next one (loop thread)."""
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        heap = self._heap
        while heap and heap[0][0] <= now and self._in_flight < MAX_IN_FLIGHT:
            _, seq, key = heapq.heappop(heap)
            track = self._entries.get(key)
            if track is None or track.seq != seq or track.busy:
                continue
            saving = track.job.backend if track.mode is Mode.SAVE else None
            if saving is not None:
                if self._saving[saving] >= MAX_SAVING:      # started when a save ends
                    self._waiting_saves.setdefault(saving, collections.deque()).append(
                        (seq, key))
                    continue
                self._saving[saving] += 1
            track.busy = True
            self._in_flight += 1
            track.task = loop.create_task(self._step(track, saving))
        self._arm()

    async def _step(self, track: Track, saving: Backend | None) -> None:
        try:
            await run_step(self, track)
        finally:
            track.busy, track.task = False, None
            self._in_flight -= 1
            if saving is not None:
                self._saving[saving] -= 1
                self._start_waiting_save(saving)
            self._arm()

    def _start_waiting_save(self, backend: Backend) -> None:
        waiting = self._waiting_saves.get(backend)
        while waiting:
            seq, key = waiting.popleft()
            track = self._entries.get(key)
            if track is not None and track.seq == seq and not track.busy:
                self.push(track, 0.0)
                return


_poller: Poller | None = None
_poller_lock = threading.Lock()


def poller() -> Poller:
    """The process-wide poller (started on first use, restarted if its thread died)."""
    global _poller
    with _poller_lock:
        if _poller is None:
            _poller = Poller()
            atexit.register(_stop_at_exit)
        return _poller


def _stop_at_exit() -> None:
    if _poller is not None:
        _poller.stop()


def _after_fork_in_child() -> None:
    """A forked child starts with no poller and adopts none of its parent's jobs: their
    POSTs are the parent's (re-sending one would pay twice). Handles it inherited are
    detached; ``sw.jobs()`` / ``sw.resume()`` give it its own."""
    global _poller, _poller_lock
    _poller_lock = threading.Lock()
    inherited = _poller
    _poller = None
    if inherited is not None:
        for job in inherited.tracked_after_fork():
            job.detach_inherited("this handle belongs to the parent process")


os.register_at_fork(after_in_child=_after_fork_in_child)
