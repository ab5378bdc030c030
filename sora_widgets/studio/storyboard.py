"""Storyboards: shot after shot, each starting from the last frame of the one before, then
one film of them all.

``storyboard(["a fox wakes up", "the fox runs", "the fox jumps into the river"])`` makes
shot 1 from its prompt (and an optional first-frame image), then each next shot with
``Studio.continue_from`` on the shot before it, and finally stitches the clips into one
mp4. It returns a :class:`Storyboard` at once; a driver thread does the rest and only sets
the board's traits (``stage``, ``current``, ``jobs``, ``film_path``, ``error``), so a
notebook never blocks and a view can follow along.

Money, and why it is arranged so:

* The quote of the **whole** storyboard is taken, and refused (``ConfirmationRequired``,
  ``BudgetExceededError``), before anything is sent. Shot 1's real request is quoted; a
  later shot's request needs its parent's last frame, so it is quoted as new unless the
  parent is already finished (then its real request is built and the cache decides).
* The plan (shots, the job that made each, parent links, the film's path) is saved in the
  journal (``kind="storyboard"``) before the first submit and again each time a shot gets
  its job. A crash or a restart loses nothing: :func:`resume_storyboards` (``%sora resume``)
  continues every unfinished plan. A shot whose job is recorded is never submitted again;
  a shot whose parent is still running waits for it. A resumed shot is submitted without
  ``force``, so even a crash between the submit and the plan's update reuses that submit.
* A shot that fails stops the chain with a message saying which shot, why, and what the
  shots so far cost. Running the same storyboard again reuses the finished shots (free)
  and submits again from the failed one (quoted as a new charge first); a resume never
  re-pays a failed shot by itself.

The plan's id is derived from the storyboard (shot 1's request, the later prompts, the
model, the relay), so running the same cell again finds its plan. ``force=True`` starts a
new take of every shot (all quoted as new) under the same id.

Core module: no IPython, no ipywidgets (views live in ``_storyboard_view``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sys
import threading
import types
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from traitlets import HasTraits, Instance, Int, List, Unicode

from sora_widgets.core import presenters
from sora_widgets.core.errors import SoraError, ValidationError
from sora_widgets.core.lifecycle import Charge, Status
from sora_widgets.core.models import Quote, VideoRequest
from sora_widgets.core.settings import preferences, settings
from sora_widgets.engine.job import Job
from sora_widgets.studio.continuation import continuation_request

if TYPE_CHECKING:
    from sora_widgets.studio.studio import Studio

__all__ = ["KIND", "MAX_SHOTS", "Stage", "Storyboard", "resume_storyboards", "stitch",
           "storyboard"]

log = logging.getLogger("sora_widgets.studio.storyboard")

#: The journal's plan kind for storyboards.
KIND = "storyboard"
PLAN_VERSION = 1
MAX_SHOTS = 50
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

_active: dict[str, Storyboard] = {}
_active_lock = threading.Lock()


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

    def _save_plan(self, *, done: bool = False, jobs: Sequence[Job | None] | None = None,
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

    def _take_quote(self, *, confirm: bool, refuse: bool) -> Quote:
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

    def _start(self, *, retry_failed: bool) -> None:
        self._retry_failed = retry_failed
        with _active_lock:
            _active[self.plan_id] = self
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
            with _active_lock:
                if _active.get(self.plan_id) is self:
                    del _active[self.plan_id]
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
                job.cached = True           # made by an earlier run: showing it is free
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
            if job.cached and _failed(job):
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
        self._save_plan(jobs=jobs)          # the journal first: a crash from here keeps it
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
            self._save_plan(done=done, stage=stage.value, error=error)
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


def _plan_id(request: VideoRequest, shots: Sequence[str], model: str, backend: str) -> str:
    """The same storyboard gets the same plan (a re-run finds its shots)."""
    canonical = json.dumps({"first": request.fingerprint(), "shots": list(shots[1:]),
                            "model": model, "backend": backend}, sort_keys=True)
    return "sb-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _find_plan(studio: Studio, plan_id: str) -> dict[str, Any] | None:
    for found, body in studio.journal().plans(KIND, done=None):
        if found == plan_id and body.get("version") == PLAN_VERSION:
            return body
    return None


def _check_shots(shots: Sequence[str]) -> list[str]:
    if isinstance(shots, (str, bytes)):
        raise ValidationError("shots: a list of prompts, one per shot (not one string)",
                              field="shots")
    prompts = []
    for index, shot in enumerate(shots):
        if not isinstance(shot, str) or not shot.strip():
            raise ValidationError(f"shot {index + 1}: needs a prompt", field="shots")
        prompts.append(shot.strip())
    if not prompts:
        raise ValidationError("shots: give at least one shot", field="shots")
    if len(prompts) > MAX_SHOTS:
        raise ValidationError(f"shots: at most {MAX_SHOTS}, not {len(prompts)}", field="shots")
    return prompts


def storyboard(shots: Sequence[str], *, aspect_ratio: str = "16:9",
               image: str | Path | Sequence[str | Path] | None = None,
               model: str | None = None, force: bool = False, confirm: bool = False,
               film: str | Path | None = None) -> Storyboard:
    """Make a film shot by shot; returns a :class:`Storyboard` at once.

    Shot 1 comes from its prompt (and ``image``, its first frame), each next shot starts
    from the last frame of the one before. The whole storyboard is quoted first and
    refused before anything is sent when it passes a budget (``BudgetExceededError``) or
    ``SORA_CONFIRM_USD`` (``ConfirmationRequired``: pass ``confirm=True``). Running the
    same storyboard again reuses its finished shots for free and continues from the
    first missing one; ``force=True`` pays for a new take of every shot. The film is
    written to ``film`` (default: the videos folder under SORA_WIDGETS_HOME).
    """
    from sora_widgets.studio.studio import default_studio

    studio = default_studio()
    prompts = _check_shots(shots)
    current = settings()
    chosen = model or preferences.model_or(current)
    first = VideoRequest.create(prompts[0], aspect_ratio=aspect_ratio, image=image, model=chosen)
    for index, prompt in enumerate(prompts[1:], start=2):   # bad input fails before paying
        try:
            VideoRequest.create(prompt, aspect_ratio=aspect_ratio, model=chosen)
        except ValidationError as exc:
            raise ValidationError(f"shot {index}: {exc}", field="shots") from None
    backend = studio.backend(current).journal_name
    plan_id = _plan_id(first, prompts, chosen, backend)
    with _active_lock:
        running = _active.get(plan_id)
    if running is not None:
        if force:
            raise SoraError("this storyboard is being made right now: stop() it first, "
                            "then force a new take")
        return running          # the same storyboard is being made right now: follow it
    body = None if force else _find_plan(studio, plan_id)
    target = Path(film).expanduser().resolve() if film is not None else None
    if body is None:
        body = {
            "version": PLAN_VERSION, "request": first.to_json(), "model": chosen,
            "backend": backend, "force": bool(force),
            "shots": [{"prompt": p, "job": None, "parent": None} for p in prompts],
            "film": str(target or current.videos_dir / f"storyboard-{plan_id[3:15]}.mp4"),
        }
    else:
        body["force"] = False
        if target is not None and str(target) != body["film"]:
            body["film"] = str(target)
            body.pop("stitched", None)
    board = Storyboard(studio, plan_id, body)
    board._take_quote(confirm=confirm, refuse=True)      # raises before anything is sent
    board._save_plan()                                   # the plan exists before any POST
    board._start(retry_failed=True)
    return board


def resume_storyboards(studio: Studio | None = None) -> list[Storyboard]:
    """Continue every unfinished storyboard of the journal (after a crash or a restart).

    No shot is paid twice: a shot whose job is recorded is re-attached (and waited for),
    a missing one is submitted without ``force`` (an identical earlier submit is reused).
    A shot that had failed is not retried here: its storyboard stops and says so. Plans of
    another relay than the one in use now are left for later.
    """
    from sora_widgets.studio.studio import default_studio

    studio = studio or default_studio()
    plans = studio.journal().plans(KIND, done=False)
    if not plans:
        return []
    try:
        backend = studio.backend().journal_name
    except SoraError as exc:       # e.g. a relay URL without its key: nothing can go on now
        log.warning("%d unfinished storyboard(s) wait: %s", len(plans), exc)
        return []
    boards = []
    for plan_id, body in plans:
        if body.get("version") != PLAN_VERSION:
            continue
        with _active_lock:
            running = _active.get(plan_id)
        if running is not None:
            boards.append(running)
            continue
        if body.get("backend") != backend:
            log.info("storyboard %s belongs to %s, not %s: left for later", plan_id[:12],
                     body.get("backend"), backend)
            continue
        body["force"] = False
        board = Storyboard(studio, plan_id, body)
        try:
            board._take_quote(confirm=True, refuse=False)
        except SoraError as exc:
            log.warning("storyboard %s: no quote (%s)", plan_id[:12], exc)
        board._start(retry_failed=False)
        boards.append(board)
    return boards


def stitch(jobs: Sequence[Job | str], path: str | Path, *,
           reencode: bool | None = None) -> Path:
    """One mp4 of the jobs' clips in order (their saved videos; fetched first if needed):
    copied without re-encoding when the clips match, re-encoded otherwise; audio kept."""
    from sora_widgets.media.frames import stitch as join
    from sora_widgets.studio.studio import default_studio

    videos = []
    for index, item in enumerate(jobs):
        job = default_studio().get(item) if isinstance(item, str) else item
        if job.status != Status.COMPLETED:
            raise SoraError(f"clip {index + 1} (job {job.id or job.local_id}) is "
                            f"{job.status}: only completed clips can be stitched")
        videos.append(job.download())
    if not videos:
        raise ValidationError("stitch() needs at least one job", field="jobs")
    return join(videos, Path(path).expanduser())


class _CallableModule(types.ModuleType):
    """``sw.storyboard(...)`` keeps working once this module is imported: importing a
    submodule binds its name on the package, replacing the function ``sw.storyboard``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Storyboard:
        return storyboard(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
