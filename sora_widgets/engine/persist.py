"""Persistence on the engine's events thread: journal first, then the handle, then events.

A run of transitions is written in one transaction per journal; then each handle shows
its new state and tells its observers. A write that fails (a full disk, PostgreSQL down)
must not lose a paid task id: the transition is kept here, *by job and not by tracking*,
and retried on the poller's timer until it lands, also after the job has finished and
left the poller (issue 21 #1: the retry once ran only for tracked jobs, so a job that
completed meanwhile left its row ``submitting`` without its task id for ever).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sora_widgets.core.lifecycle import JobState

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job
    from sora_widgets.journal import Journal

__all__ = ["JOURNAL_NOTICE", "Transition", "apply_all", "journal_base", "pending_writes",
           "retry_pending"]

log = logging.getLogger("sora_widgets.engine.job")

#: How a handle's notice starts while one of its journal writes is pending.
JOURNAL_NOTICE = "the journal could not be written"


@dataclass(slots=True)
class Transition:
    """What the events thread applies: journal (unless ``persist`` is off), then the
    handle (``state`` and ``extra`` traits), then ``detach`` (a reason, or "")."""

    job: Job
    state: JobState | None
    persist: bool
    detach: str | None
    extra: dict[str, Any]


@dataclass(slots=True)
class _Pending:
    """A transition the journal refused, and what the journal holds meanwhile."""

    job: Job
    state: JobState
    before: JobState


#: Pending writes by handle key. Changed on the events thread only (and by the poller's
#: ``stop()`` once that thread has ended); the lock lets the loop thread count them.
_pending: dict[str, _Pending] = {}
_lock = threading.Lock()


def journal_base(job: Job) -> JobState:
    """What the journal holds for this job: the last state written (the handle's,
    unless a write failed and is still pending)."""
    pending = _pending.get(job.key)
    return pending.before if pending is not None else job.state


def pending_writes() -> int:
    """How many jobs have a journal write waiting to be retried (any thread)."""
    with _lock:
        return len(_pending)


def apply_all(transitions: list[Transition]) -> None:
    """On the events thread: the journal writes of a run of transitions (one transaction
    per journal), then each handle and its change event, in order."""
    _persist(transitions)
    _record_billed(transitions)
    for t in transitions:
        try:
            job = t.job
            if t.state is not None:
                job.show_state(t.state, **t.extra)
            elif t.extra:
                job.set_traits(**t.extra)
            if t.detach is not None:
                job.detach(t.detach or None)
        except Exception:
            log.exception("sora-widgets events thread: job %s", t.job.local_id)


def _persist(transitions: list[Transition]) -> None:
    by_journal: dict[int, tuple[Journal, list[Transition]]] = {}
    for t in transitions:
        if t.state is not None and t.persist:
            journal = t.job.journal
            by_journal.setdefault(id(journal), (journal, []))[1].append(t)
    for journal, writes in by_journal.values():
        if len(writes) > 1:
            held: dict[str, JobState] = {}     # what the journal holds once the earlier ones land
            rows = []
            for t in writes:
                assert t.state is not None
                rows.append((t.job.local_id, t.state,
                             held.get(t.job.key) or journal_base(t.job)))
                held[t.job.key] = t.state
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


def _record_billed(transitions: list[Transition]) -> None:
    """The relay's billed figure, once reported, into the journal (it is the job's cost
    from then on: spend and budgets settle to it). A failed write keeps the figure off the
    handle too, so the next answer that reports it tries again."""
    for t in transitions:
        billed = t.extra.get("billed_usd")
        if billed is None or not t.persist:
            continue
        try:
            t.job.journal.update(t.job.local_id, billed_usd=billed)
        except Exception as exc:
            del t.extra["billed_usd"]
            log.warning("journal write of the billed cost of job %s failed: %s",
                        t.job.local_id, exc)


def _persist_one(t: Transition) -> None:
    job, state = t.job, t.state
    assert state is not None
    before = journal_base(job)
    try:
        if before.task_id is None and state.task_id is not None:
            job.journal.record_submitted(job.local_id, state, before)
        else:
            job.journal.save_state(job.local_id, state, before)
    except Exception as exc:
        # The id of a paid task must not be lost: keep it, say so, retry on the timer.
        with _lock:
            _pending[job.key] = _Pending(job, state, before)
        t.extra["notice"] = (f"{JOURNAL_NOTICE} ({type(exc).__name__}): "
                             f"task id {state.task_id} is kept in memory and retried; "
                             "keep this kernel running until it is saved")
        log.warning("journal write failed for job %s (task id %s): %s; kept in memory, "
                    "retrying", job.local_id, state.task_id, exc)
    else:
        _written(t)


def _written(t: Transition) -> None:
    with _lock:
        _pending.pop(t.job.key, None)
    if (t.job.notice or "").startswith(JOURNAL_NOTICE):
        t.extra.setdefault("notice", None)


def retry_pending() -> int:
    """Retry every pending write, tracked or not (events thread); returns how many remain."""
    with _lock:
        waiting = list(_pending.items())
    for key, pending in waiting:
        job = pending.job
        try:
            job.journal.save_state(job.local_id, pending.state, pending.before)
        except Exception as exc:
            log.debug("journal write of job %s still failing: %s", job.local_id, exc)
            continue
        with _lock:
            if _pending.get(key) is pending:        # not replaced by a newer failure
                del _pending[key]
        if (job.notice or "").startswith(JOURNAL_NOTICE):
            job.set_traits(notice=None)
        log.info("journal write of job %s (task id %s) succeeded on retry", job.local_id,
                 pending.state.task_id)
    return pending_writes()


def _forget_after_fork() -> None:
    """A forked child writes none of its parent's pending rows (the parent does)."""
    global _lock
    _lock = threading.Lock()
    _pending.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
