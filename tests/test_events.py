"""The events thread: order, batches, and journal writes that share a transaction."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import sora_widgets as sw
from sora_widgets.emulator import RunningEmulator
from sora_widgets.engine.events import EventsThread
from sora_widgets.engine.poller import poller
from sora_widgets.engine.track import Mode
from sora_widgets.journal import SqliteJournal as Journal
from sora_widgets.journal import sqlite as sqlite_journal

from .doubles import wait_until
from .scripts.trust_support import fail_task_id_writes


def test_posts_and_calls_keep_their_order_and_runs_arrive_together() -> None:
    seen: list[object] = []
    runs: list[int] = []
    gate = threading.Event()

    def apply(run: list[int]) -> None:
        runs.append(len(run))
        seen.extend(run)
        if 13 in run:
            raise ValueError("a failing run is logged, the thread goes on")

    events: EventsThread[int] = EventsThread(apply, name="test-events")
    events.submit(gate.wait, 10)                  # hold the thread while work piles up
    for i in range(10):
        events.post(i)
    middle = events.submit(lambda: seen.append("call"))
    for i in range(10, 20):
        events.post(i)
    gate.set()
    assert middle.result(10) is None
    events.shutdown(wait=True)
    assert seen == [*range(10), "call", *range(10, 20)]
    assert runs == [10, 10]                       # two runs, split by the call between them
    with pytest.raises(RuntimeError):
        events.post(99)
    with pytest.raises(RuntimeError):
        events.submit(print)


def test_an_executor_call_that_raises_reaches_its_future() -> None:
    events: EventsThread[int] = EventsThread(lambda run: None, name="test-events")
    try:
        with pytest.raises(ZeroDivisionError):
            events.submit(lambda: 1 / 0).result(10)
        assert events.submit(sum, [1, 2]).result(10) == 3
    finally:
        events.shutdown()


class IdWrites:
    """For each journal write call of the engine (one transaction each): how many task ids
    it records."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[int] = []
        original = sqlite_journal.SqliteJournal.save_states

        def save_states(journal: Any, rows: Any) -> None:
            new_ids = sum(1 for _, state, before in rows
                          if state.task_id and (before is None or not before.task_id))
            if new_ids:
                self.calls.append(new_ids)
            original(journal, rows)

        monkeypatch.setattr(sqlite_journal.SqliteJournal, "save_states", save_states)


def _answered(jobs: list[Any]) -> bool:
    """Every POST answer reached the poller (and its transition is queued)."""
    records = poller().records()
    return all(job.key in records and records[job.key].state.task_id for job in jobs)


def _hold_events_thread() -> threading.Event:
    gate = threading.Event()
    events = poller().events
    assert events is not None
    events.submit(gate.wait, 30)
    return gate


def test_transitions_that_pile_up_share_one_transaction(
        relay: RunningEmulator, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the events thread is busy, 40 submit answers arrive; their ids reach the
    journal in one transaction (one per transition before), then every handle shows its id."""
    sw.generate("start the engine").wait(timeout=30)
    id_writes = IdWrites(monkeypatch)
    gate = _hold_events_thread()
    jobs = [sw.generate(f"piled up {i}") for i in range(40)]
    wait_until(lambda: _answered(jobs), 20, "the 40 POST answers")
    assert all(job.id is None for job in jobs)    # answered, not applied: the thread is held
    gate.set()
    wait_until(lambda: all(job.id for job in jobs), 20, "the ids on the handles")
    assert id_writes.calls == [40]
    rows = {r.local_id: r for r in Journal(home / "journal.sqlite3").history()}
    assert all(rows[job.local_id].task_id == job.id for job in jobs)


def test_a_batch_that_cannot_be_written_keeps_every_paid_id(
        relay: RunningEmulator, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch's transaction fails (disk full): each transition is retried on its own,
    each job keeps its paid id in memory and says so; once the disk has room the ids
    reach the journal."""
    sw.generate("start the engine").wait(timeout=30)
    writes = fail_task_id_writes(monkeypatch)
    gate = _hold_events_thread()
    jobs = [sw.generate(f"a full disk {i}") for i in range(10)]
    wait_until(lambda: _answered(jobs), 20, "the 10 POST answers")
    gate.set()
    wait_until(lambda: all(job.id for job in jobs), 20, "the ids on the handles")
    assert writes.failures >= 11                  # the batch, then each job on its own
    assert all("journal" in (job.notice or "") for job in jobs)
    writes.failing = False
    journal = Journal(home / "journal.sqlite3")
    wait_until(lambda: all(journal.get(job.local_id).task_id == job.id for job in jobs),
               30, "the kept ids in the journal", step=0.1)
    assert relay.stats()["posts"] == 11


def test_a_video_is_asked_for_only_once_the_journal_says_completed(
        relay: RunningEmulator, home: Path) -> None:
    """Journal first, for the download too: while the events thread cannot write the
    "completed" transition, no byte of the video is asked for (0.2 started the download
    at once, so a kernel killed mid-download could leave a row still saying in_progress)."""
    sw.generate("start the engine").wait(timeout=30)
    job = sw.generate("journal before the video")
    wait_until(lambda: job.id is not None, 20, "the task id")
    gate = _hold_events_thread()
    try:
        wait_until(lambda: poller().records()[job.key].mode is Mode.SAVE, 30,
                   "the poller to see the job completed")
        before = relay.stats()["video_downloads"]
        asked = wait_until(lambda: relay.stats()["video_downloads"] > before, 2.0,
                           fail=False)
        assert not asked, "the video was downloaded before the journal said completed"
    finally:
        gate.set()
    job.wait(timeout=30)
    row = Journal(home / "journal.sqlite3").get(job.local_id)
    assert row is not None and row.status == "completed" and row.local_path
