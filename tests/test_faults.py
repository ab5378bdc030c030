"""Faults on the wire, through ``sw.generate`` against the emulator over real loopback.

1. Polling under faults: 200 jobs while task GETs see 5xx, dropped connections,
   timeouts and bursts of 429 with Retry-After in both forms.
2. Ambiguous submits: never resent, recorded ``unknown`` (maybe charged), the user told;
   a refused connection is retried and creates exactly one job.
8. A plain-http base URL that is not loopback is warned about.

Every wait is bounded: ``job.wait(timeout)`` or a condition with a deadline.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sora_widgets as sw
from sora_widgets.emulator import EmulatorConfig, RunningEmulator, start_emulator
from sora_widgets.emulator.handler import Handler
from sora_widgets.engine.job import poller
from sora_widgets.journal import SqliteJournal as Journal
from sora_widgets.relay.client import AsyncSoraClient, SoraClient
from sora_widgets.studio import studio as studio_module
from sora_widgets.ui import render

from .conftest import TEST_TIME_SCALE, VIP_KEY
from .doubles import wait_until

N_JOBS = 200


class RetryAfterSpy:
    """Records every Retry-After the emulator sends on a task GET: (task, sent_at, header).

    ``stats()`` gives per-task GET arrival times but not which answer carried which
    Retry-After, so the handler's ``_send`` is wrapped to note them (time taken *before*
    sending: the client cannot have read the header earlier).
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.records: list[tuple[str, float, str]] = []
        self._lock = threading.Lock()
        original = Handler._send
        spy = self

        def _send(handler: Handler, status: int, body: Any, content_type: str,
                  headers: dict[str, str] | None = None) -> None:
            value = (headers or {}).get("Retry-After")
            path = handler.path.partition("?")[0]
            if value is not None and handler.command == "GET" \
                    and path.startswith("/v1/videos/"):
                with spy._lock:
                    spy.records.append((path[len("/v1/videos/"):], time.time(), value))
            original(handler, status, body, content_type, headers)

        monkeypatch.setattr(Handler, "_send", _send)

    @staticmethod
    def allowed_at(sent_at: float, header: str) -> float:
        """The earliest instant a client may send its next request."""
        try:
            return sent_at + float(header)
        except ValueError:
            return email.utils.parsedate_to_datetime(header).timestamp()

    def violations(self, stats: dict[str, Any]) -> list[str]:
        found = []
        for task_id, sent_at, header in self.records:
            times = stats["tasks"][task_id]["get_times"]
            later = [t for t in times if t > sent_at]
            if not later:
                continue
            allowed = self.allowed_at(sent_at, header)
            if later[0] < allowed - 0.002:
                found.append(f"{task_id}: GET {allowed - later[0]:.3f}s before Retry-After "
                             f"{header!r} allowed")
        return found


# -- 1. polling under faults -----------------------------------------------------------------


