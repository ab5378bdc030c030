"""A storyboard being made: its observable state and the driver thread that makes it,
shot after shot (the money rules of storyboards are in :mod:`sora_widgets.studio.storyboard`,
which makes and resumes them).

The driver only sets the board's traits (``stage``, ``current``, ``jobs``, ``film_path``,
``error``); every change is saved in the journal's plan first. Core module: no IPython,
no ipywidgets (views live in ``ui/``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from traitlets import HasTraits, Instance, Int, List, Unicode

from sora_widgets.core import presenters
from sora_widgets.core.errors import SoraError
from sora_widgets.core.lifecycle import Charge, Status
from sora_widgets.core.models import Quote, VideoRequest
from sora_widgets.core.settings import settings
from sora_widgets.engine.job import Job
from sora_widgets.studio.continuation import continuation_request
from sora_widgets.studio.film import stitch

if TYPE_CHECKING:
    from sora_widgets.studio.studio import Studio

__all__ = ["ACTIVE", "ACTIVE_LOCK", "ENDED", "KIND", "PLAN_VERSION", "Stage", "Storyboard"]

log = logging.getLogger("sora_widgets.studio.storyboard")

#: The journal's plan kind for storyboards.
KIND = "storyboard"
PLAN_VERSION = 1
#: How often a waiting driver looks at its stop flag (it wakes at once when a job settles).
_WAIT_SLICE = 0.25


class Stage(str, Enum):
    """Where a storyboard is (its own words: a job's status words live in ``lifecycle``)."""

    PLANNED = "planned"          # quoted and saved; the driver has not started yet
    SHOOTING = "shooting"        # submitting or waiting for shots
    STITCHING = "stitching"      # every shot is done: joining them
    READY = "ready"              # the film is written
    STOPPED = "stopped"          # a shot failed (or could not be sent): the chain stopped
    INTERRUPTED = "interrupted"  # this process stopped driving it: resume continues

    def __str__(self) -> str:
        return str(self.value)


#: Stages after which the driver is gone.
ENDED = (Stage.READY, Stage.STOPPED, Stage.INTERRUPTED)

#: The storyboards this process is making now, by plan id.
ACTIVE: dict[str, Storyboard] = {}
ACTIVE_LOCK = threading.Lock()


class Storyboard(HasTraits):
    """A storyboard being made: observable state, ``wait()``, the film.

    Traits are set by the driver thread only (and by the jobs' own events): observe them,
    don't print from an observer.
    """

    plan_id = Unicode()
    stage = Unicode(Stage.PLANNED.value)
    #: The shot being worked on (0-based).
    current = Int(0)
    #: One entry per shot: its job, or None while it has none.
    jobs: List[Job | None] = List()
    film_path = Instance(Path, allow_none=True)
    #: Why the chain stopped (which shot, why, what was paid), or None.
    error = Unicode(None, allow_none=True)

    def __init__(self, studio: Studio, plan_id: str, body: dict[str, Any]) -> None:
        super().__init__(plan_id=plan_id)
        self._studio = studio
        self._body = body
        self._lock = threading.RLock()
        self._ended = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_failed = False
        self._force_new = bool(body.get("force"))
        #: What the whole storyboard costs, said before anything was sent.
        self.quote: Quote | None = None
        self.jobs = [None] * len(self.shots)

    # -- what it is ---------------------------------------------------------------------------

    @property
    def shots(self) -> list[str]:
        """The shots' prompts, in order."""
        return [str(shot["prompt"]) for shot in self._body["shots"]]

    @property
    def aspect_ratio(self) -> str:
        return str(self._body["request"].get("aspect_ratio", "16:9"))

    @property
    def model(self) -> str:
        return str(self._body["model"])

    @property
    def film(self) -> Path:
        """Where the film is (or will be) written."""
        return Path(self._body["film"])

    @property
    def finished(self) -> bool:
        """The driver is gone: ready, stopped or interrupted."""
        return self._ended.is_set()

    @property
    def cost_usd(self) -> float:
        """What the shots so far cost ("maybe" charges count; reused shots were paid once)."""
        return round(sum(float(job.cost_usd) for job in self.jobs if job is not None), 2)

    def on_change(self, callback: Callable[[Storyboard], None]) -> None:
        """Call ``callback(board)`` after every change of stage, shot or job (driver thread)."""
        self.observe(lambda change: callback(change["owner"]),
                     names=["stage", "current", "jobs"])

    # -- waiting ------------------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> Storyboard:
        """Block until the film is ready; raise ``SoraError`` if the chain stopped."""
        if not self._ended.wait(timeout):
            raise TimeoutError(f"storyboard not finished after {timeout} s (shot "
                               f"{self.current + 1} of {len(self.shots)}); it keeps going: "
                               "call wait() again")
        if self.stage != Stage.READY:
            raise SoraError(self.error or f"the storyboard is {self.stage}")
        return self

    def stop(self) -> None:
        """Stop driving: no further shot is submitted here (a running shot keeps running on
        the relay, and is paid). The plan stays unfinished: ``%sora resume`` continues it."""
        self._stop.set()

    # -- display ------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return (f"<Storyboard {self.plan_id[:12]} {self.stage} shot {self.current + 1}/"
                f"{len(self.shots)} {self.aspect_ratio}>")

    def _repr_html_(self) -> str | None:
        return presenters.html("storyboard", self)

    def _ipython_display_(self) -> None:
        """In a notebook: live rows per shot, then the film playing (as the magic shows)."""
        presenters.display("storyboard", self)

    # -- the plan -----------------------------------------------------------------------------

    def save_plan(self, *, done: bool = False, jobs: Sequence[Job | None] | None = None,
                   stage: str | None = None, error: str | None = None) -> None:
        """Write the plan (the journal first: observers hear of a change after it is saved)."""
        with self._lock:
            self._body["stage"] = stage or self.stage
            self._body["error"] = error if stage else self.error
            for shot, job in zip(self._body["shots"], jobs or self.jobs, strict=True):
                if job is not None:
                    shot["job"] = job.local_id
                    shot["parent"] = job.parent_id
            body = json.loads(json.dumps(self._body))
        self._studio.journal().save_plan(self.plan_id, KIND, body,
                                         session=self._studio.session, done=done)

    def _recorded(self, index: int) -> Job | None:
        """The job the plan says made shot ``index`` (re-attached if it still runs)."""
        local_id = self._body["shots"][index].get("job")
        if not local_id:
            return None
        try:
            job = self._studio.get(str(local_id))
        except SoraError:
            log.warning("storyboard %s: the job of shot %d (%s) is not in this journal",
                        self.plan_id[:12], index + 1, local_id)
            return None
        return job

    def _first_request(self) -> VideoRequest:
        return VideoRequest.from_json(self._body["request"])

    # -- quoting --------------------------------------------------------------------------

    def take_quote(self, *, confirm: bool, refuse: bool) -> Quote:
        """The quote of every shot still to make; raise if refused (``refuse``)."""
        requests: list[VideoRequest] = []
        force = self._force_new
        parent: Job | None = None
        for index, prompt in enumerate(self.shots):
            job = None if force else self._recorded(index)
            if job is not None and not _failed(job):
                requests.append(job.request)           # made (or being made): reused
            elif job is None and index == 0:
                requests.append(self._first_request())  # new, unless an identical one exists
            elif job is None and parent is not None and not force and _usable(parent):
                requests.append(_continuation(parent, prompt, self.model,
                                              self._studio.style())
                                or _placeholder(self._first_request(), prompt))
            else:
                requests.append(_placeholder(self._first_request(), prompt))
            parent = job
        quote = self._studio.quote_many(requests, force=force, confirm=confirm)
        if refuse:
            self._studio.require(quote)      # the class and words submit would raise
        self.quote = quote
        return quote

    # -- the driver ---------------------------------------------------------------------------

    def start(self, *, retry_failed: bool) -> None:
        self._retry_failed = retry_failed
        with ACTIVE_LOCK:
            ACTIVE[self.plan_id] = self
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"sora-widgets-storyboard-{self.plan_id[:8]}")
        self._thread.start()

    def _run(self) -> None:
        try:
            self._drive()
        except Exception as exc:   # a bug must end in a clear state, not a silent thread
            log.exception("storyboard %s: the driver failed", self.plan_id[:12])
            self._end(Stage.STOPPED, f"the storyboard stopped at shot {self.current + 1}: "
                      f"internal error ({type(exc).__name__}: {exc}); "
                      f"{self._paid_words()}", done=False)
        finally:
            with ACTIVE_LOCK:
                if ACTIVE.get(self.plan_id) is self:
                    del ACTIVE[self.plan_id]
            self._ended.set()

    def _drive(self) -> None:
        self.stage = Stage.SHOOTING.value
        parent: Job | None = None
        for index in range(len(self.shots)):
            self.current = index
            if self._stop.is_set():       # checked after telling observers: they may stop it
                self._interrupted()
                return
            job = self._job_for(index, parent)
            if job is None:
                return                      # ended (stopped, refused, or interrupted)
            if not self._wait_for(index, job):
                return
            parent = job
        self._finish()

    def _job_for(self, index: int, parent: Job | None) -> Job | None:
        """The shot's job: the recorded one (re-attached), or a new submit."""
        job = None if self._force_new else self._recorded(index)
        retry = False
        if job is not None and _failed(job):
            if not self._retry_failed:
                self._failed(index, job, resumed=True)
                return None
            job, retry = None, True         # a re-run retries it (quoted as new)
        if job is not None:
            if job.settled and job.status == Status.COMPLETED:
                job.reused = True           # made by an earlier run: showing it is free
            self._studio.track(job)
            if not job.settled and not job.tracking:    # e.g. its relay's key is not set
                self._interrupted(f"shot {index + 1} of {len(self.shots)} cannot be "
                                  f"followed here: {job.notice or 'it is not tracked'}")
                return None
        else:
            try:
                job = self._submit(index, parent, force=self._force_new or retry)
            except SoraError as exc:       # refused before sending: nothing paid for it
                self._end(Stage.STOPPED, f"shot {index + 1} of {len(self.shots)} was not "
                          f"sent: {exc}. {self._paid_words()}. Run the storyboard again "
                          "(or %sora resume) to continue from this shot.", done=False)
                return None
            if job.reused and _failed(job):
                self._set_job(index, job)
                self._failed(index, job, resumed=False)
                return None
        self._set_job(index, job)
        return job

    def _submit(self, index: int, parent: Job | None, *, force: bool) -> Job:
        if index == 0:
            return self._studio.submit(self._first_request(), 1, force=force,
                                       confirm=True)[0]
        assert parent is not None
        return self._studio.continue_from(parent, self.shots[index], model=self.model,
                                          force=force, confirm=True)

    def _set_job(self, index: int, job: Job) -> None:
        jobs = list(self.jobs)
        jobs[index] = job
        self.save_plan(jobs=jobs)          # the journal first: a crash from here keeps it
        self.jobs = jobs                    # a new list: observers hear of it

    def _wait_for(self, index: int, job: Job) -> bool:
        """Wait for the shot's job to settle; False when the chain ends here."""
        while not job.finished:
            if self._stop.is_set():
                self._interrupted()
                return False
            # A timeout, or the job's own error: its state is looked at below either way.
            with contextlib.suppress(TimeoutError, SoraError):
                job.wait(_WAIT_SLICE)
        if job.status == Status.COMPLETED and job.local_path is not None:
            return True
        if job.done and job.status != Status.COMPLETED:
            self._failed(index, job, resumed=False)
            return False
        if job.status == Status.COMPLETED:     # its video could not be saved (yet)
            try:
                job.download()
                return True
            except SoraError as exc:
                why = f"its video could not be saved ({exc})"
        else:
            why = job.notice or "this process stopped tracking it"
        self._interrupted(f"shot {index + 1} of {len(self.shots)} is not finished here: "
                          f"{why}. %sora resume (or resume_storyboards()) continues.")
        return False

    def _finish(self) -> None:
        self.current = len(self.shots) - 1
        self.stage = Stage.STITCHING.value
        jobs = [job for job in self.jobs if job is not None]
        film = self.film
        stitched = self._body.get("stitched")
        if not (stitched == [job.local_id for job in jobs] and film.is_file()):
            stitch(jobs, film)
            self._body["stitched"] = [job.local_id for job in jobs]
        self.film_path = film
        self._end(Stage.READY, None, done=True)

    def _end(self, stage: Stage, error: str | None, *, done: bool) -> None:
        try:
            self.save_plan(done=done, stage=stage.value, error=error)
        except Exception:
            log.exception("storyboard %s: could not save the plan", self.plan_id[:12])
        with self.hold_trait_notifications():
            self.error = error
            self.stage = stage.value
        if error:
            log.warning("storyboard %s: %s", self.plan_id[:12], error)

    def _interrupted(self, why: str | None = None) -> None:
        self._end(Stage.INTERRUPTED, why or (
            f"stopped before shot {self.current + 1} of {len(self.shots)}; "
            "%sora resume (or resume_storyboards()) continues"), done=False)

    def _failed(self, index: int, job: Job, *, resumed: bool) -> None:
        n = len(self.shots)
        reason = job.error or "no message from the relay"
        if job.status == Status.UNKNOWN:
            reason = f"the submit's answer was lost, so it may have been charged ({reason})"
        retry = (f"Run the same storyboard again to retry from shot {index + 1}"
                 + (f": shots 1-{index} are reused free" if index else "")
                 + f", shot {index + 1} onwards are new charges (quoted first).")
        earlier = " (it had failed before this resume)" if resumed else ""
        self._end(Stage.STOPPED, f"shot {index + 1} of {n} failed{earlier}: {reason}. The "
                  f"chain stopped there. {self._paid_words()}. {retry}", done=True)

    def _paid_words(self) -> str:
        jobs = [job for job in self.jobs if job is not None]
        if jobs and all(job.emulator for job in jobs):
            return "Paid: nothing (local emulator)"
        charged = [job for job in jobs if job.cost_usd > 0]
        if not charged:
            return "Paid: nothing so far"
        maybe = sum(1 for job in charged if job.charge == Charge.MAYBE)
        return (f"Paid so far: ${self.cost_usd:.2f} for {len(charged)} shot(s)"
                + (f", {maybe} of them maybe (answer lost)" if maybe else ""))


