"""The poller's steps, one per tracking mode: submit (POST once), poll, save, watch.

Each step runs on the poller's loop for one :class:`~sora_widgets.engine.track.Track`,
decides the job's next :class:`~sora_widgets.core.lifecycle.JobState` (the pure part is
:func:`~sora_widgets.core.transition.apply_snapshot`) and hands it to the poller, which
queues it for the events thread and schedules the record's next step.

Money rules here: a POST is sent once (``post_started`` is set before it leaves); an
error raised before any byte left is not a maybe-charge; a cancel during the POST keeps
its answer; a paid job is never given up because of transient faults.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sora_widgets.core.errors import (
    APIConnectionError,
    APIError,
    NotFoundError,
    SoraError,
    SubmissionUnknown,
    ValidationError,
    kind_of,
)
from sora_widgets.core.lifecycle import (
    UNKNOWN_OUTCOME,
    JobState,
    Phase,
    RelayStatus,
    submit_charge,
)
from sora_widgets.core.models import EXTEND, TaskSnapshot, VideoRequest
from sora_widgets.core.money import billed_figure
from sora_widgets.core.retry import Backoff
from sora_widgets.core.transition import RELAY_WORDS, apply_snapshot, unrecognised_notice
from sora_widgets.engine.backend import poster_of, spritesheet_of
from sora_widgets.engine.track import Mode, Track
from sora_widgets.relay.client import MAY_BE_CHARGED, is_transient, retry_after_of

if TYPE_CHECKING:
    from sora_widgets.engine.poller import Poller

__all__ = ["REFUSED_CAP", "advance", "run_step"]

log = logging.getLogger("sora_widgets.engine.job")

#: A definite refusal (401/403/404) of a paid job: keep asking, slowly.
REFUSED_CAP = 30.0


async def run_step(poller: Poller, track: Track) -> None:
    """The record's step for its mode (a bug is logged and detaches, never kills the loop)."""
    try:
        if track.mode is Mode.SUBMIT:
            await _submit(poller, track)
        elif track.mode is Mode.POLL:
            await _poll(poller, track)
        elif track.mode is Mode.SAVE:
            await _save(poller, track)
        else:
            await _watch(poller, track)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a bug must not kill the thread that serves every job
        log.exception("unexpected error while tracking job %s", track.job.local_id)
        poller.finish(track, detach=f"internal error ({type(exc).__name__}); "
                      "sw.resume() retries")


async def _submit(poller: Poller, track: Track) -> None:
    job = track.job
    client = poller.client(job.backend)
    track.post_started = True
    state = track.state
    notice: str | None = None
    billed: dict[str, Any] = {}
    try:
        snapshot = await _post(client, job.request)
    except SubmissionUnknown as exc:
        new = state.evolve(phase=Phase.SETTLED, error_type=UNKNOWN_OUTCOME,
                           error_message=str(exc),
                           charge=submit_charge(emulator=job.emulator, answered=False))
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
                           charge=submit_charge(emulator=job.emulator, answered=False),
                           error_message=f"{MAY_BE_CHARGED} (internal error: "
                                         f"{type(exc).__name__})")
    else:
        charge = submit_charge(emulator=job.emulator, answered=True)
        new = apply_snapshot(state.evolve(task_id=snapshot.id, charge=charge,
                                          phase=Phase.POLLING), snapshot)
        track.fetch_url = snapshot.extra.get("fetch_url")
        track.hint, track.expires_at = snapshot.poll_after, snapshot.expires_at
        track.last_progress = snapshot.progress
        notice = unrecognised_notice(snapshot)
        billed = billed_of(job.billed_usd, snapshot.extra)
        log.info("submitted job %s: task id %s", job.local_id, snapshot.id)
    advance(poller, track, new, notice=notice, **billed)
    if track.detach_after_submit and poller.is_tracked(track):
        poller.drop(track)
        poller.emit(job, None, detach="tracking was cancelled after the submit; "
                                      "sw.resume() picks it up")


def billed_of(known: float | None, extra: Mapping[str, Any]) -> dict[str, Any]:
    """``{"billed_usd": x}`` when an answer reports a billed figure not yet recorded (the
    events thread writes it to the journal: from then on it is the job's cost)."""
    billed = billed_figure(extra.get("billed_usd"))
    return {"billed_usd": billed} if billed is not None and billed != known else {}


