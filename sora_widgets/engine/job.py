"""``Job``, a live handle on one video task, and the engine that drives every job.

Three threads, whatever the number of jobs:

* the caller's thread writes the intent (``Studio.submit``) and never waits on the relay;
* the **poller**: one asyncio loop doing I/O and scheduling only — a heap of due times
  and one timer, a coroutine only while a request is in flight, one ``AsyncSoraClient``
  per relay; it decides each job's next :class:`~sora_widgets.core.lifecycle.JobState`;
* the **events** thread applies each transition in order: journal first, then the
  handle's traits, then the job's change callbacks. So a slow observer (a card, the
  magic's live view) or a slow disk never delays polling, and a job's traits are written
  from that one thread (or under the job's lock by ``download()``).

Money rules here: a POST is sent once; a cancel during the POST keeps its answer (the task
id is recorded, then tracking stops); a journal write that fails after the POST keeps the
id in memory, logs it and retries; a forked child never adopts its parent's jobs; a
poller restarted after a crash re-sends only POSTs that provably never started.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import functools
import hashlib
import heapq
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from traitlets import Bool, Bunch, Float, HasTraits, Instance, Int, Unicode

from sora_widgets.core import errors, presenters
from sora_widgets.core.errors import (
    APIConnectionError,
    APIError,
    ErrorKind,
    JobFailed,
    NotFoundError,
    SoraError,
    SubmissionUnknown,
    ValidationError,
    kind_of,
)
from sora_widgets.core.lifecycle import (
    RELAY_FAILED,
    UNKNOWN_OUTCOME,
    Charge,
    JobState,
    Phase,
    RelayStatus,
    Status,
    state_for_status,
)
from sora_widgets.core.models import TaskSnapshot, VideoRequest
from sora_widgets.core.retry import Backoff
from sora_widgets.core.settings import APIKey
from sora_widgets.engine.events import EventsThread
from sora_widgets.engine.schedule import PollPolicy, PollSchedule, RelayPrior
from sora_widgets.journal import Journal
from sora_widgets.relay.client import (
    MAY_BE_CHARGED,
    AsyncSoraClient,
    SoraClient,
    is_transient,
    retry_after_of,
)

__all__ = ["Backend", "Job", "Poller", "poller", "video_file_name"]

log = logging.getLogger("sora_widgets.engine.job")

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
#: A definite refusal (401/403/404) of a paid job: keep asking, slowly.
REFUSED_CAP = 30.0
HEARTBEAT_SECONDS = 30.0
#: Requests in flight at once (httpcore's pool scan costs CPU per connection).
MAX_IN_FLIGHT = 32
#: Of those, video downloads from one relay at once: its slow links (a congested CDN, a
#: hostile relay) must not take every slot and hold up the polls, submits and downloads of
#: every other job and relay.
MAX_SAVING = 8
_NO_STATE = JobState()

#: A UI may show progress while ``Job.wait()`` blocks its caller (the magic sets one in
#: a notebook): called on the caller's thread with the job, it returns what to call when
#: the wait ends, or None. The core never imports a UI; a failing hook never breaks a wait.
wait_hook: Callable[[Job], Callable[[], None] | None] | None = None


#: Every handle's "finished" flag is guarded by this one condition: an Event per handle
#: was six objects for the garbage collector to walk (Event, Condition, lock, deque, two
#: bound methods), and with thousands of handles every full collection paused the kernel
#: longer. Few threads ever wait, so waking them all on each change costs nothing.
_finished = threading.Condition(threading.Lock())


def _wait_with_hook(job: Job, timeout: float | None) -> bool:
    hook, done = wait_hook, None
    if hook is not None and not job.finished:
        try:
            done = hook(job)
        except Exception:
            log.exception("the wait() progress hook failed")
    try:
        with _finished:
            return _finished.wait_for(lambda: job._is_finished, timeout)
    finally:
        if done is not None:
            try:
                done()
            except Exception:
                log.exception("the wait() progress hook failed")


@functools.lru_cache(maxsize=16)
def _policy(scale: float) -> PollPolicy:
    """One schedule policy per time scale, shared by every job's schedule."""
    return PollPolicy(scale=scale)


def poster_of(video: Path) -> Path:
    """Where a saved video's poster still lives (``frames.poster`` writes it there)."""
    return video.with_name(video.stem + ".poster.jpg")


def video_file_name(task_id: str) -> str:
    """An injective file name for a task id: a readable safe part plus a short hash
    (``clip:1`` and ``clip/1`` once mapped to one file, and one paid video overwrote the other)."""
    digest = hashlib.sha256(task_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{_SAFE.sub('_', task_id)[:80]}-{digest}.mp4"


@dataclass(frozen=True)
class Backend:
    """Where a job runs. The key is kept here, never in a trait, the journal or a repr."""

    base_url: str
    key: APIKey | None = field(default=None, repr=False)
    emulator: bool = False
    time_scale: float = 1.0
    timeout: float = 30.0
    download_timeout: float = 600.0
    max_video_bytes: int = 256 * 1024 * 1024
    #: The relay's wire style ("artifex" | "openai"): its clients speak it.
    style: str = "artifex"

    @property
    def journal_name(self) -> str:
        """How the journal names the backend (stable across restarts of the emulator)."""
        return "emulator" if self.emulator else self.base_url

    def _client_args(self) -> dict[str, Any]:
        return {"timeout": httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)),
                "warn_cleartext": False,       # Studio warned on the caller's thread
                "download_timeout": self.download_timeout,
                "max_video_bytes": self.max_video_bytes, "style": self.style}

    def async_client(self) -> AsyncSoraClient:
        return AsyncSoraClient(self.key, self.base_url, **self._client_args(),
                               backoff=Backoff(base=0.5 * self.time_scale,
                                               cap=30 * self.time_scale))

    def sync_client(self) -> SoraClient:
        return SoraClient(self.key, self.base_url, **self._client_args())


