"""``Job``, a live handle on one video task: observable traits, ``wait()``, ``download()``.

The handle is the job's face, not its engine: the poller (:mod:`sora_widgets.engine.poller`)
keeps one tracking record per job and decides each next state; the events thread
(:mod:`sora_widgets.engine.persist`) writes it to the journal, then shows it here. The
methods the engine calls are public but internal, and few: ``show_state``, ``set_traits``,
``detach``, ``detach_inherited``, ``mark_tracked``, ``video_target`` and the read-only
``backend``, ``journal``, ``key`` and ``owner_pid``; the studio's are ``bind`` and
``use_backend``. Nothing else of the engine reads or writes a handle's private fields.

Three threads, whatever the number of jobs: the caller's thread writes the intent
(``Studio.submit``) and never waits on the relay; the poller's loop does I/O and
scheduling; the events thread applies each transition in order (journal, then the traits,
then the change callbacks), so a job's traits are written from that one thread (or under
the job's lock by ``download()``).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from traitlets import Bool, Bunch, Float, HasTraits, Instance, Int, Unicode

from sora_widgets.core import presenters
from sora_widgets.core.errors import JobFailed, NotFoundError, SoraError, SubmissionUnknown
from sora_widgets.core.lifecycle import (
    RELAY_FAILED,
    UNKNOWN_OUTCOME,
    Charge,
    JobState,
    Phase,
    RelayStatus,
    Status,
)
from sora_widgets.core.models import VideoRequest
from sora_widgets.core.money import billing_text, charged_price
from sora_widgets.engine import changes, finish
from sora_widgets.engine.backend import (
    Backend,
    inside,
    poster_of,
    spritesheet_of,
    video_file_name,
)
from sora_widgets.engine.outcome import rejection, state_from_traits
from sora_widgets.engine.poller import MAX_IN_FLIGHT, MAX_SAVING, Poller, poller
from sora_widgets.journal import Journal

__all__ = ["MAX_IN_FLIGHT", "MAX_SAVING", "Backend", "Job", "Poller", "poller", "poster_of",
           "spritesheet_of", "video_file_name", "wait_hook"]
# Re-exported: the studio, the UIs and scripts import these from here (0.2's one module).

log = logging.getLogger("sora_widgets.engine.job")

_NO_STATE = JobState()

#: A UI may show progress while ``Job.wait()`` blocks its caller (the magic sets one in
#: a notebook): called on the caller's thread with the job, it returns what to call when
#: the wait ends, or None. The core never imports a UI; a failing hook never breaks a wait.
wait_hook: Callable[[Job], Callable[[], None] | None] | None = None


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
    #: What this job cost once the relay accepted it ("maybe" counts): the relay's billed
    #: figure once it reported one (``billed_usd``), else the quote (``price_usd``).
    cost_usd = Float(0.0)
    price_usd = Float(0.0)
    billed_usd = Float(None, allow_none=True)
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
    #: True when this handle was in the journal before the call that returned it: showing
    #: it cost nothing (``cached`` is the old name).
    reused = Bool(False)
    tracking = Bool(False)
    parent_id = Unicode(None, allow_none=True)
    starred = Bool(False)
    note = Unicode("")

    _loading = True          # while the constructor sets traits: nothing to persist yet

    def __init__(self, request: VideoRequest, backend: Backend, journal: Journal,
                 videos_dir: Path, *, state: JobState | None = None, **traits: Any) -> None:
        if "cached" in traits:
            _warn_cached()
            traits["reused"] = traits.pop("cached")
        super().__init__(**traits)
        self.request = request
        self._backend = backend
        self._journal = journal
        self._videos_dir = videos_dir
        self._lock = threading.RLock()
        self._is_finished = False                 # under finish's condition
        self._callbacks: tuple[Callable[[dict[str, Any]], None], ...] = ()
        self._state = _NO_STATE
        self._detached = False
        self._studio: Any = None       # set by the Studio that made the handle
        #: The poller's key: per handle, since two Studios may hold handles of one job.
        self._key = f"{self.local_id}#{id(self):x}"
        self._owner_pid = os.getpid()
        self._loading = True
        self.emulator = backend.emulator
        if state is None and "status" in traits:     # a handle built for display
            state = state_from_traits(traits)
        self.show_state(state or _NO_STATE)
        self._loading = False

    @classmethod
    def from_record(cls, record: Any, backend: Backend, journal: Journal,
                    videos_dir: Path) -> Job:
        return cls(record.video_request, backend, journal, videos_dir, state=record.state,
                   local_id=record.local_id, price_usd=record.price_usd,
                   billed_usd=record.billed_usd, created_at=record.created_at,
                   parent_id=record.parent_id, starred=record.starred, note=record.note or "")

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
    def spritesheet_path(self) -> Path | None:
        """The relay's spritesheet of the saved video (a grid of frames, for a hover-scrub),
        where its style renders one (openai); else None. Kept beside the video like the
        poster, and looked up when asked (not on each of thousands of handles' loading)."""
        return _beside(self.local_path, spritesheet_of)

    @property
    def cached(self) -> bool:
        """Deprecated: use ``reused``."""
        _warn_cached()
        return bool(self.reused)

    @cached.setter
    def cached(self, value: bool) -> None:
        _warn_cached()
        self.reused = bool(value)

    @property
    def billing(self) -> str:
        """'quoted $0.80 · billed $0.84', flagged (⚠) past 5 % (``billed_usd`` is the cost)."""
        return billing_text(self.price_usd, self.billed_usd)

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

    # -- what the engine reads (read-only) --------------------------------------------------

    @property
    def backend(self) -> Backend:
        """Where the job runs (its relay and key)."""
        return self._backend

    @property
    def journal(self) -> Journal:
        return self._journal

    @property
    def key(self) -> str:
        """The poller's key for this handle (two Studios may hold handles of one job)."""
        return self._key

    @property
    def owner_pid(self) -> int:
        """The process that made the handle (a forked child must not track it)."""
        return self._owner_pid

    def bind(self, studio: Any) -> None:
        """The Studio that made the handle (``continue_with`` asks it); for the studio."""
        self._studio = studio

    @property
    def studio(self) -> Any:
        """The Studio that made the handle, or ``None``."""
        return self._studio

    def use_backend(self, backend: Backend) -> None:
        """Point an untracked handle at another backend (the studio's emulator came back on
        another port); for the studio."""
        self._backend = backend

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
        if not finish.wait_with_hook(self, wait_hook, lambda: self.finished, timeout):
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
            raise rejection(state)
        return self

    def download(self, path: str | Path | None = None) -> Path:
        """The video on disk: the saved copy, or fetched now (a fresh link if it expired)."""
        if self.status != Status.COMPLETED:
            raise SoraError(f"job {self.id or self.local_id} is {self.status}, not completed")
        if self.local_path is None or not self.local_path.is_file():
            assert self.id is not None
            target = self.video_target()
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
                self.show_state(state)
        assert self.local_path is not None
        if path is None:
            return self.local_path
        destination = Path(path)
        if destination.is_dir():
            destination = destination / self.local_path.name
        shutil.copyfile(self.local_path, destination)
        return destination

    def video_target(self) -> Path:
        """Where this job's video is saved (a name no other task id maps to)."""
        return self._videos_dir / video_file_name(self.id or self.local_id)

    def continue_with(self, prompt: str, **kwargs: Any) -> Job:
        """A new job whose first frame is this clip's last frame (a story, shot by shot).

        The parent is recorded (``parent_id``); see ``Studio.continue_from`` for options."""
        job: Job = self._studio_of().continue_from(self, prompt, **kwargs)
        return job

    def remix(self, prompt: str, **kwargs: Any) -> Job:
        """This clip remade with a changed prompt, where the relay has a remix endpoint
        (``Studio.remix``: quoted, budgeted and confirmed like any submit)."""
        job: Job = self._studio_of().remix(self, prompt, **kwargs)
        return job

    def extend(self, prompt: str, *, seconds: int, **kwargs: Any) -> Job:
        """This clip carried on for ``seconds`` more, where the relay has extensions."""
        job: Job = self._studio_of().extend(self, prompt, seconds=seconds, **kwargs)
        return job

    def _studio_of(self) -> Any:
        if self._studio is None:
            raise SoraError("this job handle has no studio: get it from sw.jobs() or sw.generate()")
        return self._studio

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

    # -- state: the engine's events thread, or the caller under the lock --------------------

    def show_state(self, state: JobState, **extra: Any) -> None:
        """Mirror a state the journal already has on the traits (only those that change),
        then tell observers once. (Engine-internal: the events thread calls it.)"""
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
                "cost_usd": state.cost(charged_price(
                    self.price_usd, extra.get("billed_usd", self.billed_usd))),
                "completed_at": state.completed_at,
                **extra,
            }
            if (state.local_path != before.local_path or self._loading
                    or (state.local_path is not None and self.local_path is None)):
                saved = inside(self._videos_dir, state.local_path)
                values["local_path"] = saved
                values["poster_path"] = _beside(saved, poster_of)
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
            changes.tell(self)

    def set_traits(self, **values: Any) -> None:
        """Set a few traits at once, under the lock (engine-internal: a poll error, a
        notice, a download error)."""
        with self._lock, self.hold_trait_notifications():
            for name, value in values.items():
                setattr(self, name, value)

    def mark_tracked(self) -> None:
        """The poller follows this handle now (engine-internal)."""
        with self._lock:
            self.tracking = True
            self._detached = False
            if self.phase == Phase.DETACHED:
                self.phase = self._state.phase.value
            self._set_finished(False)

    def detach(self, reason: str | None = None) -> None:
        """This process stops tracking the job; the journal keeps what it needs
        (engine-internal; ``cancel()`` is the user's way)."""
        with self._lock, self.hold_trait_notifications():
            self.tracking = False
            self._detached = True
            if not self._state.settled:
                self.phase = Phase.DETACHED.value
            if reason:
                self.notice = reason
        self._set_finished(True)

    #: The name the studio used before the split (kept until it calls ``detach``).
    _detach = detach

    def detach_inherited(self, reason: str) -> None:
        """In a forked child: a new lock (the parent's may have been held at the fork),
        then detached — the child never adopts its parent's jobs."""
        self._lock = threading.RLock()
        self.detach(reason)

    def _set_finished(self, finished: bool) -> None:
        def setter() -> None:
            self._is_finished = finished

        finish.mark(setter, wake=finished)


def _beside(video: Path | None, where: Callable[[Path], Path]) -> Path | None:
    """A file kept beside a saved video (its poster, its spritesheet), if it is there."""
    path = where(video) if video is not None else None
    return path if path is not None and path.is_file() else None


def _warn_cached() -> None:
    warnings.warn("Job.cached is deprecated: use Job.reused", DeprecationWarning,
                  stacklevel=3)