@pytest.mark.slow   # 200 jobs through faults
def test_200_jobs_reach_their_final_state_through_faulty_polling(
        relay: RunningEmulator, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The emulator's "timeout" fault holds an answer for slow_seconds (3 s): a 1 s client
    # timeout makes it a real client-side timeout.
    monkeypatch.setenv("SORA_HTTP_TIMEOUT", "1")
    spy = RetryAfterSpy(monkeypatch)
    relay.config.update({
        "failure_rate": 0.1, "shared_video": True, "run_seconds": (60.0, 300.0),
        "slow_seconds": 3.0, "retry_after": 1.0, "retry_after_form": "seconds",
        "get_fault_rates": {"500": 0.10, "502": 0.10, "503": 0.10, "drop": 0.10,
                            "timeout": 0.05},
    })
    relay.inject("429", method="GET", times=40, retry_after=1, retry_after_form="seconds")
    started = time.monotonic()
    jobs = [sw.generate(f"fault-tolerant job {i}", aspect_ratio="9:16" if i % 3 else "16:9")
            for i in range(N_JOBS)]
    assert len({j.local_id for j in jobs}) == N_JOBS
    # A second burst in the other form once the first is spent, while jobs still poll
    # (their runs last 0.6–3 s at this scale; the first burst goes in the first polls).
    deadline = time.monotonic() + 30
    while relay.stats()["faults_injected"].get("429", 0) < 40:
        assert time.monotonic() < deadline, relay.stats()["pending_faults"]
        time.sleep(0.01)
    assert sum(not j.done for j in jobs) > 100
    relay.inject("429", method="GET", times=40, retry_after=1, retry_after_form="http-date")
    for job in jobs:
        with contextlib.suppress(sw.JobFailed):
            job.wait(timeout=90)
    elapsed = time.monotonic() - started

    stats = relay.stats()
    statuses = [j.status for j in jobs]
    assert set(statuses) <= {"completed", "failed"}, statuses
    assert stats["posts"] == N_JOBS == stats["tasks_created"]          # 0 duplicate POSTs
    assert len({j.id for j in jobs}) == N_JOBS and set(stats["tasks"]) == {j.id for j in jobs}
    for job in jobs:
        assert stats["tasks"][job.id]["status"] == job.status
        if job.status == "completed":
            assert job.local_path is not None and job.local_path.is_file(), (
                job.download_error)
    rows = {r.local_id: r for r in Journal(home / "journal.sqlite3").history()}
    assert len(rows) == N_JOBS
    for job in jobs:
        row = rows[job.local_id]
        assert (row.task_id, row.status, row.charge) == (job.id, job.status, "charged")
        assert (row.local_path is not None) == (job.status == "completed")
    faults = stats["faults_injected"]
    assert faults.get("429") == 80 and not stats["pending_faults"]
    assert all(faults.get(k, 0) > 0 for k in ("500", "502", "503", "drop", "timeout"))
    assert spy.records, "no Retry-After was ever sent"
    assert spy.violations(stats) == []
    print(f"\n[faults] {N_JOBS} jobs held at once; {statuses.count('completed')} completed, "
          f"{statuses.count('failed')} failed; {stats['gets']} task GETs; faults injected "
          f"{dict(sorted(faults.items()))}; {len(spy.records)} Retry-After answers checked; "
          f"{elapsed:.1f}s")


def test_fetching_a_fresh_video_link_honours_retry_after(
        relay: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The link expired when the video is saved, and the refresh GET is told to wait."""
    spy = RetryAfterSpy(monkeypatch)
    links = relay._engine.links
    check = links.check
    refused: list[str] = []

    def expired_once(task_id: str, query: str) -> bool:
        """The first download finds its link expired and the refresh GET meets a 429
        (set here, at the download itself: an observer of 'completed' raced the save)."""
        if not refused:
            refused.append(task_id)
            relay.inject("429", method="GET", retry_after=1)
            return False
        return check(task_id, query)

    monkeypatch.setattr(links, "check", expired_once)
    job = sw.generate("a link that expires at once")
    job.wait(timeout=30)
    assert refused == [job.id]
    assert job.local_path is not None and job.local_path.is_file()
    assert len(spy.records) == 1
    assert spy.violations(relay.stats()) == []


def test_saving_the_video_outlasts_a_burst_of_transient_faults(relay: RunningEmulator) -> None:
    """A paid, completed job whose link must be refreshed while GETs fail ten times in a
    row: the video is still saved (never give up on transient faults)."""
    job = sw.generate("a link to refresh through a bad patch")

    def on_status(change: dict[str, Any]) -> None:
        if change["new"] == "completed":      # poller thread, before it saves the video
            relay.expire_links()
            relay.inject("500", method="GET", times=10)

    job.observe(on_status, names="status")
    job.wait(timeout=30)
    assert job.status == "completed"
    assert job.local_path is not None and job.local_path.is_file(), job.download_error


# -- 2. ambiguous submits --------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["reset", "502", "504", "accept_then_hang", "malformed"])
def test_ambiguous_submit_is_never_resent_and_the_user_is_told(
        relay: RunningEmulator, home: Path, monkeypatch: pytest.MonkeyPatch,
        fault: str) -> None:
    relay.inject(fault, method="POST", hang_seconds=0.5)
    job = sw.generate(f"ambiguous {fault}")
    with pytest.raises(sw.SubmissionUnknown) as info:
        job.wait(timeout=30)
    assert "may have been charged" in str(info.value)
    assert (job.status, job.charge, job.cost_usd, job.id) == ("unknown", "maybe", 0.90, None)
    told = render.job_html(job) + render.job_text(job)
    assert "may have been charged" in told and "not retried" in told
    row = Journal(home / "journal.sqlite3").get(job.local_id)
    assert row is not None and (row.status, row.charge, row.task_id) == ("unknown", "maybe", None)
    assert sw.spend()["session"].maybe_usd == 0.90
    assert job not in poller().tracked()
    # Neither a re-run, nor resume, nor a fresh process resubmits it.
    assert sw.generate(f"ambiguous {fault}") is job
    assert sw.resume() == []
    fresh = studio_module.Studio()
    monkeypatch.setattr(studio_module, "_default", fresh)
    try:
        assert sw.resume() == []
        again = sw.generate(f"ambiguous {fault}")
        assert again.status == "unknown" and again.charge == "maybe"
    finally:
        fresh.close()
    stats = relay.stats()
    assert stats["posts"] == 1
    assert stats["tasks_created"] == (1 if fault in ("accept_then_hang", "malformed") else 0)


def test_refused_connection_is_retried_and_creates_exactly_one_job(
        studio: studio_module.Studio, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real port that refuses the first connect and starts listening before the retry."""
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))          # bound, not listening: connections are refused
    port = blocker.getsockname()[1]
    monkeypatch.setenv("SORA_API_KEY", VIP_KEY)
    monkeypatch.setenv("SORA_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("SORA_POLL_SCALE", "1.0")    # connect retry waits 0.25-0.5 s

    refused = threading.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "connection failed before sending" in record.getMessage():
                refused.set()

    watch = Watch(logging.INFO)
    logger = logging.getLogger("sora_widgets.relay.client")
    logger.addHandler(watch)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    emulator: RunningEmulator | None = None
    try:
        job = sw.generate("refused first, then accepted")
        assert refused.wait(10), "the first connect was not refused"
        blocker.close()
        emulator = start_emulator(EmulatorConfig(time_scale=TEST_TIME_SCALE, seed=3),
                                  port=port)
        wait_until(lambda: job.id is not None or job.done, timeout=10)
        assert job.status != "failed", job.error
        assert job.id is not None and job.charge == "charged"
        stats = emulator.stats()
        assert stats["posts"] == 1 and stats["tasks_created"] == 1
        assert list(stats["tasks"]) == [job.id]
    finally:
        logger.removeHandler(watch)
        logger.setLevel(old_level)
        blocker.close()
        poller().stop()
        if emulator is not None:
            emulator.stop()


# -- 8. plain http to a remote host --------------------------------------------------------


def _remote_looking_host() -> str | None:
    """A name or address of this machine that is not loopback by its spelling."""
    candidates = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            candidates.append(probe.getsockname()[0])
        except OSError:
            pass
    candidates.append(socket.gethostname())
    for host in candidates:
        if host in ("localhost", "") or host.startswith("127."):
            continue
        try:
            with socket.create_connection((host, 9), timeout=0.5):
                pass
        except ConnectionRefusedError:
            return host            # reachable: the machine itself answered
        except OSError:
            continue
        return host
    return None


@pytest.mark.parametrize("url", ["http://relay.example.com", "http://192.0.2.10:8080",
                                 "http://localhost.example.com", "HTTP://relay.example.com"])
def test_plain_http_to_a_remote_host_warns_in_both_clients(url: str) -> None:
    for cls in (SoraClient, AsyncSoraClient):
        with pytest.warns(UserWarning, match="clear text"):
            cls(VIP_KEY, url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9",
                                 "https://relay.example.com"])