class Job(HasTraits):
    """A video job: observable state (traitlets), ``wait()``, ``download()``, ``cancel()``.

    Its traits mirror the journal (written by the engine's events thread); ``status``,
    ``charge`` and ``cost_usd`` are derived by :mod:`sora_widgets.core.lifecycle`.
    """

    local_id = Unicode()
    id = Unicode(None, allow_none=True)
    status = Unicode(Status.SUBMITTING.value)
    #: What this package still has to do: submitting, polling, saving, settled, detached.
    phase = Unicode(Phase.SUBMITTING.value)
    #: The relay's own last status word (kept even when it is not one we know).
    relay_status = Unicode(None, allow_none=True)
    progress = Int(0)
    video_url = Unicode(None, allow_none=True)
    error = Unicode(None, allow_none=True)
    error_code = Unicode(None, allow_none=True)
    #: What this job cost: the price once the relay accepted it ("maybe" counts).
    cost_usd = Float(0.0)
    price_usd = Float(0.0)
    charge = Unicode(Charge.NONE.value)
    local_path = Instance(Path, allow_none=True)
    poster_path = Instance(Path, allow_none=True)
    created_at = Float(0.0)
    completed_at = Float(None, allow_none=True)
    #: Predicted seconds until the relay finishes (None until there is evidence).
    eta_seconds = Float(None, allow_none=True)
    #: The last transient polling problem ("reconnecting…"), cleared on the next success.
    poll_error = Unicode(None, allow_none=True)
    download_error = Unicode(None, allow_none=True)
    #: Something the user must know that is not an error (a relay word we don't know, a
    #: journal write that failed, a key that is not set for this job's relay).
    notice = Unicode(None, allow_none=True)
    emulator = Bool(False)
    #: True when this handle came from the cache: showing it cost nothing.
    cached = Bool(False)
    tracking = Bool(False)
    parent_id = Unicode(None, allow_none=True)
    starred = Bool(False)
    note = Unicode("")

    _loading = True          # while the constructor sets traits: nothing to persist yet

    def __init__(self, request: VideoRequest, backend: Backend, journal: Journal,
                 videos_dir: Path, *, state: JobState | None = None, **traits: Any) -> None:
        super().__init__(**traits)
        self.request = request
        self._backend = backend
        self._journal = journal
        self._videos_dir = videos_dir
        self._lock = threading.RLock()
        self._is_finished = False                 # under _finished (see ``finished``)
        self._callbacks: tuple[Callable[[dict[str, Any]], None], ...] = ()
        self._state = _NO_STATE
        self._unsaved: JobState | None = None     # a transition the journal refused, retried
        self._unsaved_from = _NO_STATE            # ... and what the journal holds meanwhile
        self._post_started = False
        self._detached = False
        self._studio: Any = None       # set by the Studio that made the handle
        #: The poller's key: per handle, since two Studios may hold handles of one job.
        self._key = f"{self.local_id}#{id(self):x}"
        self._owner_pid = os.getpid()
        self._loading = True
        self.emulator = backend.emulator
        if state is None and "status" in traits:     # a handle built for display
            state = _state_from_traits(traits)
        self._show(state or _NO_STATE)
        self._loading = False

    @classmethod
    def from_record(cls, record: Any, backend: Backend, journal: Journal,
                    videos_dir: Path) -> Job:
        return cls(record.video_request, backend, journal, videos_dir, state=record.state,
                   local_id=record.local_id, price_usd=record.price_usd,
                   created_at=record.created_at, parent_id=record.parent_id,
                   starred=record.starred, note=record.note or "")

    # -- derived ----------------------------------------------------------------------------

    @property
    def prompt(self) -> str | None:
        return self.request.prompt

    @property
    def aspect_ratio(self) -> str:
        return self.request.aspect_ratio

    @property
    def state(self) -> JobState:
        return self._state

    @property
    def done(self) -> bool:
        """The relay will do nothing more (completed, failed, rejected, outcome unknown)."""
        return self._state.done

    @property
    def needs_relay(self) -> bool:
        """Still running, or finished with its video not saved yet."""
        return self._state.needs_relay

    @property
    def settled(self) -> bool:
        """Nothing left to do for it: final, and a completed video saved."""
        return self._state.settled

    @property
    def finished(self) -> bool:
        """Nothing more will happen to this handle here: settled, or no longer tracked
        (the journal keeps whatever it still needs for ``resume()``)."""
        return self._is_finished

    @property
    def elapsed(self) -> float:
        end = self.completed_at if self.completed_at else time.time()
        return max(0.0, end - self.created_at)

    def on_change(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback({"owner": job, "name": "state", ...})`` once per transition
        (from the engine's events thread)."""
        self._callbacks = (*self._callbacks, callback)     # copied: iterated unlocked

    # -- marks (persisted at once) ----------------------------------------------------------

    def star(self, on: bool = True) -> Job:
        self.starred = bool(on)
        return self

    def notify_change(self, change: Bunch) -> None:
        """Persist the marks (``starred``, ``note``) at once, then notify as usual.
        (Here rather than ``@observe``: that puts four objects per handle in the
        collector's way, and a process may hold thousands of handles.)"""
        name = change["name"]
        if name in ("starred", "note") and not self._loading:
            value = change["new"]
            self._journal.update(self.local_id,
                                 **{name: int(value) if name == "starred" else value})
        super().notify_change(change)

    # -- waiting and files ------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> Job:
        """Block until the job is final (and its video saved); raise if it did not succeed.

        A rejected submit raises its own class (403: ``PermissionDeniedError``...), a job
        the relay failed ``JobFailed``, a lost submit answer ``SubmissionUnknown``."""
        if not _wait_with_hook(self, timeout):
            raise TimeoutError(
                f"job {self.id or self.local_id} not finished after {timeout} s "
                f"(status {self.status}); it keeps running: call wait() again")
        state = self._state
        if not state.done:
            raise SoraError(f"job {self.id or self.local_id} is no longer tracked here "
                            f"({self.notice or 'tracking was cancelled'}); sw.resume() "
                            "picks it up again")
        if state.error_type == UNKNOWN_OUTCOME:
            raise SubmissionUnknown(self.error or "the submit's outcome is unknown",
                                    local_id=self.local_id)
        if state.error_type == RELAY_FAILED:
            raise JobFailed(self.error or "the job failed", job_id=self.id,
                            code=self.error_code)
        if state.error_type is not None:
            raise _rejection(state)
        return self

    def download(self, path: str | Path | None = None) -> Path:
        """The video on disk: the saved copy, or fetched now (a fresh link if it expired)."""
        if self.status != Status.COMPLETED:
            raise SoraError(f"job {self.id or self.local_id} is {self.status}, not completed")
        if self.local_path is None or not self.local_path.is_file():
            assert self.id is not None
            target = self._video_target()
            with self._backend.sync_client() as client:
                fresh = client.retrieve(self.id)
                url = fresh.extra.get("fetch_url") or fresh.video_url
                if not url:
                    raise NotFoundError("the relay gave no video link", status_code=404)
                client.download(url, target)
            state = self._state.evolve(phase=Phase.SETTLED, local_path=str(target))
            self._journal.save_state(self.local_id, state, self._state)
            with self._lock:
                self.download_error = None
                self._show(state)
        assert self.local_path is not None
        if path is None:
            return self.local_path
        destination = Path(path)
        if destination.is_dir():
            destination = destination / self.local_path.name
        shutil.copyfile(self.local_path, destination)
        return destination

    def _video_target(self) -> Path:
        return self._videos_dir / video_file_name(self.id or self.local_id)

    def continue_with(self, prompt: str, **kwargs: Any) -> Job:
        """A new job whose first frame is this clip's last frame (a story, shot by shot).

        The parent is recorded (``parent_id``); see ``Studio.continue_from`` for options."""
        if self._studio is None:
            raise SoraError("this job handle has no studio: get it from sw.jobs() or sw.generate()")
        job: Job = self._studio.continue_from(self, prompt, **kwargs)
        return job

    def cancel(self) -> None:
        """Stop tracking locally (the relay cannot cancel; a paid job keeps running there).

        During the POST, its answer is still recorded (the task id is paid for), then
        tracking stops; ``sw.resume()`` picks the job up again."""
        poller().untrack(self)

    # -- display ----------------------------------------------------------------------------

    def __repr__(self) -> str:
        prompt = (self.prompt or "")[:40]
        where = " emulator" if self.emulator else ""
        return (f"<Job {self.id or self.local_id[:8]} {self.status} {self.progress}%"
                f"{where} {prompt!r}>")

    def _repr_html_(self) -> str | None:
        return presenters.html("job", self)     # drawn by the UI, which registers itself

    # -- state (engine's events thread, or the caller under the lock) -----------------------

    def _show(self, state: JobState, **extra: Any) -> None:
        """Mirror a state the journal already has on the traits (only those that change),
        then tell observers once."""
        with self._lock:
            before = self._state
            self._state = state
            unfinished = state.needs_relay or state.phase is Phase.SUBMITTING
            values: dict[str, Any] = {
                "id": state.task_id,
                "phase": (Phase.DETACHED if self._detached and unfinished else state.phase).value,
                "relay_status": state.relay_word or (
                    state.relay_status.value if state.relay_status else None),
                "progress": 100 if state.relay_status is RelayStatus.COMPLETED
                else state.progress,
                "video_url": state.video_url, "error": state.error_message,
                "error_code": state.error_code, "charge": state.charge.value,
                "cost_usd": state.cost(self.price_usd), "completed_at": state.completed_at,
                **extra,
            }
            if (state.local_path != before.local_path or self._loading
                    or (state.local_path is not None and self.local_path is None)):
                path = Path(state.local_path) if state.local_path else None
                saved = path if path is not None and path.is_file() else None
                poster = poster_of(saved) if saved is not None else None
                values["local_path"] = saved
                values["poster_path"] = poster if poster and poster.is_file() else None
            values["status"] = state.status.value       # last: observers see a whole state
            changed = {name: value for name, value in values.items()
                       if getattr(self, name) != value}
            if len(changed) > 1:
                with self.hold_trait_notifications():
                    for name, value in changed.items():
                        setattr(self, name, value)
            else:
                for name, value in changed.items():
                    setattr(self, name, value)
        if state.settled:
            self._set_finished(True)
        if not self._loading:
            event = {"owner": self, "name": "state", "new": state}
            for callback in self._callbacks:
                try:
                    callback(event)
                except Exception:
                    log.exception("a change callback of job %s failed", self.local_id)

    def _unsaved_base(self) -> JobState:
        """What the journal holds for this job: the last state written (the handle's,
        unless a write failed and is still pending)."""
        return self._unsaved_from if self._unsaved is not None else self._state

    def _detach(self, reason: str | None = None) -> None:
        """This process stops tracking the job; the journal keeps what it needs."""
        with self._lock, self.hold_trait_notifications():
            self.tracking = False
            self._detached = True
            if not self._state.settled:
                self.phase = Phase.DETACHED.value
            if reason:
                self.notice = reason
        self._set_finished(True)

    def _set_finished(self, finished: bool) -> None:
        with _finished:
            self._is_finished = finished
            if finished:
                _finished.notify_all()


_STATE_TRAITS = {"id": "task_id", "progress": "progress", "video_url": "video_url",
                 "error": "error_message", "error_code": "error_code",
                 "completed_at": "completed_at"}


def _state_from_traits(traits: dict[str, Any]) -> JobState:
    """The state that a handle's status traits describe (``Job(..., status="failed")``)."""
    fields = {name: traits[trait] for trait, name in _STATE_TRAITS.items() if trait in traits}
    state = state_for_status(str(traits["status"]), task_id=fields.pop("task_id", None),
                             error_code=fields.pop("error_code", None),
                             local_path=str(traits["local_path"]) if traits.get(
                                 "local_path") else None, **fields)
    return state.evolve(charge=Charge(traits.get("charge", Charge.NONE)))


def _rejection(state: JobState) -> SoraError:
    """The exception a rejected submit raises from ``wait()``: the class of its kind."""
    return errors.error_of(state.error_type, state.error_message or
                           "the relay rejected the submit", code=state.error_code)


def apply_snapshot(state: JobState, snapshot: TaskSnapshot) -> JobState:
    """The state after a relay answer. An unrecognised word is kept raw, never mapped."""
    relay = snapshot.relay_status
    changes: dict[str, Any] = {"relay_word": snapshot.status}
    if snapshot.progress is not None:
        changes["progress"] = snapshot.progress
    if snapshot.video_url:
        changes["video_url"] = snapshot.video_url
    if snapshot.error is not None:
        changes["error_message"] = snapshot.error.message
        changes["error_code"] = snapshot.error.code
    if relay is not None:
        changes["relay_status"] = relay
    if relay in (RelayStatus.COMPLETED, RelayStatus.FAILED) and state.completed_at is None:
        changes["completed_at"] = snapshot.completed_at or time.time()
    if relay is RelayStatus.COMPLETED:
        changes["phase"] = Phase.SETTLED if state.local_path else Phase.SAVING
        changes["progress"] = 100
    elif relay is RelayStatus.FAILED:
        changes["phase"] = Phase.SETTLED
        changes["error_type"] = RELAY_FAILED
        changes.setdefault("error_message", "the relay reported a failure without a message")
    return state.evolve(**changes)


_RELAY_WORDS = "not a status this package knows"


def _unrecognised(snapshot: TaskSnapshot) -> str | None:
    if snapshot.relay_status is None:
        word = snapshot.status or "(no status)"
        return f"the relay says {word[:40]!r}, {_RELAY_WORDS}; still polling"
    return None


@dataclass(eq=False)
class _Entry:
    """The poller's view of one tracked job (loop thread only)."""

    job: Job
    state: JobState
    mode: str                       # submit | poll | save | watch
    schedule: PollSchedule | None = None
    seq: int = 0
    busy: bool = False
    #: The running step (held here: the event loop keeps only a weak reference).
    task: asyncio.Task[None] | None = None
    failures: int = 0
    last_error: BaseException | None = None
    hint: float | None = None
    detach_after_submit: bool = False
    fetch_url: str | None = None
    expires_at: float | None = None     # when fetch_url stops working (relay's expires_at)
    last_progress: int | None = None    # as the relay sent it (None: it sent none)
    save_attempts: int = 0
    refusals: int = 0


class Poller:
    """The one background poller: a heap of due times, one timer, requests as they fall due."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: EventsThread[_Transition] | None = None
        self._tracked: dict[str, Job] = {}          # under _lock, by handle key (Job._key)
        self._entries: dict[str, _Entry] = {}        # loop thread only, by handle key
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._clients: dict[Backend, AsyncSoraClient] = {}
        #: What each relay's jobs taught the schedule (loop thread; kept across restarts).
        self._priors: dict[str, RelayPrior] = {}
        self._in_flight = 0                            # steps running (loop thread)
        self._saving: collections.Counter[Backend] = collections.Counter()  # downloads
        self._waiting_saves: dict[Backend, collections.deque[tuple[int, str]]] = {}
        self._heartbeat_due = 0.0

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    # -- thread-safe API --------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """POST the job's request from the poller thread, then track it."""
        self._add(job, "submit")

    def track(self, job: Job) -> None:
        """Follow a job that is not settled. It starts by asking the journal who owns it:
        this process polls (or saves) its own jobs and those whose owner is gone; a job
        another live process works on is followed through the journal, never polled twice."""
        if not job.state.settled:
            self._add(job, "watch")

    def fetch(self, job: Job) -> None:
        """Save a completed job's video that is not on this machine (a teammate's job):
        from a fresh link, never by generating it again."""
        self._add(job, "save")

    def untrack(self, job: Job) -> None:
        """Stop following a job at once; a POST in flight is still answered and its task id
        recorded first (it is paid for), then tracking stops."""
        loop = self._loop
        with self._lock:
            known = self._tracked.pop(job._key, None) is not None
        submitting = job.state.phase is Phase.SUBMITTING
        if not submitting or loop is None or not known:
            job._detach("tracking was cancelled")
        if loop is None or not known:
            return

        def stop() -> None:
            entry = self._entries.get(job._key)
            if entry is not None and entry.busy and entry.mode == "submit":
                entry.detach_after_submit = True       # its answer is paid for: record it
                return
            self._entries.pop(job._key, None)
            if entry is not None and entry.mode == "submit" and not job._post_started:
                # Cancelled before its POST left: settled, nothing sent, nothing charged.
                self._emit(job, entry.state.evolve(
                    phase=Phase.SETTLED, error_type=ErrorKind.NOT_SENT.value,
                    error_message="cancelled before it was sent; nothing was charged"),
                    detach="")
            elif submitting:
                self._emit(job, None, detach="tracking was cancelled")

        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(stop)

    def tracked(self) -> list[Job]:
        with self._lock:
            return list(self._tracked.values())

    def stop(self, timeout: float = 5.0) -> None:
        """Let POSTs in flight finish (their ids are paid for), detach every other handle,
        close the clients and end the threads."""
        with self._lock:
            loop, thread, events = self._loop, self._thread, self._events
            self._loop = self._thread = self._events = None
            jobs = list(self._tracked.values())
            self._tracked.clear()
        if loop is not None and thread is not None and thread.is_alive():
            done = threading.Event()

            async def shutdown() -> None:
                deadline = loop.time() + timeout
                while any(e.busy and e.mode == "submit" for e in self._entries.values()) \
                        and loop.time() < deadline:
                    await asyncio.sleep(0.01)
                self._heap.clear()         # nothing more starts (a finishing step re-arms)
                self._waiting_saves.clear()
                if self._timer is not None:
                    self._timer.cancel()
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
            events.shutdown(wait=True)
        self._entries.clear()
        self._heap.clear()
        self._clients.clear()
        self._timer = None
        for job in jobs:
            job._detach()

    # -- plumbing ---------------------------------------------------------------------------

    def _ensure_running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._thread is not None and self._thread.is_alive() and self._loop:
                return self._loop
            crashed = self._thread is not None
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
            self._in_flight = 0
            self._saving.clear()
            self._waiting_saves.clear()
            if self._events is None:
                self._events = EventsThread(_apply_all, name="sora-widgets-events")
            self._thread = threading.Thread(target=run, name="sora-widgets-poller", daemon=True)
            self._thread.start()
            ready.wait()
            orphans = list(self._tracked.values()) if crashed else []
        for job in orphans:
            self._readopt(job)
        return loop

    def _readopt(self, job: Job) -> None:
        """After a crash of the poller thread: a POST that started may have been charged."""
        log.warning("poller restarted: re-adopting job %s", job.id or job.local_id)
        if job.state.phase is Phase.SUBMITTING and job._post_started:
            state = job.state.evolve(
                phase=Phase.SETTLED, error_type=UNKNOWN_OUTCOME,
                error_message=f"{MAY_BE_CHARGED} (the poller stopped during the submit)",
                charge=Charge.NONE if job.emulator else Charge.MAYBE)
            self._emit(job, state)
            with self._lock:
                self._tracked.pop(job._key, None)
            return
        self._add(job, "submit" if job.state.phase is Phase.SUBMITTING else "poll",
                  readopt=True)

    def _add(self, job: Job, mode: str, *, readopt: bool = False) -> None:
        if job._owner_pid != os.getpid():
            raise SoraError("this job handle belongs to the parent process (it was forked); "
                            "use sw.jobs() or sw.resume() in this process")
        loop = self._ensure_running()
        with self._lock:
            if job._key in self._tracked and not readopt:
                return
            self._tracked[job._key] = job
        with job._lock:
            job.tracking = True
            job._detached = False
            if job.phase == Phase.DETACHED:
                job.phase = job.state.phase.value
            job._set_finished(False)
        if mode == "save" or mode == "poll":
            mode = "save" if job.state.phase is Phase.SAVING else mode

        def start() -> None:
            if job._key in self._entries:
                return
            entry = _Entry(job, job.state, mode)
            self._entries[job._key] = entry
            self._push(entry, 0.0)

        loop.call_soon_threadsafe(start)

    def _push(self, entry: _Entry, delay: float) -> None:
        """Schedule the entry's next step (loop thread)."""
        self._seq += 1
        entry.seq = self._seq
        due = asyncio.get_running_loop().time() + max(0.0, delay)
        heapq.heappush(self._heap, (due, self._seq, entry.job._key))
        self._arm()

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
            entry = self._entries.get(key)
            if entry is None or entry.seq != seq or entry.busy:
                continue
            saving = entry.job._backend if entry.mode == "save" else None
            if saving is not None:
                if self._saving[saving] >= MAX_SAVING:      # started when a save ends
                    self._waiting_saves.setdefault(saving, collections.deque()).append(
                        (seq, key))
                    continue
                self._saving[saving] += 1
            entry.busy = True
            self._in_flight += 1
            entry.task = loop.create_task(self._step(entry, saving))
        if now >= self._heartbeat_due:
            self._heartbeat_due = now + HEARTBEAT_SECONDS
            self._heartbeat()
        self._arm()

    def _heartbeat(self) -> None:
        """Renew the lease on tracked rows (another host judges our rows by it), and retry
        journal writes that failed."""
        by_journal: dict[int, tuple[Journal, list[str]]] = {}
        retry: list[Job] = []
        for entry in self._entries.values():
            job = entry.job
            by_journal.setdefault(id(job._journal), (job._journal, []))[1].append(job.local_id)
            if job._unsaved is not None:
                retry.append(job)
        for journal, ids in by_journal.values():
            self._run_events(functools.partial(journal.heartbeat, ids))
        for job in retry:
            self._run_events(functools.partial(_retry_unsaved, job))

    def _run_events(self, fn: Callable[[], object]) -> None:
        events = self._events
        if events is not None:
            with contextlib.suppress(RuntimeError):
                events.submit(_logged, fn)

    def _emit(self, job: Job, state: JobState | None, *, persist: bool = True,
              detach: str | None = None, **extra: Any) -> None:
        """One transition, applied on the events thread: journal, then handle, then event."""
        events = self._events
        if events is not None:
            with contextlib.suppress(RuntimeError):
                events.post(_Transition(job, state, persist, detach, extra))

    def _client(self, backend: Backend) -> AsyncSoraClient:
        client = self._clients.get(backend)
        if client is None:
            client = self._clients[backend] = backend.async_client()
            client.io_executor = self._events      # no thread of asyncio's own
        return client

    def _finish(self, entry: _Entry, detach: str | None = None) -> None:
        self._entries.pop(entry.job._key, None)
        with self._lock:
            self._tracked.pop(entry.job._key, None)
        self._emit(entry.job, None, detach=detach or "")

    # -- steps (loop thread) ----------------------------------------------------------------

    async def _step(self, entry: _Entry, saving: Backend | None) -> None:
        try:
            if entry.mode == "submit":
                await self._submit(entry)
            elif entry.mode == "poll":
                await self._poll(entry)
            elif entry.mode == "save":
                await self._save(entry)
            else:
                await self._watch(entry)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not kill the thread that serves every job
            log.exception("unexpected error while tracking job %s", entry.job.local_id)
            self._finish(entry, detach=f"internal error ({type(exc).__name__}); "
                         "sw.resume() retries")
        finally:
            entry.busy, entry.task = False, None
            self._in_flight -= 1
            if saving is not None:
                self._saving[saving] -= 1
                self._start_waiting_save(saving)
            self._arm()

    def _start_waiting_save(self, backend: Backend) -> None:
        waiting = self._waiting_saves.get(backend)
        while waiting:
            seq, key = waiting.popleft()
            entry = self._entries.get(key)
            if entry is not None and entry.seq == seq and not entry.busy:
                self._push(entry, 0.0)
                return

    async def _submit(self, entry: _Entry) -> None:
        job = entry.job
        client = self._client(job._backend)
        job._post_started = True
        state = entry.state
        notice: str | None = None
        try:
            snapshot = await client.submit(job.request)
        except SubmissionUnknown as exc:
            new = state.evolve(phase=Phase.SETTLED, error_type=UNKNOWN_OUTCOME,
                               error_message=str(exc), charge=self._maybe(job))
        except APIError as exc:   # rejected with 4xx (a 400 too): nothing was charged
            new = state.evolve(phase=Phase.SETTLED, error_type=kind_of(exc).value,
                               error_message=str(exc), error_code=str(exc.status_code))
        except (ValidationError, APIConnectionError) as exc:
            # Not sent (could not be encoded, or the connection was refused each time).
            new = state.evolve(phase=Phase.SETTLED, error_type=kind_of(exc).value,
                               error_message=f"{exc}; nothing was charged")
        except Exception as exc:  # a bug once the request may have left: it may be charged
            log.exception("unexpected error while submitting job %s", job.local_id)
            new = state.evolve(phase=Phase.SETTLED, error_type=UNKNOWN_OUTCOME,
                               charge=self._maybe(job),
                               error_message=f"{MAY_BE_CHARGED} (internal error: "
                                             f"{type(exc).__name__})")
        else:
            charge = Charge.NONE if job.emulator else Charge.CHARGED
            new = apply_snapshot(state.evolve(task_id=snapshot.id, charge=charge,
                                              phase=Phase.POLLING), snapshot)
            entry.fetch_url = snapshot.extra.get("fetch_url")
            entry.hint, entry.expires_at = snapshot.poll_after, snapshot.expires_at
            entry.last_progress = snapshot.progress
            notice = _unrecognised(snapshot)
            log.info("submitted job %s: task id %s", job.local_id, snapshot.id)
        self._advance(entry, new, notice=notice)
        if entry.detach_after_submit and job._key in self._entries:
            self._entries.pop(job._key, None)
            self._emit(job, None, detach="tracking was cancelled after the submit; "
                                          "sw.resume() picks it up")

    @staticmethod
    def _maybe(job: Job) -> Charge:
        return Charge.NONE if job.emulator else Charge.MAYBE

    def _advance(self, entry: _Entry, new: JobState, **extra: Any) -> None:
        """Record a transition and decide the entry's next step."""
        delay = 0.0
        polling = new.phase is Phase.POLLING and new.task_id is not None
        if polling:
            delay, eta = self._next_delay(entry, new)
            if eta != entry.job.eta_seconds:
                extra["eta_seconds"] = eta
        if new != entry.state or extra:
            self._emit(entry.job, new, **extra)
            entry.state = new
        if new.relay_status is RelayStatus.COMPLETED and entry.schedule is not None:
            entry.schedule.observe(asyncio.get_running_loop().time(), Status.COMPLETED.value, 100)
        if new.settled or new.task_id is None:
            self._finish(entry)
            return
        entry.mode = "poll" if polling else "save"
        self._push(entry, delay)

    def _schedule(self, entry: _Entry) -> PollSchedule:
        if entry.schedule is None:
            backend = entry.job._backend
            prior = self._priors.setdefault(backend.journal_name, RelayPrior())
            entry.schedule = PollSchedule(_policy(backend.time_scale), prior)
        return entry.schedule

    def _next_delay(self, entry: _Entry, state: JobState) -> tuple[float, float | None]:
        """When to poll next, and the predicted seconds left (None without evidence)."""
        schedule = self._schedule(entry)
        status = state.relay_status.value if state.relay_status else Status.QUEUED.value
        now = asyncio.get_running_loop().time()
        schedule.observe(now, status, entry.last_progress)
        end = schedule.predicted_end()
        eta = max(0.0, end - now) if end is not None else None
        return schedule.next_delay(now, status, entry.last_progress, entry.hint), eta

    async def _poll(self, entry: _Entry) -> None:
        job = entry.job
        assert entry.state.task_id is not None
        client = self._client(job._backend)
        try:
            snapshot, entry.hint = await client.retrieve_once(entry.state.task_id)
        except Exception as exc:
            if not isinstance(exc, SoraError):
                log.exception("unexpected error while polling job %s", job.local_id)
            self._retry_later(entry, exc)
            return
        entry.failures = 0
        entry.last_progress = snapshot.progress
        if snapshot.extra.get("fetch_url"):
            entry.fetch_url = snapshot.extra["fetch_url"]
            entry.expires_at = snapshot.expires_at
        new = apply_snapshot(entry.state, snapshot)
        extra: dict[str, Any] = {}
        if job.poll_error is not None:
            extra["poll_error"] = None
        notice = _unrecognised(snapshot)
        if notice != job.notice and (notice or _RELAY_WORDS in (job.notice or "")):
            extra["notice"] = notice
        if new.done:
            extra["eta_seconds"] = None
        self._advance(entry, new, **extra)

    def _retry_later(self, entry: _Entry, exc: BaseException) -> None:
        """A failed GET: for a transient fault, the plan as if the GET had not happened,
        with a short backoff (a few seconds at most once the relay answers again); slowly
        for refusals (401/403/404). A paid job is never given up."""
        entry.failures += 1
        scale = entry.job._backend.time_scale
        if is_transient(exc):
            now = asyncio.get_running_loop().time()
            delay = self._schedule(entry).retry_delay(now, entry.failures, retry_after_of(exc))
        else:
            delay = Backoff(base=0.25 * scale, cap=REFUSED_CAP * scale).delay(
                entry.failures, retry_after_of(exc))
        self._emit(entry.job, None, persist=False, poll_error=f"{exc} (retrying)")
        self._push(entry, delay)

    async def _save(self, entry: _Entry) -> None:
        """Save promptly (links expire); a stale link is refreshed, the job never re-made.

        Faults are retried with backoff (Retry-After honoured). 8 definite refusals in a
        row or 30 failures end the attempt: the handle is detached with ``download_error``
        set (``wait()`` must not hang on a link), the journal keeps the job for
        ``resume()`` / ``job.download()``."""
        job = entry.job
        assert entry.state.task_id is not None
        client = self._client(job._backend)
        target = job._video_target()
        scale = job._backend.time_scale
        entry.save_attempts += 1
        try:
            url = entry.fetch_url
            stale = entry.expires_at is not None and time.time() >= entry.expires_at
            if entry.save_attempts > 1 or not url or stale:   # expires_at: refresh first
                fresh, _ = await client.retrieve_once(entry.state.task_id)
                url = fresh.extra.get("fetch_url") or url
            if not url:
                raise NotFoundError("the relay gave no video link", status_code=404)
            if urlsplit(url).scheme.lower() not in ("http", "https"):
                raise APIError("the relay's video link is not an http(s) URL", status_code=0)
            await client.download(url, target)
            await asyncio.get_running_loop().run_in_executor(self._events, _make_poster, target)
        except Exception as exc:
            entry.refusals = 0 if is_transient(exc) else entry.refusals + 1
            if entry.refusals >= 8 or entry.save_attempts >= 30:
                log.warning("could not save the video of job %s: %s; job.download() retries",
                            entry.state.task_id, exc)
                self._entries.pop(job._key, None)
                with self._lock:
                    self._tracked.pop(job._key, None)
                self._emit(job, None, persist=False, download_error=str(exc),
                           detach=f"the video could not be saved: {exc}")
                return
            self._emit(job, None, persist=False, download_error=str(exc))
            backoff = Backoff(base=scale, cap=60 * scale)
            self._push(entry, backoff.delay(min(entry.save_attempts, 10), retry_after_of(exc)))
            return
        new = entry.state.evolve(phase=Phase.SETTLED, local_path=str(target))
        self._advance(entry, new, download_error=None)

    async def _watch(self, entry: _Entry) -> None:
        """Follow a job through the journal while another live process owns it (or its
        submit is in flight); take it over once that owner is gone."""
        job = entry.job
        record, mine = await asyncio.get_running_loop().run_in_executor(
            self._events, job._journal.take_over, job.local_id)
        if record is None:
            self._finish(entry, detach="the journal has no such job")
            return
        state = record.state
        if state != entry.state:
            self._emit(job, state, persist=False)
            entry.state = state
        if state.settled or (state.task_id is None and state.phase is not Phase.SUBMITTING):
            self._finish(entry)
        elif state.phase is Phase.SUBMITTING or not mine:
            self._push(entry, max(0.05, job._backend.time_scale))
        else:
            entry.mode = "save" if state.phase is Phase.SAVING else "poll"
            self._push(entry, 0.0)


def _make_poster(video: Path) -> None:
    """A still beside the saved video (history shows it instead of a player); a poster
    that cannot be made is not a reason to fetch the video again."""
    try:
        from sora_widgets.media.frames import poster

        poster(video, poster_of(video))
    except Exception as exc:
        log.warning("no poster for %s: %s", video.name, exc)


def _logged(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception:
        log.exception("sora-widgets events thread: a step failed")


@dataclass(slots=True)
class _Transition:
    """What the events thread applies: journal (unless ``persist`` is off), then the
    handle (``state`` and ``extra`` traits), then ``detach`` (a reason, or "")."""

    job: Job
    state: JobState | None
    persist: bool
    detach: str | None
    extra: dict[str, Any]


def _apply_all(transitions: list[_Transition]) -> None:
    """On the events thread: the journal writes of a run of transitions (one transaction
    per journal), then each handle and its change event, in order."""
    _persist(transitions)
    for t in transitions:
        try:
            job = t.job
            if t.state is not None:
                job._show(t.state, **t.extra)
            elif t.extra:
                with job._lock, job.hold_trait_notifications():
                    for name, value in t.extra.items():
                        setattr(job, name, value)
            if t.detach is not None:
                job._detach(t.detach or None)
        except Exception:
            log.exception("sora-widgets events thread: job %s", t.job.local_id)


def _persist(transitions: list[_Transition]) -> None:
    by_journal: dict[int, tuple[Journal, list[_Transition]]] = {}
    for t in transitions:
        if t.state is not None and t.persist:
            by_journal.setdefault(id(t.job._journal), (t.job._journal, []))[1].append(t)
    for journal, writes in by_journal.values():
        if len(writes) > 1:
            held: dict[str, JobState] = {}     # what the journal holds once the earlier ones land
            rows = []
            for t in writes:
                assert t.state is not None
                rows.append((t.job.local_id, t.state,
                             held.get(t.job._key) or t.job._unsaved_base()))
                held[t.job._key] = t.state
            try:
                journal.save_states(rows)
            except Exception as exc:     # one at a time below: find the write that fails
                log.debug("a batch of %d journal writes failed (%s); one by one", len(rows), exc)
            else:
                for t in writes:
                    _written(t)
                continue
        for t in writes:
            _persist_one(t)


def _persist_one(t: _Transition) -> None:
    job, state = t.job, t.state
    assert state is not None
    before = job._unsaved_base()
    try:
        if before.task_id is None and state.task_id is not None:
            job._journal.record_submitted(job.local_id, state, before)
        else:
            job._journal.save_state(job.local_id, state, before)
    except Exception as exc:
        # The id of a paid task must not be lost: keep it, say so, retry on heartbeat.
        job._unsaved = state
        job._unsaved_from = before
        t.extra["notice"] = (f"the journal could not be written ({type(exc).__name__}): "
                             f"task id {state.task_id} is kept in memory and retried; "
                             "keep this kernel running until it is saved")
        log.warning("journal write failed for job %s (task id %s): %s; kept in memory, "
                    "retrying", job.local_id, state.task_id, exc)
    else:
        _written(t)


def _written(t: _Transition) -> None:
    t.job._unsaved = None
    if (t.job.notice or "").startswith("the journal could not"):
        t.extra.setdefault("notice", None)


def _retry_unsaved(job: Job) -> None:
    state = job._unsaved
    if state is None:
        return
    before = job._unsaved_from
    job._journal.save_state(job.local_id, state, before)
    job._unsaved = None
    with job._lock:
        job.notice = None
    log.info("journal write of job %s (task id %s) succeeded on retry", job.local_id,
             state.task_id)


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
    global _poller, _poller_lock, _finished
    _poller_lock = threading.Lock()
    _finished = threading.Condition(threading.Lock())
    inherited = _poller
    _poller = None
    if inherited is not None:
        for job in list(inherited._tracked.values()):
            job._lock = threading.RLock()
            job._detach("this handle belongs to the parent process")


os.register_at_fork(after_in_child=_after_fork_in_child)