async def _post(client: Any, request: VideoRequest) -> TaskSnapshot:
    """The one POST of a job: a submit, or a remix / an extension of the task it names.
    A client without that endpoint raises before anything is sent (nothing charged)."""
    if request.source_task is None:
        snapshot: TaskSnapshot = await client.submit(request)
        return snapshot
    if request.prompt is None:
        raise ValidationError(f"{request.operation}: a prompt is needed; nothing was sent",
                              field="prompt")
    if request.operation == EXTEND:
        snapshot = await client.extend(request.source_task, request.prompt, request.duration)
    else:    # the adapter refuses before sending where its style has no such endpoint
        snapshot = await client.remix(request.source_task, request.prompt)
    return snapshot


def advance(poller: Poller, track: Track, new: JobState, **extra: Any) -> None:
    """Record a transition and decide the record's next step."""
    delay = 0.0
    polling = new.phase is Phase.POLLING and new.task_id is not None
    if polling:
        delay, eta = _next_delay(poller, track, new)
        if eta != track.job.eta_seconds:
            extra["eta_seconds"] = eta
    if new != track.state or extra:
        poller.emit(track.job, new, **extra)
        track.state = new
    if new.relay_status is RelayStatus.COMPLETED and track.schedule is not None:
        track.schedule.observe(asyncio.get_running_loop().time(), RelayStatus.COMPLETED.value,
                               100)
    if new.settled or new.task_id is None:
        poller.finish(track)
        return
    track.mode = Mode.POLL if polling else Mode.SAVE
    poller.push(track, delay)


def _next_delay(poller: Poller, track: Track, state: JobState) -> tuple[float, float | None]:
    """When to poll next, and the predicted seconds left (None without evidence)."""
    schedule = poller.schedule(track)
    status = (state.relay_status or RelayStatus.QUEUED).value
    now = asyncio.get_running_loop().time()
    schedule.observe(now, status, track.last_progress)
    end = schedule.predicted_end()
    eta = max(0.0, end - now) if end is not None else None
    return schedule.next_delay(now, status, track.last_progress, track.hint), eta


async def _poll(poller: Poller, track: Track) -> None:
    job = track.job
    assert track.state.task_id is not None
    client = poller.client(job.backend)
    try:
        snapshot, track.hint = await client.retrieve_once(track.state.task_id)
    except Exception as exc:
        if not isinstance(exc, SoraError):
            log.exception("unexpected error while polling job %s", job.local_id)
        _retry_later(poller, track, exc)
        return
    track.failures = 0
    track.last_progress = snapshot.progress
    if snapshot.extra.get("fetch_url"):
        track.fetch_url = snapshot.extra["fetch_url"]
        track.expires_at = snapshot.expires_at
    new = apply_snapshot(track.state, snapshot)
    extra: dict[str, Any] = {}
    if job.poll_error is not None:
        extra["poll_error"] = None
    notice = unrecognised_notice(snapshot)
    if notice != job.notice and (notice or RELAY_WORDS in (job.notice or "")):
        extra["notice"] = notice
    if new.done:
        extra["eta_seconds"] = None
    extra.update(billed_of(job.billed_usd, snapshot.extra))
    advance(poller, track, new, **extra)


def _retry_later(poller: Poller, track: Track, exc: BaseException) -> None:
    """A failed GET: for a transient fault, the plan as if the GET had not happened,
    with a short backoff (a few seconds at most once the relay answers again); slowly
    for refusals (401/403/404). A paid job is never given up."""
    track.failures += 1
    scale = track.job.backend.time_scale
    if is_transient(exc):
        now = asyncio.get_running_loop().time()
        delay = poller.schedule(track).retry_delay(now, track.failures, retry_after_of(exc))
    else:
        delay = Backoff(base=0.25 * scale, cap=REFUSED_CAP * scale).delay(
            track.failures, retry_after_of(exc))
    poller.emit(track.job, None, persist=False, poll_error=f"{exc} (retrying)")
    poller.push(track, delay)


