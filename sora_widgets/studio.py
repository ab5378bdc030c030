"""The facade every UI uses: ``generate()``, ``jobs()``, ``resume()``, spend, the cache.

Settings are read at each call. With no API key, the embedded emulator answers
(nothing is charged, and every job says so). The no-double-pay rule lives here:
an identical request returns the earlier job (finished, in flight, failed or of
unknown outcome) unless ``force=True``; only submits that were rejected before
any charge are simply sent again.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .client import warn_if_cleartext
from .config import APIKey, Settings, missing_key_problem, price_of, settings
from .errors import BudgetExceededError, SoraError, ValidationError
from .job import Backend, Job, poller
from .models import VideoRequest
from .store import JobRecord, Journal, Spend

__all__ = ["Studio", "default_studio"]

log = logging.getLogger("sora_widgets.studio")

#: The embedded emulator wants a VIP key like the relay; this one is public and worthless.
EMULATOR_KEY = APIKey("sk-local-emulator")


class Studio:
    """Process-wide state: journals, live job handles, the embedded emulator."""

    def __init__(self) -> None:
        self.session = uuid.uuid4().hex
        self._lock = threading.RLock()
        self._journals: dict[Path, Journal] = {}
        self._live: dict[str, Job] = {}
        self._emulator: Any = None
        self._recovered: set[Path] = set()

    # -- plumbing -------------------------------------------------------------------------

    def journal(self, current: Settings | None = None) -> Journal:
        current = current or settings()
        path = current.journal_path
        with self._lock:
            journal = self._journals.get(path)
            if journal is None:
                journal = self._journals[path] = Journal(path)
            if path not in self._recovered:
                self._recovered.add(path)
                journal.recover_interrupted_submits()
            return journal

    def emulator_url(self, current: Settings | None = None) -> str:
        """Start the embedded emulator once (its tasks persist under SORA_WIDGETS_HOME)."""
        current = current or settings()
        with self._lock:
            if self._emulator is None:
                from .emulator import EmulatorConfig, start_emulator

                config = EmulatorConfig(time_scale=current.emulator_time_scale,
                                        state_dir=current.home / "emulator")
                self._emulator = start_emulator(config, host="127.0.0.1", port=0)
                log.info("local emulator started at %s", self._emulator.base_url)
            else:
                self._emulator.config.time_scale = current.emulator_time_scale
            return str(self._emulator.base_url)

    def backend(self, current: Settings | None = None, *, emulator: bool | None = None,
                base_url: str | None = None) -> Backend:
        current = current or settings()
        use_emulator = current.uses_emulator if emulator is None else emulator
        problem = missing_key_problem(current, base_url) if emulator is None else None
        if problem:
            raise ValidationError(problem, field="api_key")
        if use_emulator:
            return Backend(self.emulator_url(current), EMULATOR_KEY, emulator=True,
                           time_scale=current.emulator_time_scale)
        url = base_url or current.base_url
        warn_if_cleartext(url)   # here, on the caller's thread, before anything is sent
        return Backend(url, current.api_key, emulator=False, time_scale=current.poll_scale,
                       timeout=current.http_timeout)

    def _handle(self, record: JobRecord, current: Settings) -> Job:
        """The live handle for a journal row (one handle per job in this process)."""
        with self._lock:
            job = self._live.get(record.local_id)
            if job is None:
                backend = self.backend(current, emulator=record.emulator,
                                       base_url=None if record.emulator else record.backend)
                job = Job.from_record(record, backend, self.journal(current),
                                      current.videos_dir)
                self._live[record.local_id] = job
            return job

    # -- public operations ------------------------------------------------------------------

    def generate(
        self,
        prompt: str | None = None,
        *,
        aspect_ratio: str | None = "16:9",
        image: str | Path | Iterable[str | Path] | None = None,
        model: str | None = None,
        duration: int | None = 12,
        wait: bool = False,
        force: bool = False,
        timeout: float | None = None,
        base_url: str | None = None,
    ) -> Job:
        """Submit a video job and return its handle at once (the POST runs in the background).

        An identical earlier request returns the earlier job: no POST, no charge,
        unless ``force=True``. ``base_url`` overrides SORA_BASE_URL (with a key set).
        """
        current = settings()
        request = VideoRequest.create(prompt, aspect_ratio=aspect_ratio, image=image,
                                      model=model or current.model, duration=duration)
        journal = self.journal(current)
        backend = self.backend(current, base_url=base_url.rstrip("/") if base_url else None)
        with self._lock:
            job = None if force else self._reuse(request, backend, current)
            if job is None:
                job = self._submit(request, backend, journal, current)
        if wait:
            job.wait(timeout)
        return job

    def _reuse(self, request: VideoRequest, backend: Backend, current: Settings) -> Job | None:
        earlier = self.earlier_jobs(request, backend, limit=1, current=current)
        return earlier[0] if earlier else None

    def earlier_jobs(self, request: VideoRequest, backend: Backend, *, limit: int = 1,
                     current: Settings | None = None) -> list[Job]:
        """Up to ``limit`` earlier jobs of this request, newest first: the cache's one rule.

        Each is marked ``cached`` and made live again if it still needs the relay.
        """
        current = current or settings()
        records = self.journal(current).reusable(request.fingerprint(), backend.journal_name,
                                                 limit)
        jobs = []
        for record in records:
            job = self._handle(record, current)
            job.cached = True
            jobs.append(self.track(job))
        return jobs

    def track(self, job: Job) -> Job:
        """Poll a job again if it still needs the relay (running, or finished but unsaved)."""
        if not job.tracking and job.id is not None and job.needs_relay:
            poller().track(job)
        return job

    def check_budget(self, amount_usd: float, current: Settings | None = None, *,
                     what: str = "this submit at ") -> None:
        """Refuse, before anything is sent, a spend that would pass SORA_BUDGET_USD."""
        current = current or settings()
        if current.budget_usd is None:
            return
        spent = self.journal(current).spend(self.session).worst_case_usd
        if spent + amount_usd > current.budget_usd + 1e-9:
            raise BudgetExceededError(
                f"budget: {what}${amount_usd:.2f} would pass the cap: this session has spent "
                f"${spent:.2f} of its SORA_BUDGET_USD=${current.budget_usd:.2f}; "
                "nothing was sent. Raise SORA_BUDGET_USD to continue.",
                spent_usd=spent, price_usd=amount_usd, budget_usd=current.budget_usd)

    def _submit(self, request: VideoRequest, backend: Backend, journal: Journal,
                current: Settings) -> Job:
        price = price_of(request.model, current.prices)
        if not backend.emulator:
            self.check_budget(price, current)
        local_id = uuid.uuid4().hex
        record = journal.record_intent(local_id=local_id, request=request,
                                       backend=backend.journal_name, emulator=backend.emulator,
                                       price_usd=price, session=self.session)
        job = Job(request, backend, journal, current.videos_dir, local_id=local_id,
                  status="submitting", price_usd=price, created_at=record.created_at)
        self._live[local_id] = job
        poller().submit(job)
        return job

    def jobs(self, limit: int | None = None) -> list[Job]:
        """History from the journal, newest first (live handles where this process has them)."""
        current = settings()
        return [self._handle(r, current) for r in self.journal(current).history(limit)]

    def get(self, ref: str) -> Job:
        """A past job by task id or local id (or a unique prefix)."""
        current = settings()
        record = self.journal(current).find(ref)
        if record is None:
            raise SoraError(f"no job {ref!r} in the journal")
        return self._handle(record, current)

    def resume(self) -> list[Job]:
        """Re-attach every journal job not yet final (and fetch unsaved videos); no resubmits."""
        current = settings()
        resumed = []
        for record in self.journal(current).unfinished():
            resumed.append(self.track(self._handle(record, current)))
        return resumed

    def spend(self) -> dict[str, Spend]:
        journal = self.journal()
        return {"session": journal.spend(self.session), "all_time": journal.spend()}

    def close(self) -> None:
        """Stop the poller and the embedded emulator (tests; interpreter exit does it too)."""
        poller().stop()
        with self._lock:
            if self._emulator is not None:
                self._emulator.stop()
                self._emulator = None
            for journal in self._journals.values():
                journal.close()
            self._journals.clear()
            self._live.clear()
            self._recovered.clear()


_default: Studio | None = None
_default_lock = threading.Lock()


def default_studio() -> Studio:
    global _default
    with _default_lock:
        if _default is None:
            _default = Studio()
        return _default

