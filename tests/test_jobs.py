"""The engine against the emulator over loopback: one poller thread, journal, cache, money."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from traitlets import All

import sora_widgets as sw
from sora_widgets.core.lifecycle import Charge, Phase, RelayStatus
from sora_widgets.core.models import VideoRequest
from sora_widgets.emulator import RunningEmulator
from sora_widgets.engine.job import poller
from sora_widgets.journal import SqliteJournal as Journal
from sora_widgets.studio import studio as studio_module

from .conftest import TEST_TIME_SCALE, VIP_KEY
from .doubles import wait_until


def poller_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sora-widgets-poller"]


@pytest.mark.slow   # 50 jobs to the end
def test_fifty_concurrent_jobs_share_one_background_thread(relay: RunningEmulator) -> None:
    before = set(threading.enumerate())
    jobs = [sw.generate(f"job number {i}", aspect_ratio="9:16" if i % 2 else "16:9")
            for i in range(50)]
    assert len(poller_threads()) == 1
    for job in jobs:
        job.wait(timeout=60)
    assert len(poller_threads()) == 1
    ours = [t.name for t in set(threading.enumerate()) - before
            if "process_request" not in t.name and "emulator" not in t.name.lower()]
    # The emulator's handler threads aside: the poller and the events thread, whatever the
    # number of jobs.
    assert sorted(ours) == ["sora-widgets-events", "sora-widgets-poller"]
    assert all(j.status == "completed" and j.local_path and j.local_path.is_file()
               for j in jobs)
    stats = relay.stats()
    assert stats["posts"] == 50 and stats["tasks_created"] == 50
    assert all(j.cost_usd == 0.90 and j.charge == "charged" for j in jobs)
    assert sw.spend()["session"].charged_usd == 45.0


def test_generate_returns_at_once_and_journal_is_written_first(relay: RunningEmulator,
                                                               home: Path) -> None:
    hang = 30.0
    relay.inject("accept_then_hang", method="POST", hang_seconds=hang)
    started = time.monotonic()
    job = sw.generate("a slow relay")
    # Returned while the POST is held: long before the relay could answer (not a speed bound).
    assert time.monotonic() - started < hang / 2
    assert job.status == "submitting" and job.id is None
    row = Journal(home / "journal.sqlite3").get(job.local_id)
    assert row is not None and row.status == "submitting"  # the intent exists before any answer


def test_lost_submit_answer_is_unknown_may_be_charged_and_never_resent(
        relay: RunningEmulator) -> None:
    relay.inject("accept_then_drop", method="POST")
    job = sw.generate("answer lost")
    with pytest.raises(sw.SubmissionUnknown) as info:
        job.wait(timeout=20)
    assert "may have been charged" in str(info.value)
    assert job.status == "unknown" and job.charge == "maybe"
    assert relay.stats()["posts"] == 1 and relay.stats()["tasks_created"] == 1
    again = sw.generate("answer lost")          # same request: shown again, not paid again
    assert again is job and relay.stats()["posts"] == 1
    assert sw.spend()["session"].maybe_usd == 0.90
    forced = sw.generate("answer lost", force=True).wait(timeout=20)
    assert forced.status == "completed" and relay.stats()["posts"] == 2


def test_rerun_reuses_the_result_and_force_pays_again(relay: RunningEmulator) -> None:
    first = sw.generate("cache me").wait(timeout=20)
    again = sw.generate("cache me")
    assert again is first and again.reused and relay.stats()["posts"] == 1
    in_flight = sw.generate("join me")
    joined = sw.generate("join me")
    assert joined is in_flight
    joined.wait(timeout=20)
    assert relay.stats()["posts"] == 2
    forced = sw.generate("cache me", force=True).wait(timeout=20)
    assert forced is not first and relay.stats()["posts"] == 3
    assert sw.generate("cache me", aspect_ratio="9:16") is not first  # a different request


def test_rejected_submit_costs_nothing_and_is_sent_again(relay: RunningEmulator,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_API_KEY", "nonvip-ordinary-key-123456")
    job = sw.generate("not vip")
    with pytest.raises(sw.PermissionDeniedError) as info:   # its own class (issue 11)
        job.wait(timeout=20)
    assert "VIP group" in str(info.value) and job.error_code == "403"
    assert job.charge == "none" and job.cost_usd == 0
    assert "nonvip-ordinary-key-123456" not in str(info.value)
    monkeypatch.setenv("SORA_API_KEY", VIP_KEY)   # read at each call: the next one uses it
    assert sw.generate("not vip").wait(timeout=20).status == "completed"
    assert relay.stats()["tasks_created"] == 1


def test_budget_refuses_before_sending(relay: RunningEmulator,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_BUDGET_USD", "1.00")
    sw.generate("within budget").wait(timeout=20)
    with pytest.raises(sw.BudgetExceededError) as info:
        sw.generate("over budget")
    assert "SORA_BUDGET_USD" in str(info.value) and "nothing was sent" in str(info.value)
    assert relay.stats()["posts"] == 1
    assert sw.generate("within budget").status == "completed"  # cached: costs nothing


def test_validation_errors_send_nothing(relay: RunningEmulator) -> None:
    for kwargs in ({"prompt": ""}, {"prompt": "x", "aspect_ratio": "1:1"},
                   {"prompt": "x", "image": "file:///etc/passwd"},
                   {"prompt": "x", "duration": 5}):
        with pytest.raises(sw.ValidationError):
            sw.generate(**kwargs)  # type: ignore[arg-type]
    assert relay.stats()["posts"] == 0


def test_failed_job_raises_jobfailed_with_the_relay_message(relay: RunningEmulator) -> None:
    relay.config.failure_rate = 1.0
    job = sw.generate("doomed")
    with pytest.raises(sw.JobFailed) as info:
        job.wait(timeout=20)
    assert job.status == "failed" and job.error and str(info.value) == job.error
    assert job.cost_usd == 0.90  # a failed job is still paid


def test_cancel_stops_polling(relay: RunningEmulator) -> None:
    relay.config.run_seconds = (300.0, 300.0)   # 3 s at test scale: long enough to cancel
    job = sw.generate("cancel me")
    wait_until(lambda: job.id is not None
               and relay.stats()["tasks"].get(job.id, {}).get("gets", 0) >= 2, 10)
    job.cancel()
    assert not job.tracking
    gets = relay.stats()["tasks"][job.id]["gets"]
    relay.config.run_seconds = (60.0, 60.0)
    sw.generate("a clock job").wait(timeout=20)  # ≥ 0.6 s of polling elsewhere
    assert relay.stats()["tasks"][job.id]["gets"] == gets
    with pytest.raises(sw.SoraError, match="cancelled"):
        job.wait(timeout=1)
    resumed = sw.resume()                       # the journal still knows it
    assert job in resumed and job.wait(timeout=30).status == "completed"


def test_trait_observers_fire_on_every_change(relay: RunningEmulator) -> None:
    seen: list[tuple[str, object]] = []
    transitions: list[object] = []
    job = sw.generate("observe me")
    job.observe(lambda change: seen.append((change["name"], change["new"])), names=All)
    job.on_change(lambda change: transitions.append(change["new"]))
    job.wait(timeout=20)
    # One change event per transition, each a state the journal already holds.
    assert transitions and transitions[-1] == job.state and job.state.settled
    names = {name for name, _ in seen}
    assert {"id", "status", "progress", "local_path"} <= names
    statuses = [v for n, v in seen if n == "status"]
    assert statuses[-1] == "completed" and "in_progress" in statuses


def test_download_copies_and_refreshes_an_expired_link(relay: RunningEmulator,
                                                       tmp_path: Path) -> None:
    job = sw.generate("download me").wait(timeout=20)
    assert job.local_path is not None
    copy = job.download(tmp_path / "copy.mp4")
    assert copy.read_bytes() == job.local_path.read_bytes()
    job.local_path.unlink()
    relay.expire_links()
    job.local_path = None
    path = job.download()
    assert path.is_file() and path.stat().st_size > 1000


def test_embedded_emulator_without_a_key(studio: studio_module.Studio) -> None:
    job = sw.generate("free of charge")
    assert job.emulator
    job.wait(timeout=30)
    assert job.cost_usd == 0 and job.charge == "none" and "emulator" in repr(job)
    assert sw.spend()["session"].charged_usd == 0


def test_resume_in_a_new_studio_finishes_without_resubmitting(
        relay: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    relay.config.run_seconds = (200.0, 200.0)
    job = sw.generate("survive a restart")
    wait_until(lambda: job.id is not None, 10)
    poller().stop()                                 # the "kernel" goes away
    fresh = studio_module.Studio()
    monkeypatch.setattr(studio_module, "_default", fresh)
    resumed = sw.resume()
    assert [j.id for j in resumed] == [job.id]
    assert resumed[0].wait(timeout=30).status == "completed"
    assert relay.stats()["posts"] == 1
    assert sw.jobs()[0].id == job.id
    fresh.close()


def test_poller_restarts_if_its_thread_died(relay: RunningEmulator) -> None:
    relay.config.run_seconds = (150.0, 150.0)
    job = sw.generate("outlive the thread")
    loop = poller()._loop
    assert loop is not None
    loop.call_soon_threadsafe(loop.stop)            # the thread ends without cleanup
    thread = poller().thread
    assert thread is not None
    thread.join(30)                                 # generous: 2 loaded cores
    assert not thread.is_alive()
    other = sw.generate("wake the poller")         # any use restarts it and re-adopts orphans
    assert other.wait(timeout=30).status == "completed"
    assert job.wait(timeout=30).status == "completed"


@pytest.mark.slow   # a SIGKILLed subprocess
def test_kill_9_right_after_submit_then_resume(relay: RunningEmulator, home: Path,
                                               tmp_path: Path) -> None:
    relay.config.run_seconds = (200.0, 200.0)
    script = tmp_path / "victim.py"
    script.write_text(textwrap.dedent("""
        import sys, time, sora_widgets as sw
        job = sw.generate("killed kernel")
        while job.id is None:
            time.sleep(0.005)
        print(job.id, flush=True)
        time.sleep(60)
    """))
    env = {**os.environ, "SORA_API_KEY": VIP_KEY, "SORA_BASE_URL": relay.base_url,
           "SORA_WIDGETS_HOME": str(home), "SORA_POLL_SCALE": str(TEST_TIME_SCALE)}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    task_id = proc.stdout.readline().strip()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert task_id.startswith("v_")
    resumed = sw.resume()
    assert [j.id for j in resumed] == [task_id]
    assert resumed[0].wait(timeout=30).status == "completed"
    assert relay.stats()["posts"] == 1


def test_two_journals_on_one_file_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    def writer(tag: str) -> None:
        journal = Journal(path)
        for i in range(100):
            (record,) = journal.claim(request=VideoRequest.create(f"x {tag} {i}"), backend="b",
                                      emulator=False, price_usd=0.9, session=tag,
                                      new_ids=[f"{tag}{i}"]).created
            state = record.state.evolve(task_id=f"v_{tag}{i}", phase=Phase.POLLING,
                                        relay_status=RelayStatus.QUEUED, charge=Charge.CHARGED)
            journal.record_submitted(record.local_id, state, record.state)

    threads = [threading.Thread(target=writer, args=(t,)) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = Journal(path).history()
    assert len(rows) == 200 and all(r.status == "queued" for r in rows)
    assert Journal(path).spend().charged_usd == 180.0


def test_a_relay_url_without_a_key_is_an_error_not_the_emulator(
        studio: studio_module.Studio, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_BASE_URL", "https://relay.example.com")
    with pytest.raises(sw.ValidationError, match="SORA_API_KEY"):
        sw.generate("no key")
    assert studio._emulators == {}  # nothing started, nothing sent
