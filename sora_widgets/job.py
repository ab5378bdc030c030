"""``Job``, a live handle on one video task, and the one background thread that drives them all.

The poller is a single daemon thread running an asyncio loop with one
``httpx.AsyncClient`` per backend: 1,000 jobs cost 1,000 coroutines, not 1,000
threads. It only *sets traits* on jobs (never prints or displays: output from a
background thread lands in whatever cell runs now), writes the journal *before*
it updates the handle, and never gives up on a paid job because of transient
faults; a deadline is the caller's choice (``Job.wait(timeout=...)``).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
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
from traitlets import All, Bool, Float, HasTraits, Instance, Int, Unicode

from .client import MAY_BE_CHARGED, AsyncSoraClient, SoraClient, is_transient, retry_after_of
from .config import APIKey
from .errors import (
    APIError,
    JobFailed,
    NotFoundError,
    PermissionDeniedError,
    SoraError,
    SubmissionUnknown,
)
from .models import FINAL_STATUSES, TaskSnapshot, VideoRequest
from .retry import Backoff
from .schedule import PollPolicy, PollSchedule
from .store import SETTLED, JobRecord, Journal

__all__ = ["Backend", "Job", "Poller", "poller"]

log = logging.getLogger("sora_widgets.job")

#: Characters allowed in a video file name (task ids come from the server).
_SAFE_ID = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Backend:
    """Where a job runs. The key is kept here, never in a trait, the journal or a repr."""

    base_url: str
    key: APIKey | None = field(default=None, repr=False)
    emulator: bool = False
    time_scale: float = 1.0
    timeout: float = 30.0

    @property
    def journal_name(self) -> str:
        """How the journal names the backend (stable across restarts of the emulator)."""
        return "emulator" if self.emulator else self.base_url

    def async_client(self) -> AsyncSoraClient:
        return AsyncSoraClient(self.key, self.base_url, timeout=self._timeout(),
                               warn_cleartext=False,   # Studio warned on the caller's thread
                               backoff=Backoff(base=0.5 * self.time_scale,
                                               cap=30 * self.time_scale))

    def sync_client(self) -> SoraClient:
        return SoraClient(self.key, self.base_url, timeout=self._timeout(),
                          warn_cleartext=False)

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, connect=min(10.0, self.timeout))


class Job(HasTraits):
    """A video job: observable state (traitlets), ``wait()``, ``download()``, ``cancel()``."""

    local_id = Unicode(read_only=False)
    id = Unicode(None, allow_none=True)
    status = Unicode("submitting")
    progress = Int(0)
    video_url = Unicode(None, allow_none=True)
    error = Unicode(None, allow_none=True)
    error_code = Unicode(None, allow_none=True)
    #: What this job cost: the price once the relay accepted it (0 on the emulator).
    cost_usd = Float(0.0)
    price_usd = Float(0.0)
    #: 'none' | 'charged' | 'maybe' (submit outcome unknown).
    charge = Unicode("none")
    local_path = Instance(Path, allow_none=True)
    created_at = Float(0.0)
    completed_at = Float(None, allow_none=True)
    #: Predicted seconds until the relay finishes (None when it cannot be told).
    eta_seconds = Float(None, allow_none=True)
    #: The last transient polling problem ("reconnecting…"), cleared on the next success.
    poll_error = Unicode(None, allow_none=True)
    download_error = Unicode(None, allow_none=True)
    emulator = Bool(False)
    #: True when this handle came from the cache: showing it cost nothing.
    cached = Bool(False)
    tracking = Bool(False)

    def __init__(self, request: VideoRequest, backend: Backend, journal: Journal,
                 videos_dir: Path, **traits: Any) -> None:
        super().__init__(**traits)
        self.request = request
        self._backend = backend
        self._journal = journal
        self._videos_dir = videos_dir
        self._settled = threading.Event()
        self._cancelled = False
        self.emulator = backend.emulator
        if not self.needs_relay:
            self._settled.set()

    @classmethod
    def from_record(cls, record: JobRecord, backend: Backend, journal: Journal,
                    videos_dir: Path) -> Job:
        path = Path(record.local_path) if record.local_path else None
        if path is not None and not path.is_file():
            path = None
        return cls(record.video_request, backend, journal, videos_dir,
                   local_id=record.local_id, id=record.task_id, status=record.status,
                   progress=record.progress, video_url=record.video_url,
                   error=record.error_message, error_code=record.error_code,
                   cost_usd=record.cost_usd, price_usd=record.price_usd, charge=record.charge,
                   local_path=path, created_at=record.created_at,
                   completed_at=record.completed_at)

    # -- convenience ----------------------------------------------------------------------

    @property
    def prompt(self) -> str | None:
        return self.request.prompt

    @property
    def aspect_ratio(self) -> str:
        return self.request.aspect_ratio

    @property
    def done(self) -> bool:
        return self.status in SETTLED

    @property
    def needs_relay(self) -> bool:
        """Still running, or finished with its video not saved yet."""
        return not self.done or (self.status == "completed" and self.local_path is None)

    @property
    def elapsed(self) -> float:
        end = self.completed_at if self.completed_at else time.time()
        return max(0.0, end - self.created_at)

    def on_change(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback(change)`` on every state change (from the poller thread)."""
        self.observe(callback, names=All)

    # -- waiting and files ------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> Job:
        """Block until the job is final (and its video saved); raise if it failed."""
        if not self._settled.wait(timeout):
            raise TimeoutError(
                f"job {self.id or self.local_id} not finished after {timeout} s "
                f"(status {self.status}); it keeps running: call wait() again")
        if self._cancelled and not self.done:
            raise SoraError("tracking of this job was cancelled; sw.resume() picks it up again")
        if self.status == "failed":
            raise JobFailed(self.error or "the job failed", job_id=self.id,
                            code=self.error_code)
        if self.status == "unknown":
            raise SubmissionUnknown(self.error or "the submit's outcome is unknown",
                                    local_id=self.local_id)
        return self

    def download(self, path: str | Path | None = None) -> Path:
        """The video on disk: the saved copy, or fetched now (a fresh link if it expired)."""
        if self.status != "completed":
            raise SoraError(f"job {self.id or self.local_id} is {self.status}, not completed")
        if self.local_path is None or not self.local_path.is_file():
            target = self._video_target()
            with self._backend.sync_client() as client:
                url = self.video_url
                try:
                    if not url:
                        raise NotFoundError("no link yet", status_code=404)
                    client.download(url, target)
                except (PermissionDeniedError, NotFoundError):
                    assert self.id is not None
                    fresh = client.retrieve(self.id)
                    if not fresh.video_url:
                        raise
                    client.download(fresh.video_url, target)
            self._mark_saved(target)
        assert self.local_path is not None
        if path is None:
            return self.local_path
        destination = Path(path)
        if destination.is_dir():
            destination = destination / self.local_path.name
        shutil.copyfile(self.local_path, destination)
        return destination

    def _video_target(self) -> Path:
        return self._videos_dir / f"{_SAFE_ID.sub('_', self.id or self.local_id)}.mp4"

    def _mark_saved(self, path: Path) -> None:
        """Journal first, then the handle (as for every state change)."""
        self._journal.update(self.local_id, local_path=str(path))
        self.download_error = None
        self.local_path = path

    def cancel(self) -> None:
        """Stop tracking locally (the relay cannot cancel; a paid job keeps running there)."""
        self._cancelled = True
        poller().untrack(self)
        self._settled.set()

    # -- display ----------------------------------------------------------------------------

    def __repr__(self) -> str:
        prompt = (self.prompt or "")[:40]
        where = " emulator" if self.emulator else ""
        return (f"<Job {self.id or self.local_id[:8]} {self.status} {self.progress}%"
                f"{where} {prompt!r}>")

    def _repr_html_(self) -> str:
        # Lazy: rendering is a UI concern; the core stays importable without it.
        from .render import job_html

        return job_html(self)

    # -- state updates (poller thread) ------------------------------------------------------

    def _apply(self, snapshot: TaskSnapshot, eta: float | None) -> None:
        """Journal first, then the handle: a crash between leaves the journal ahead."""
        changes: dict[str, Any] = {"status": snapshot.status}
        if snapshot.progress is not None:
            changes["progress"] = snapshot.progress
        if snapshot.video_url:
            changes["video_url"] = snapshot.video_url
        if snapshot.error is not None:
            changes["error_message"] = snapshot.error.message
            changes["error_code"] = snapshot.error.code
        if snapshot.is_final and not self.completed_at:
            changes["completed_at"] = snapshot.completed_at or time.time()
        current = {"status": self.status, "progress": self.progress,
                   "video_url": self.video_url, "error_message": self.error,
                   "error_code": self.error_code, "completed_at": self.completed_at}
        if any(current.get(k) != v for k, v in changes.items()):
            self._journal.update(self.local_id, **changes)
        with self.hold_trait_notifications():
            self.eta_seconds = eta
            self.poll_error = None
            if snapshot.progress is not None:
                self.progress = snapshot.progress
            if snapshot.video_url:
                self.video_url = snapshot.video_url
            if snapshot.error is not None:
                self.error = snapshot.error.message
                self.error_code = snapshot.error.code
            if "completed_at" in changes:
                self.completed_at = changes["completed_at"]
            self.status = snapshot.status


