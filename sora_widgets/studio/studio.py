"""The facade every UI uses, and where every money decision is taken.

``quote`` says what a call will pay (and its typed refusal, raised by ``require``);
``submit`` pays it, through one atomic journal step (cache check, caps and confirmation as
:mod:`sora_widgets.core.money` decides them, intents); ``generate`` is ``submit`` of one.
The UIs (magic, panel, CLI) never decide a money question themselves: they call these and
render what comes back (each adds its own hint to a refusal: ``--yes``, a button).

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from sora_widgets.core.catalog import Catalogue, catalogue, price_of
from sora_widgets.core.errors import SoraError, ValidationError
from sora_widgets.core.lifecycle import Status
from sora_widgets.core.models import EXTEND, REMIX, VideoRequest
from sora_widgets.core.money import Limits, Quote, paid_price
from sora_widgets.core.settings import (
    Settings,
    preferences,
    settings,
)
from sora_widgets.engine.changes import on_every_change
from sora_widgets.engine.job import Job, poller
from sora_widgets.journal import JobRecord, Journal, Spend, open_journal
from sora_widgets.journal.ledger import utc_month_start
from sora_widgets.studio.continuation import continuation_request, first_frame_image
from sora_widgets.studio.followups import follow_up_request
from sora_widgets.studio.relays import EMULATOR_KEY, Relays, check_style
from sora_widgets.studio.retire import retirement_notes

__all__ = ["EMULATOR_KEY", "Studio", "default_studio"]

log = logging.getLogger("sora_widgets.studio.studio")
class Studio(Relays):
    """Process-wide state: journals, live job handles, the embedded emulator."""

    def __init__(self, *, api_style: str | None = None) -> None:
        #: This studio's relay wire style; None: the style in force (SORA_API_STYLE,
        #: ``%config SoraMagics.api_style``), read at each call.
        super().__init__(api_style=api_style)
        self.session = uuid.uuid4().hex
        self._lock = threading.RLock()
        self._journals: dict[str, Journal] = {}
        #: One handle per job while anything holds it (the poller holds the tracked ones);
        #: weak, so paging through a long history does not keep every handle forever.
        self._live: weakref.WeakValueDictionary[str, Job] = weakref.WeakValueDictionary()
        self._recovered: set[str] = set()
        self._pid = os.getpid()
        #: Kernel-wide "a job changed" listeners (a History view): copied, iterated unlocked.
        self._listeners: tuple[Callable[[Job], None], ...] = ()
        #: Unsubscribes from the engine's every-handle hook while anyone listens here.
        self._unhook: Callable[[], None] | None = None

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

    def _handle(self, record: JobRecord, current: Settings) -> Job:
        """The live handle for a journal row (one handle per job in this process)."""
        with self._lock:
            self._check_fork()
            job = self._live.get(record.local_id)
            if job is None:
                backend, problem = self._backend_of(record, current)
                job = Job.from_record(record, backend, self.journal(current),
                                      self._one(current.videos_dir))
                job.bind(self)
                if problem and not job.settled:
                    job.detach(problem)      # not polled here: another relay's key is unknown
                self._live[record.local_id] = job
            return job

    def on_job_change(self, listener: Callable[[Job], None]) -> Callable[[], None]:
        """Call ``listener(job)`` after each transition of any job this studio hands out
        (the panel's, ``%sora``'s, ``sw.generate``'s), from the engine's events thread:
        it must be quick and never block. Returns the function that unsubscribes."""
        with self._lock:
            self._listeners = (*self._listeners, listener)
            if self._unhook is None:      # the engine's hook, held only while someone listens
                self._unhook = on_every_change(self._job_changed)

        def unsubscribe() -> None:
            with self._lock:
                self._listeners = tuple(f for f in self._listeners if f is not listener)
                if not self._listeners and self._unhook is not None:
                    self._unhook()
                    self._unhook = None
        return unsubscribe

    def _job_changed(self, job: Job) -> None:
        if job.studio is not self:
            return
        for listener in self._listeners:
            try:
                listener(job)
            except Exception:
                log.exception("a job-change listener failed")

    @staticmethod
    def limits(current: Settings | None = None, *, confirm: bool = False) -> Limits:
        """The caps in force now (SORA_*BUDGET_USD); ``confirm``: no confirmation asked."""
        current = current or settings()
        return Limits(session_usd=current.budget_usd, daily_usd=current.daily_budget_usd,
                      team_usd=current.team_budget_usd,
                      confirm_usd=None if confirm else current.confirm_usd)

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
            check_style(request, backend)
        book = catalogue(current)
        notes = retirement_notes(requests, current, emulator=backend.emulator, book=book)
        quote = self.journal(current).quote_many(
            items=self._items(requests, current, book, emulator=backend.emulator),
            backend=backend.journal_name, emulator=backend.emulator, session=self.session,
            force=force, limits=self.limits(current, confirm=confirm))
        return replace(quote, notes=notes) if notes else quote

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
        return self._submit_many(requests, settings(), force=force, confirm=confirm,
                                 base_url=base_url, parent_id=parent_id)

    def _submit_many(self, requests: Sequence[VideoRequest], current: Settings, *,
                     force: bool = False, confirm: bool = False, base_url: str | None = None,
                     parent_id: str | None = None) -> list[Job]:
        """:meth:`submit_many` with the settings the caller read for this call (each
        reading costs ~0.1 ms of environment lookups; ``generate`` already made one)."""
        if not requests:
            return []
        backend = self.backend(current, base_url=base_url)
        for request in requests:
            check_style(request, backend)
            request.check_sendable()      # a hostile journal row is shown, never sent
        book = catalogue(current)         # one read (it stats the user's file) for the call
        retirement_notes(requests, current, emulator=backend.emulator, book=book)  # 0 POSTs
        journal = self.journal(current)
        items = self._items(requests, current, book, emulator=backend.emulator)
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
                job.reused = True
                jobs.append(self.track(job))
            with self._lock:
                for record in claim.created:
                    job = Job.from_record(record, backend, journal, videos)
                    job.bind(self)
                    self._live[record.local_id] = job
                    poller().submit(job)
                    jobs.append(job)
        return [by_fingerprint[r.fingerprint()].pop(0) for r in requests]

    @staticmethod
    def _items(requests: Sequence[VideoRequest], current: Settings, book: Catalogue, *,
               emulator: bool) -> list[tuple[VideoRequest, int, float]]:
        """Identical requests counted together, first appearance first, each priced (a
        paid relay is never sent a request priced $0)."""
        counts: dict[str, tuple[VideoRequest, int]] = {}
        for request in requests:
            known = counts.get(request.fingerprint())
            counts[request.fingerprint()] = (request, known[1] + 1 if known else 1)
        return [(request, n, paid_price(price_of(request, current, book), emulator=emulator,
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
        seed: int | None = None,
        last_frame: str | Path | None = None,
        resolution: str | None = None,
        generate_audio: bool | None = None,
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
        picks the style's size when no ``size`` is given; ``duration`` is ``seconds``;
        ``seed``, ``last_frame``, ``resolution`` and ``generate_audio`` where the model
        takes them (part of the request's identity)."""
        current = settings()
        request = VideoRequest.create(prompt, aspect_ratio=aspect_ratio, image=image,
                                      model=model or preferences.model_or(current),
                                      duration=duration, seconds=seconds, size=size,
                                      seed=seed, last_frame=last_frame,
                                      resolution=resolution, generate_audio=generate_audio,
                                      style=self.style(current))
        job = self._submit_many([request], current, force=force,
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

    def remix(self, parent: Job, prompt: str, *, force: bool = False, confirm: bool = False,
              wait: bool = False, timeout: float | None = None) -> Job:
        """``parent`` remade with a changed prompt (where the relay has remix: the
        catalogue says; otherwise the error names ``continue_with``), paid like a submit."""
        return self._follow_up(parent, REMIX, prompt, None, force, confirm, wait, timeout)

    def extend(self, parent: Job, prompt: str, *, seconds: int, force: bool = False,
               confirm: bool = False, wait: bool = False, timeout: float | None = None) -> Job:
        """``parent`` carried on for ``seconds`` more (where the relay has extensions)."""
        return self._follow_up(parent, EXTEND, prompt, seconds, force, confirm, wait, timeout)

    def _follow_up(self, parent: Job, operation: str, prompt: str, seconds: int | None,
                   force: bool, confirm: bool, wait: bool, timeout: float | None) -> Job:
        request = follow_up_request(self, parent, operation, prompt, seconds)
        job = self.submit(request, 1, force=force, confirm=confirm,
                          parent_id=parent.local_id)[0]
        if wait:
            job.wait(timeout)
        return job

    def track(self, job: Job) -> Job:
        """Follow a job again if it still needs the relay (or another process's submit);
        fetch a finished video that is not on this machine (a teammate's job, a deleted
        file) from a fresh link — never by paying again."""
        if job.tracking or job.backend.key is None:
            return job
        missing = (job.settled and job.status == Status.COMPLETED and job.local_path is None
                   and job.id is not None)
        if job.settled and not missing:
            return job
        if job.emulator and not job.backend.base_url:
            job.use_backend(self._emulator_backend(settings(), style=job.backend.style))
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


_default: Studio | None = None
_default_lock = threading.Lock()


def default_studio() -> Studio:
    global _default
    with _default_lock:
        if _default is None:
            _default = Studio()
        return _default
