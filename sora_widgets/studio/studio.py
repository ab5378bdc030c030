"""The facade every UI uses, and the owner of every money rule.

``quote`` says what a call will pay; ``submit`` pays it, through one atomic journal step
(cache check, budgets, confirmation, intents); ``generate`` is ``submit`` of one. The UIs
(magic, panel, CLI) never decide a money question themselves: they call these and render
what comes back.

Settings are read at each call. With no API key the embedded emulator answers (nothing is
charged, and every job says so). A job is always polled with the key of its own relay:
after the user switches ``SORA_BASE_URL`` / ``SORA_API_KEY``, an old job of another relay
is not sent the new key; it waits, with a notice, until that relay's key is set again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from sora_widgets.core.catalog import price_of
from sora_widgets.core.errors import SoraError, ValidationError
from sora_widgets.core.lifecycle import Status
from sora_widgets.core.models import VideoRequest
from sora_widgets.core.money import Limits, Quote, paid_price
from sora_widgets.core.settings import (
    APIKey,
    Settings,
    api_style,
    missing_key_problem,
    preferences,
    settings,
)
from sora_widgets.engine.job import Backend, Job, poller
from sora_widgets.journal import JobRecord, Journal, Spend, open_journal
from sora_widgets.journal.ledger import utc_month_start
from sora_widgets.relay.client import warn_if_cleartext
from sora_widgets.relay.styles import adapter_for
from sora_widgets.studio.continuation import continuation_request, first_frame_image

__all__ = ["EMULATOR_KEY", "Studio", "default_studio"]

log = logging.getLogger("sora_widgets.studio.studio")
#: What ``Studio._one`` interns (immutable, hashable).
_Shared = TypeVar("_Shared", Backend, Path)

#: The embedded emulator wants a VIP key like the relay; this one is public and worthless.
EMULATOR_KEY = APIKey("sk-local-emulator")
EMULATOR_BACKEND = "emulator"


class Studio:
    """Process-wide state: journals, live job handles, the embedded emulator."""

    def __init__(self, *, api_style: str | None = None) -> None:
        #: This studio's relay wire style; None: the style in force (SORA_API_STYLE,
        #: ``%config SoraMagics.api_style``), read at each call.
        self.api_style = adapter_for(api_style).style if api_style is not None else None
        self.session = uuid.uuid4().hex
        self._lock = threading.RLock()
        self._journals: dict[str, Journal] = {}
        #: One handle per job while anything holds it (the poller holds the tracked ones);
        #: weak, so paging through a long history does not keep every handle forever.
        self._live: weakref.WeakValueDictionary[str, Job] = weakref.WeakValueDictionary()
        #: The embedded emulator of each wire style (started on first use).
        self._emulators: dict[str, Any] = {}
        self._recovered: set[str] = set()
        #: Keys used with each relay in this process (memory only): an old job is polled
        #: with the key of its own relay, never with the key of the relay in use now.
        self._keys: dict[str, APIKey] = {}
        self._pid = os.getpid()
        self._interned: dict[object, Any] = {}

    # -- plumbing -------------------------------------------------------------------------

    def _check_fork(self) -> None:
        """A forked child keeps none of its parent's handles: the parent's submits in
        flight are the parent's (adopting one would POST it again)."""
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self.session = uuid.uuid4().hex
            self._live = weakref.WeakValueDictionary()
            self._journals = {}
            self._lock = threading.RLock()

    def _one(self, value: _Shared) -> _Shared:
        """The one equal object this Studio already holds (a backend, a folder): thousands
        of handles share it instead of each carrying copies for the garbage collector."""
        with self._lock:
            return cast(_Shared, self._interned.setdefault(value, value))

    def journal(self, current: Settings | None = None) -> Journal:
        current = current or settings()
        location = current.journal_location
        with self._lock:
            self._check_fork()
            journal = self._journals.get(location)
            if journal is None:
                journal = self._journals[location] = open_journal(location)
            if location not in self._recovered:
                self._recovered.add(location)
                journal.recover_interrupted_submits()
            return journal

    def emulator_url(self, current: Settings | None = None, style: str | None = None) -> str:
        """Start the embedded emulator of a wire style once (its tasks persist under
        SORA_WIDGETS_HOME: ``emulator/`` for the seed's style, ``emulator-<style>/``)."""
        current = current or settings()
        style = style or self.style(current)
        with self._lock:
            emulator = self._emulators.get(style)
            if emulator is None:
                from sora_widgets.emulator import EmulatorConfig, start_emulator

                folder = "emulator" if style == "artifex" else f"emulator-{style}"
                config = EmulatorConfig(time_scale=current.emulator_time_scale,
                                        state_dir=current.home / folder,
                                        style=cast(Any, style))
                emulator = self._emulators[style] = start_emulator(config, host="127.0.0.1",
                                                                   port=0)
                log.info("local emulator (%s style) started at %s", style, emulator.base_url)
            else:
                emulator.config.time_scale = current.emulator_time_scale
            return str(emulator.base_url)

    def backend(self, current: Settings | None = None, *, base_url: str | None = None) -> Backend:
        """The backend new jobs go to now (the emulator when no key is set)."""
        current = current or settings()
        problem = missing_key_problem(current, base_url)
        if problem:
            raise ValidationError(problem, field="api_key")
        style = self.style(current)
        if current.uses_emulator:
            return self._emulator_backend(current, style=style)
        url = (base_url or preferences.base_url_or(current)).rstrip("/")
        warn_if_cleartext(url)   # here, on the caller's thread, before anything is sent
        assert current.api_key is not None
        with self._lock:
            self._keys[url] = current.api_key
        return self._relay_backend(url, current.api_key, current, style)

    def _emulator_backend(self, current: Settings, *, start: bool = True,
                          style: str = "artifex") -> Backend:
        """The embedded emulator's backend; ``start=False`` (history, reprs) starts no
        server: its URL is filled in when the job is tracked."""
        url = self.emulator_url(current, style) if start else ""
        return self._one(Backend(url, EMULATOR_KEY, emulator=True,
                                 time_scale=current.emulator_time_scale,
                                 download_timeout=current.download_timeout,
                                 max_video_bytes=current.max_video_bytes, style=style))

    def _relay_backend(self, url: str, key: APIKey | None, current: Settings,
                       style: str = "artifex") -> Backend:
        return self._one(Backend(url, key, emulator=False, time_scale=current.poll_scale,
                                 timeout=current.http_timeout,
                                 download_timeout=current.download_timeout,
                                 max_video_bytes=current.max_video_bytes, style=style))

    def _backend_of(self, record: JobRecord, current: Settings) -> tuple[Backend, str | None]:
        """The backend of an existing job, with the key of *its* relay, or a reason why
        this process cannot poll it now. The job's wire style is its request's."""
        style = record.video_request.style
        if record.emulator:
            return self._emulator_backend(current, start=False, style=style), None
        url = record.backend
        key = current.api_key if (current.api_key is not None and
                                  current.base_url.rstrip("/") == url) else None
        with self._lock:
            key = key or self._keys.get(url)
        if key is None:
            return self._relay_backend(url, None, current, style), (
                f"this job belongs to the relay {url}, whose key is not set now: it is not "
                "polled (another relay's key is never sent to it). Set SORA_BASE_URL to "
                "that relay and its SORA_API_KEY, then sw.resume()")
        return self._relay_backend(url, key, current, style), None

    def _handle(self, record: JobRecord, current: Settings) -> Job:
        """The live handle for a journal row (one handle per job in this process)."""
        with self._lock:
            self._check_fork()
            job = self._live.get(record.local_id)
            if job is None:
                backend, problem = self._backend_of(record, current)
                job = Job.from_record(record, backend, self.journal(current),
                                      self._one(current.videos_dir))
                job._studio = self
                if problem and not job.settled:
                    job._detach(problem)      # not polled here: another relay's key is unknown
                self._live[record.local_id] = job
            return job

    @staticmethod
    def limits(current: Settings | None = None, *, confirm: bool = False) -> Limits:
        """The caps in force now (SORA_*BUDGET_USD); ``confirm``: no confirmation asked."""
        current = current or settings()
        return Limits(session_usd=current.budget_usd, daily_usd=current.daily_budget_usd,
                      team_usd=current.team_budget_usd,
                      confirm_usd=None if confirm else current.confirm_usd)

    def style(self, current: Settings | None = None) -> str:
        """The wire style new jobs of this studio use now."""
        return self.api_style or api_style(current)

    # -- money ------------------------------------------------------------------------------

    def quote(self, request: VideoRequest, n: int = 1, *, force: bool = False,
              confirm: bool = False, base_url: str | None = None) -> Quote:
        """What ``submit(request, n)`` would pay now (new jobs × price, reused ones free),
        and its ``refusal`` (a cap, a confirmation) if it would be refused; ``require``
        raises that refusal."""
        return self.quote_many([request] * n, force=force, confirm=confirm, base_url=base_url)

    def quote_many(self, requests: Sequence[VideoRequest], *, force: bool = False,
                   confirm: bool = False, base_url: str | None = None) -> Quote:
        """The quote of one call that submits several requests (a sweep, a storyboard)."""
        current = settings()
        backend = self.backend(current, base_url=base_url)
        for request in requests:
            _check_style(request, backend)
        return self.journal(current).quote_many(
            items=self._items(requests, current, emulator=backend.emulator),
            backend=backend.journal_name, emulator=backend.emulator, session=self.session,
            force=force, limits=self.limits(current, confirm=confirm))

    @staticmethod
    def require(quote: Quote) -> Quote:
        """``quote``, or its refusal raised (``BudgetExceededError``,
        ``ConfirmationRequired``) with the very class and words ``submit`` raises."""
        return quote.require()

    def submit(self, request: VideoRequest, n: int = 1, *, force: bool = False,
               confirm: bool = False, base_url: str | None = None,
               parent_id: str | None = None) -> list[Job]:
        """``n`` jobs of ``request``: earlier identical ones reused (free) unless ``force``,
        the rest paid — all decided in one journal transaction, before any POST.

        Raises ``BudgetExceededError`` (a cap would be passed) or ``ConfirmationRequired``
        (new charges of more than one job pass SORA_CONFIRM_USD and ``confirm`` is false);
        nothing is sent then.
        """
        if not 1 <= n <= 100:
            raise ValidationError(f"n: between 1 and 100, not {n}", field="n")
        return self.submit_many([request] * n, force=force, confirm=confirm,
                                base_url=base_url, parent_id=parent_id)

    def submit_many(self, requests: Sequence[VideoRequest], *, force: bool = False,
                    confirm: bool = False, base_url: str | None = None,
                    parent_id: str | None = None) -> list[Job]:
        """One job per request, in order, through one atomic journal step (identical
        requests in the list are counted together: ``[r, r]`` is ``submit(r, 2)``)."""
        if not requests:
            return []
        current = settings()
        backend = self.backend(current, base_url=base_url)
        for request in requests:
            _check_style(request, backend)
            request.check_sendable()      # a hostile journal row is shown, never sent
        journal = self.journal(current)
        items = self._items(requests, current, emulator=backend.emulator)
        claims = journal.claim_many(
            items=items, backend=backend.journal_name, emulator=backend.emulator,
            session=self.session, force=force, limits=self.limits(current, confirm=confirm),
            parent_id=parent_id, user=current.user, host=current.host,
            new_ids=[uuid.uuid4().hex for _ in requests])
        by_fingerprint: dict[str, list[Job]] = {}
        videos = self._one(current.videos_dir)
        for (request, _, _), claim in zip(items, claims, strict=True):
            jobs = by_fingerprint.setdefault(request.fingerprint(), [])
            for record in claim.reused:
                job = self._handle(record, current)
                job.cached = True
                jobs.append(self.track(job))
            with self._lock:
                for record in claim.created:
                    job = Job.from_record(record, backend, journal, videos)
                    job._studio = self
                    self._live[record.local_id] = job
                    poller().submit(job)
                    jobs.append(job)
        return [by_fingerprint[r.fingerprint()].pop(0) for r in requests]

    @staticmethod
    def _items(requests: Sequence[VideoRequest], current: Settings, *,
               emulator: bool) -> list[tuple[VideoRequest, int, float]]:
        """Identical requests counted together, first appearance first, each priced (a
        paid relay is never sent a request priced $0)."""
        counts: dict[str, tuple[VideoRequest, int]] = {}
        for request in requests:
            known = counts.get(request.fingerprint())
            counts[request.fingerprint()] = (request, known[1] + 1 if known else 1)
        return [(request, n, paid_price(price_of(request, current), emulator=emulator,
                                        what=f"{request.model} ({request.style})"))
                for request, n in counts.values()]

    def generate(
        self,
        prompt: str | None = None,
        *,
        aspect_ratio: str | None = None,
        image: str | Path | Iterable[str | Path] | None = None,
        model: str | None = None,
        duration: int | None = None,
        seconds: int | str | None = None,
        size: str | None = None,
        wait: bool = False,
        force: bool = False,
        timeout: float | None = None,
        base_url: str | None = None,
    ) -> Job:
        """Submit one video job and return its handle at once (the POST runs in the
        background). An identical earlier request returns the earlier job: no POST, no
        charge, unless ``force=True``.

        ``seconds`` and ``size`` where the relay's style allows them (the catalogue says
        which; a request outside it is refused before anything is sent); ``aspect_ratio``
        picks the style's size when no ``size`` is given; ``duration`` is ``seconds``."""
        current = settings()
        request = VideoRequest.create(prompt, aspect_ratio=aspect_ratio, image=image,
                                      model=model or preferences.model_or(current),
                                      duration=duration, seconds=seconds, size=size,
                                      style=self.style(current))
        job = self.submit(request, 1, force=force,
                          base_url=base_url.rstrip("/") if base_url else None)[0]
        if wait:
            job.wait(timeout)
        return job

    def continue_from(self, parent: Job, prompt: str, *, model: str | None = None,
                      force: bool = False, confirm: bool = False, wait: bool = False,
                      timeout: float | None = None) -> Job:
        """A job whose first-frame image is the last frame of ``parent`` (saved first if
        needed), in the parent's aspect ratio, its parent recorded for lineage.

        The frame goes inline as a ``data:image/jpeg`` URI; relays that take only http(s)
        links get it through ``SORA_IMAGE_UPLOADER=module:function`` (called with the JPEG's
        path, returning its URL)."""
        if parent.status != Status.COMPLETED:
            raise SoraError(f"job {parent.id or parent.local_id} is {parent.status}: only a "
                            "completed clip can be continued")
        video = parent.download()
        current = settings()
        request = continuation_request(
            parent, prompt, image=first_frame_image(video, current.image_uploader),
            model=model, style=self.style(current))
        job = self.submit(request, 1, force=force, confirm=confirm,
                          parent_id=parent.local_id)[0]
        if wait:
            job.wait(timeout)
        return job

    def track(self, job: Job) -> Job:
        """Follow a job again if it still needs the relay (or another process's submit);
        fetch a finished video that is not on this machine (a teammate's job, a deleted
        file) from a fresh link — never by paying again."""
        if job.tracking or job._backend.key is None:
            return job
        missing = (job.settled and job.status == Status.COMPLETED and job.local_path is None
                   and job.id is not None)
        if job.settled and not missing:
            return job
        if job.emulator and not job._backend.base_url:
            job._backend = self._emulator_backend(settings(), style=job._backend.style)
        if missing:
            poller().fetch(job)
        else:
            poller().track(job)
        return job

    # -- history ----------------------------------------------------------------------------

    def jobs(self, limit: int | None = None, *, starred: bool | None = None,
             search: str | None = None, status: str | None = None,
             offset: int = 0, team: bool = False) -> list[Job]:
        """History from the journal, newest first (no server started, no file written):
        this user's jobs (SORA_USER), or everyone's on a shared journal with ``team``."""
        current = settings()
        records = self.journal(current).history(limit, starred=starred, search=search,
                                                status=status, offset=offset,
                                                user=None if team else current.user)
        return [self._handle(r, current) for r in records]

    def get(self, ref: str) -> Job:
        """A past job by task id or local id (or a unique prefix)."""
        current = settings()
        record = self.journal(current).find(ref)
        if record is None:
            raise SoraError(f"no job {ref!r} in the journal")
        return self._handle(record, current)

    def resume(self) -> list[Job]:
        """Re-attach every journal job that still needs the relay; never resubmits."""
        current = settings()
        journal = self.journal(current)
        journal.recover_interrupted_submits()
        return [self.track(self._handle(r, current)) for r in journal.unfinished()]

    def unfinished(self) -> list[Job]:
        current = settings()
        return [self._handle(r, current) for r in self.journal(current).unfinished()]

    def team_spend(self) -> list[dict[str, Any]]:
        """Spend per user and UTC day this month, everyone on this journal."""
        return self.journal().spend_by_user_day(utc_month_start(time.time()))

    def spend(self) -> dict[str, Spend]:
        journal = self.journal()
        return {"session": journal.spend(self.session), "all_time": journal.spend()}

    def close(self) -> None:
        """Stop the poller and the embedded emulator (tests; interpreter exit does it too)."""
        poller().stop()
        with self._lock:
            for emulator in self._emulators.values():
                emulator.stop()
            self._emulators.clear()
            for journal in self._journals.values():
                journal.close()
            self._journals.clear()
            self._live.clear()
            self._recovered.clear()


def _check_style(request: VideoRequest, backend: Backend) -> None:
    """A request is checked against one style's catalogue: it goes only to that style."""
    if request.style != backend.style:
        where = "the local emulator" if backend.emulator else backend.base_url
        raise ValidationError(
            f"style: this request was made for the {request.style} style, but {where} speaks "
            f"{backend.style} now (SORA_API_STYLE / %config SoraMagics.api_style); make it "
            "again; nothing was sent", field="style")


_default: Studio | None = None
_default_lock = threading.Lock()


def default_studio() -> Studio:
    global _default
    with _default_lock:
        if _default is None:
            _default = Studio()
        return _default