class Poller:
    """The one background thread: an asyncio loop driving every job's coroutine."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._jobs: dict[str, Job] = {}            # tracked jobs, to re-adopt after a restart
        self._tasks: dict[str, asyncio.Task[None]] = {}   # loop thread only
        self._clients: dict[Backend, AsyncSoraClient] = {}  # loop thread only

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def _ensure_running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._thread is not None and self._thread.is_alive() and self._loop:
                return self._loop
            restarted = self._thread is not None
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
            self._tasks = {}
            self._clients = {}
            self._thread = threading.Thread(target=run, name="sora-widgets-poller", daemon=True)
            self._thread.start()
            ready.wait()
            orphans = list(self._jobs.values()) if restarted else []
        for job in orphans:
            log.warning("poller restarted: re-adopting job %s", job.id or job.local_id)
            self._schedule(job, submit=job.status == "submitting" and job.id is None)
        return loop

    def submit(self, job: Job) -> None:
        """POST the job's request from the poller thread, then track it."""
        self._schedule(job, submit=True)

    def track(self, job: Job) -> None:
        """Poll a job that already has a task id (resume, cache, another kernel's job)."""
        self._schedule(job, submit=False)

    def _schedule(self, job: Job, *, submit: bool) -> None:
        with self._lock:
            self._jobs[job.local_id] = job
        job._cancelled = False
        if job.needs_relay:
            job._settled.clear()
        job.tracking = True
        loop = self._ensure_running()

        def start() -> None:
            if job.local_id in self._tasks:
                return
            task = loop.create_task(self._drive(job, submit))
            self._tasks[job.local_id] = task
            task.add_done_callback(lambda _t: self._tasks.pop(job.local_id, None))

        loop.call_soon_threadsafe(start)

    def untrack(self, job: Job) -> None:
        with self._lock:
            self._jobs.pop(job.local_id, None)
            loop = self._loop
        job.tracking = False
        if loop is not None and not loop.is_closed():
            def stop() -> None:
                task = self._tasks.pop(job.local_id, None)
                if task is not None:
                    task.cancel()
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop)

    def tracked(self) -> list[Job]:
        """The jobs being polled now."""
        with self._lock:
            return list(self._jobs.values())

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel every coroutine, close the HTTP clients and end the thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = None
            self._thread = None
        if loop is None or thread is None or not thread.is_alive():
            return

        async def shutdown() -> None:
            tasks = list(self._tasks.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for client in self._clients.values():
                await client.aclose()
            self._clients.clear()
            loop.stop()

        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(shutdown()))
        thread.join(timeout)

    # -- the coroutine of one job (loop thread) -------------------------------------------

    def _client(self, backend: Backend) -> AsyncSoraClient:
        client = self._clients.get(backend)
        if client is None:
            client = self._clients[backend] = backend.async_client()
        return client

    async def _drive(self, job: Job, submit: bool) -> None:
        try:
            if submit and not await self._submit(job):
                return
            if job.status not in FINAL_STATUSES:
                await self._poll_until_final(job)
            if job.status == "completed" and job.local_path is None:
                await self._save_video(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not kill the thread that serves every job
            log.exception("unexpected error while tracking job %s", job.local_id)
            job.poll_error = f"internal error: {type(exc).__name__}; sw.resume() retries"
            job._cancelled = True   # settle the waiters; the journal keeps the job for resume()
        finally:
            if job.done or job._cancelled:
                with self._lock:
                    self._jobs.pop(job.local_id, None)
                job.tracking = False
                job._settled.set()

    async def _submit(self, job: Job) -> bool:
        client = self._client(job._backend)
        try:
            snapshot = await client.submit(job.request)
        except SubmissionUnknown as exc:
            self._mark_unknown(job, str(exc))
            return False
        except SoraError as exc:  # rejected before anything was charged (4xx, refused)
            code = str(getattr(exc, "status_code", "") or getattr(exc, "code", "") or "") or None
            job._journal.update(job.local_id, status="failed", error_message=str(exc),
                                error_code=code, completed_at=time.time())
            with job.hold_trait_notifications():
                job.error = str(exc)
                job.error_code = code
                job.completed_at = time.time()
                job.status = "failed"
            return False
        except Exception as exc:  # a bug once the request may have left: it may be charged
            log.exception("unexpected error while submitting job %s", job.local_id)
            self._mark_unknown(job, f"{MAY_BE_CHARGED} (internal error: {type(exc).__name__})")
            return False
        charge = "none" if job.emulator else "charged"
        job._journal.update(job.local_id, task_id=snapshot.id, charge=charge,
                            status=snapshot.status, progress=snapshot.progress or 0)
        with job.hold_trait_notifications():
            job.charge = charge
            job.cost_usd = job.price_usd if charge == "charged" else 0.0
            job.id = snapshot.id
        job._apply(snapshot, None)
        return True

    @staticmethod
    def _mark_unknown(job: Job, message: str) -> None:
        charge = "none" if job.emulator else "maybe"
        job._journal.update(job.local_id, status="unknown", charge=charge,
                            error_message=message)
        with job.hold_trait_notifications():
            job.charge = charge
            job.cost_usd = job.price_usd if charge == "maybe" else 0.0
            job.error = message
            job.status = "unknown"

    async def _poll_until_final(self, job: Job) -> None:
        assert job.id is not None
        client = self._client(job._backend)
        policy = PollPolicy(scale=job._backend.time_scale)
        schedule = PollSchedule(policy)
        backoff = Backoff(base=policy.s(1.0), cap=policy.s(30.0))
        loop = asyncio.get_running_loop()
        hint: float | None = None
        failures = 0
        last_error: BaseException | None = None
        schedule.observe(loop.time(), job.status, job.progress)
        while job.status not in FINAL_STATUSES:
            if failures:
                delay = backoff.delay(failures, retry_after_of(last_error))
            else:
                delay = schedule.next_delay(loop.time(), job.status, job.progress, hint)
            await asyncio.sleep(delay)
            try:
                snapshot, hint = await client.retrieve_once(job.id)
            except Exception as exc:
                if not isinstance(exc, SoraError):
                    log.exception("unexpected error while polling job %s", job.id)
                last_error = exc
                failures += 1
                if not is_transient(exc):
                    # 401/403/404 or a bug, on a paid job: say so, keep trying slowly.
                    failures = max(failures, 6)
                job.poll_error = f"{exc} (retrying)"
                continue
            failures = 0
            now = loop.time()
            schedule.observe(now, snapshot.status, snapshot.progress)
            end = schedule.predicted_end()
            eta = max(0.0, end - now) if end is not None and not snapshot.is_final else None
            job._apply(snapshot, eta)

    async def _save_video(self, job: Job) -> None:
        """Save promptly (links expire); a stale link is refreshed, the job never re-generated.

        Faults are retried with backoff (honouring Retry-After). A run of 8 definite
        refusals (403/404 even on fresh links) or 30 transient failures in a row (a dead
        CDN, not bad luck) ends the attempt, leaving ``download_error`` set and
        ``job.download()`` to try again later: ``wait()`` must not hang on a link.
        """
        assert job.id is not None
        client = self._client(job._backend)
        target = job._video_target()
        scale = job._backend.time_scale
        backoff = Backoff(base=scale, cap=60 * scale)
        attempt = refusals = failures = 0
        while True:
            attempt += 1
            try:
                url = job.video_url
                if attempt > 1 or not url:
                    # The link may have expired (or the emulator moved): ask for a fresh one.
                    fresh, _ = await client.retrieve_once(job.id)
                    url = fresh.video_url or url
                if not url:
                    raise NotFoundError("the relay gave no video link", status_code=404)
                if urlsplit(url).scheme.lower() not in ("http", "https"):
                    # Not a fault that time heals: count it as a refusal.
                    raise APIError("the relay's video link is not an http(s) URL",
                                   status_code=0)
                await client.download(url, target)
            except Exception as exc:
                job.download_error = str(exc)
                failures += 1
                refusals = 0 if is_transient(exc) else refusals + 1
                if refusals >= 8 or failures >= 30:
                    log.warning("could not save the video of job %s: %s; job.download() "
                                "retries", job.id, exc)
                    return
                await asyncio.sleep(backoff.delay(min(attempt, 10), retry_after_of(exc)))
                continue
            job._mark_saved(target)
            return


_poller: Poller | None = None
_poller_lock = threading.Lock()


def poller() -> Poller:
    """The process-wide poller (started on first use, restarted if its thread died)."""
    global _poller
    with _poller_lock:
        if _poller is None:
            _poller = Poller()
            atexit.register(_poller.stop)
        return _poller