async def _save(poller: Poller, track: Track) -> None:
    """Save promptly (links expire); a stale link is refreshed, the job never re-made.

    Faults are retried with backoff (Retry-After honoured). 8 definite refusals in a
    row or 30 failures end the attempt: the handle is detached with ``download_error``
    set (``wait()`` must not hang on a link), the journal keeps the job for
    ``resume()`` / ``job.download()``."""
    job = track.job
    assert track.state.task_id is not None
    client = poller.client(job.backend)
    target = job.video_target()
    scale = job.backend.time_scale
    loop = asyncio.get_running_loop()
    if track.save_attempts == 0:
        # Journal first: the events thread has written "completed" (everything queued
        # before this no-op) before any byte of the video is asked for, so a crash
        # mid-download leaves a row that says so.
        await loop.run_in_executor(poller.events, _barrier)
    track.save_attempts += 1
    try:
        url = track.fetch_url
        stale = track.expires_at is not None and time.time() >= track.expires_at
        if track.save_attempts > 1 or not url or stale:   # expires_at: refresh first
            fresh, _ = await client.retrieve_once(track.state.task_id)
            url = fresh.extra.get("fetch_url") or url
        if not url:
            raise NotFoundError("the relay gave no video link", status_code=404)
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            raise APIError("the relay's video link is not an http(s) URL", status_code=0)
        await client.download(url, target)
        await _keep_stills(poller, client, track.state.task_id, target)
    except Exception as exc:
        track.refusals = 0 if is_transient(exc) else track.refusals + 1
        if track.refusals >= 8 or track.save_attempts >= 30:
            log.warning("could not save the video of job %s: %s; job.download() retries",
                        track.state.task_id, exc)
            poller.drop(track)
            poller.emit(job, None, persist=False, download_error=str(exc),
                        detach=f"the video could not be saved: {exc}")
            return
        poller.emit(job, None, persist=False, download_error=str(exc))
        backoff = Backoff(base=scale, cap=60 * scale)
        poller.push(track, backoff.delay(min(track.save_attempts, 10), retry_after_of(exc)))
        return
    new = track.state.evolve(phase=Phase.SETTLED, local_path=str(target))
    advance(poller, track, new, download_error=None)


async def _watch(poller: Poller, track: Track) -> None:
    """Follow a job through the journal while another live process owns it (or its
    submit is in flight); take it over once that owner is gone."""
    job = track.job
    record, mine = await asyncio.get_running_loop().run_in_executor(
        poller.events, job.journal.take_over, job.local_id)
    if record is None:
        poller.finish(track, detach="the journal has no such job")
        return
    state = record.state
    if state != track.state:
        poller.emit(job, state, persist=False)
        track.state = state
    if state.settled or (state.task_id is None and state.phase is not Phase.SUBMITTING):
        poller.finish(track)
    elif state.phase is Phase.SUBMITTING or not mine:
        poller.push(track, max(0.05, job.backend.time_scale))
    else:
        track.mode = Mode.SAVE if state.phase is Phase.SAVING else Mode.POLL
        poller.push(track, 0.0)


def _barrier() -> None:
    """Nothing: run on the events thread, it ends once what was queued before has run."""


async def _keep_stills(poller: Poller, client: Any, task_id: str, video: Path) -> None:
    """The poster beside a saved video: the relay's own thumbnail where its style renders
    stills (and its spritesheet, for a hover-scrub), else a frame decoded from the video
    (PyAV). A relay still that fails in any way gives way to the decoded poster."""
    relay_poster = False
    if client.renders_stills:
        relay_poster = await _relay_still(poller, client, task_id, "thumbnail",
                                          poster_of(video))
        await _relay_still(poller, client, task_id, "spritesheet", spritesheet_of(video))
    if not relay_poster:
        await asyncio.get_running_loop().run_in_executor(poller.events, _make_poster, video)


async def _relay_still(poller: Poller, client: Any, task_id: str, variant: str,
                       target: Path) -> bool:
    """Fetch one still (bounded: the client's still cap and deadline), check it decodes as
    an image, then move it into place; False, logged (the client scrubbed the key from every
    message), when it is not there, not an image, too big or too slow."""
    part = target.with_name(f".{target.name}.relay")
    try:
        await client.fetch_still(task_id, variant, part)
        await asyncio.get_running_loop().run_in_executor(poller.events, _keep_checked,
                                                         part, target)
    except Exception as exc:
        log.info("the relay's %s of %s is not used (%s): %s", variant, task_id,
                 type(exc).__name__, exc)
        return False
    finally:
        part.unlink(missing_ok=True)
    return True


def _keep_checked(part: Path, target: Path) -> None:
    """Move a fetched still into place once it decoded whole (on the events thread)."""
    from sora_widgets.media.posters import check_still

    check_still(part)
    part.replace(target)


def _make_poster(video: Path) -> None:
    """A still beside the saved video (history shows it instead of a player); a poster
    that cannot be made is not a reason to fetch the video again."""
    try:
        from sora_widgets.media.frames import poster

        poster(video, poster_of(video))
    except Exception as exc:
        log.warning("no poster for %s: %s", video.name, exc)