def test_loopback_or_https_is_not_warned_about(url: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SoraClient(VIP_KEY, url).close()
        AsyncSoraClient(VIP_KEY, url)


@pytest.fixture
def lan_emulator() -> Iterator[tuple[RunningEmulator, str]]:
    host = _remote_looking_host()
    if host is None:
        pytest.skip("this machine has no non-loopback name or address")
    with start_emulator(EmulatorConfig(time_scale=TEST_TIME_SCALE, seed=5),
                        host="0.0.0.0", port=0) as emu:
        yield emu, f"http://{host}:{emu.port}"


def test_generate_over_plain_http_warns_the_caller_before_sending(
        lan_emulator: tuple[RunningEmulator, str], studio: studio_module.Studio,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The warning must reach the cell that called generate(), not the poller thread
    (whose output lands in whatever cell runs later), and before the key is sent."""
    emulator, url = lan_emulator
    monkeypatch.setenv("SORA_API_KEY", VIP_KEY)
    monkeypatch.setenv("SORA_BASE_URL", url)
    monkeypatch.setenv("SORA_POLL_SCALE", str(TEST_TIME_SCALE))
    seen: list[tuple[str, str, int]] = []   # (message, thread, posts when warned)

    def show(message: Any, *args: Any, **kwargs: Any) -> None:
        seen.append((str(message), threading.current_thread().name,
                     emulator.stats()["posts"]))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        monkeypatch.setattr(warnings, "showwarning", show)
        job = sw.generate("sent in clear text")
        during_call = list(seen)
        job.wait(timeout=30)
    assert job.status == "completed"
    clear = [s for s in seen if "clear text" in s[0]]
    assert clear, "no warning at all"
    assert [s for s in during_call if "clear text" in s[0]], (
        f"generate() returned without warning; the warning came later from {clear[0][1]!r}")
    assert clear[0][1] == "MainThread" and clear[0][2] == 0