def _failed(job: Job) -> bool:
    """The relay will do nothing more for it and there is no clip: failed or unknown."""
    return job.done and job.status != Status.COMPLETED


def _usable(job: Job) -> bool:
    """A finished clip on disk whose continuation request can be built here (an uploader
    would be called, and paid for, by the real submit only)."""
    return (job.status == Status.COMPLETED and job.local_path is not None
            and not settings().image_uploader)


def _continuation(parent: Job, prompt: str, model: str, style: str) -> VideoRequest | None:
    """The request ``Studio.continue_from`` will send (the same builder), so the cache can
    say 'reused' in the quote; None when it cannot be built here (the quote then counts
    the shot as new, which errs on the side of asking)."""
    from sora_widgets.media.frames import last_frame_data_uri

    assert parent.local_path is not None
    try:
        return continuation_request(parent, prompt, style=style, model=model,
                                    image=last_frame_data_uri(parent.local_path))
    except (SoraError, OSError) as exc:
        log.info("storyboard quote: shot request not built (%s): counted as new", exc)
        return None


def _placeholder(first: VideoRequest, prompt: str) -> VideoRequest:
    """A request counted as new at the shot's price (the chain's model, shape and length),
    never sent: the real one needs the parent's last frame, which does not exist yet."""
    return replace(first, prompt=f"{prompt[:200]} [storyboard shot, not sent: "
                                 f"{uuid.uuid4().hex}]", images=())
