"""Crashes: real subprocesses killed with SIGKILL, then a fresh Studio picks up the pieces.

3. A kernel (``tests/scripts/crash_victim.py``) is killed at each of five moments, 20
   runs each with a random delay: before the POST, during it (the emulator holds the
   answer: ``accept_then_hang``), right after the answer, while polling, and while
   downloading (a throttling proxy holds the video half-sent). After each kill the
   journal opens and passes ``integrity_check``; ``resume()`` in a fresh Studio
   recovers every job with a task id and finishes it; nothing is resubmitted; a job
   killed before its id was known is ``unknown`` (maybe charged); no partial file is
   ever a job's video.
4. Two kernels on one journal at once: no lost or corrupted records.

Runs go four at a time; one emulator per phase (its scripted faults and counters are
the phase's own), one SORA_WIDGETS_HOME per run.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from sora_widgets.emulator import EmulatorConfig, RunningEmulator, start_emulator
from sora_widgets.engine.job import Job
from sora_widgets.journal import SqliteJournal as Journal
from sora_widgets.studio import studio as studio_module

from .conftest import TEST_TIME_SCALE, VIP_KEY
from .doubles import ThrottlingProxy

pytestmark = pytest.mark.slow   # SIGKILLed subprocess kernels at every phase

SCRIPTS = Path(__file__).parent / "scripts"
PHASES = ("before_post", "during_post", "after_answer", "polling", "downloading")
RUNS_PER_PHASE = 20
POOL = 4


def _env(home: Path, base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORA_")}
    env.update(SORA_API_KEY=VIP_KEY, SORA_BASE_URL=base_url, SORA_WIDGETS_HOME=str(home),
               SORA_POLL_SCALE=str(TEST_TIME_SCALE), PYTHONPATH=str(SCRIPTS.parent.parent))
    return env


class Events:
    """Named one-shot events, created on first use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[tuple[str, str], threading.Event] = {}

    def __call__(self, kind: str, key: str) -> threading.Event:
        with self._lock:
            return self._events.setdefault((kind, key), threading.Event())


@dataclass
class Phase:
    """One emulator (and for downloads a proxy in front of it) shared by a phase's runs."""

    name: str
    emulator: RunningEmulator
    base_url: str
    proxy: ThrottlingProxy | None = None
    events: Events = field(default_factory=Events)
    task_of: dict[str, str] = field(default_factory=dict)     # prompt -> task id

    def tasks_for(self, prompt: str) -> int:
        return sum(t["prompt"] == prompt for t in self.emulator.stats()["tasks"].values())


def start_phase(name: str) -> Phase:
    # Polling runs long enough to be killed mid-way; downloads start soon.
    run = {"polling": (100.0, 150.0), "downloading": (20.0, 30.0)}.get(name, (60.0, 90.0))
    emulator = start_emulator(EmulatorConfig(time_scale=TEST_TIME_SCALE, seed=11,
                                             queue_seconds=(0.0, 5.0), run_seconds=run,
                                             shared_video=True))
    phase = Phase(name, emulator, emulator.base_url)
    store = emulator._engine.store      # instrumented to learn *when* things happen there
    create, count_get = store.create, store.count_get

    def created(request: Any, config: Any) -> Any:
        task = create(request, config)
        phase.task_of[request.prompt] = task.id
        phase.events("created", request.prompt).set()
        return task

    def counted(task_id: str) -> None:
        count_get(task_id)
        phase.events("polled", task_id).set()

    store.create, store.count_get = created, counted  # type: ignore[method-assign]
    if name == "during_post":
        emulator.inject("accept_then_hang", method="POST", times=RUNS_PER_PHASE,
                        hang_seconds=60)
    if name == "downloading":
        phase.proxy = ThrottlingProxy(
            emulator.port, lambda task_id: phase.events("partial", task_id).set())
        phase.base_url = phase.proxy.base_url
    return phase


@dataclass
class Kill:
    phase: str
    index: int
    prompt: str
    home: Path
    delay: float
    stdout: list[str]
    row: dict[str, Any] | None = None
    integrity: str = ""
    partial_files: list[str] = field(default_factory=list)
    mp4_files: list[str] = field(default_factory=list)
    tasks_at_kill: int = 0


def _wait(event: threading.Event, what: str, proc: subprocess.Popen[str],
          timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not event.wait(0.05):
        if proc.poll() is not None:
            raise AssertionError(f"victim exited before {what}: {proc.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.strip())

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_line(lines: queue.Queue[str], text: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if lines.get(timeout=0.05) == text:
                return
        except queue.Empty:
            if proc.poll() is not None:
                raise AssertionError(f"victim exited before {text!r}") from None
    raise AssertionError(f"timed out waiting for {text!r}")


def kill_one(phase: Phase, index: int, root: Path) -> Kill:
    rng = random.Random(f"{phase.name}:{index}")
    prompt = f"crash {phase.name} run {index}"
    home = root / phase.name / str(index)
    home.mkdir(parents=True)
    err = (home / "stderr.txt").open("w")
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "crash_victim.py"), phase.name,
                             prompt], env=_env(home, phase.base_url), cwd=home,
                            stdout=subprocess.PIPE, stderr=err, text=True)
    lines = _lines(proc)
    try:
        if phase.name == "before_post":
            _wait_line(lines, "about-to-post", proc)
            delay = rng.uniform(0.0, 0.02)
        elif phase.name == "during_post":
            _wait(phase.events("created", prompt), "the task to be created", proc)
            delay = rng.uniform(0.0, 0.05)     # the answer is held: still mid-POST
        elif phase.name == "after_answer":
            _wait(phase.events("created", prompt), "the task to be created", proc)
            delay = rng.uniform(0.0, 0.01)     # the answer is on its way, or just read
        elif phase.name == "polling":
            _wait(phase.events("created", prompt), "the task to be created", proc)
            _wait(phase.events("polled", phase.task_of[prompt]), "the first GET", proc)
            delay = rng.uniform(0.0, 0.5)
        else:
            _wait(phase.events("created", prompt), "the task to be created", proc)
            _wait(phase.events("partial", phase.task_of[prompt]), "a half-sent video", proc,
                  timeout=30)
            delay = rng.uniform(0.0, 0.05)
        time.sleep(delay)                      # the randomised instant of the crash
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        err.close()
    out: list[str] = []
    while not lines.empty():
        out.append(lines.get())
    kill = Kill(phase.name, index, prompt, home, delay, out)
    kill.tasks_at_kill = phase.tasks_for(prompt)
    # What a reader finds right after the crash, before anything repairs it.
    db = sqlite3.connect(home / "journal.sqlite3")
    try:
        kill.integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        db.row_factory = sqlite3.Row
        rows = [dict(r) for r in db.execute("SELECT * FROM jobs")]
    finally:
        db.close()
    assert len(rows) == 1, rows
    kill.row = rows[0]
    videos = home / "videos"
    kill.partial_files = sorted(p.name for p in videos.glob("*.part")) if videos.exists() else []
    kill.mp4_files = sorted(p.name for p in videos.glob("*.mp4")) if videos.exists() else []
    return kill


@pytest.fixture
def phases() -> Iterator[dict[str, Phase]]:
    started = {name: start_phase(name) for name in PHASES}
    yield started
    for phase in started.values():
        if phase.proxy is not None:
            phase.proxy.stop()
        phase.emulator.stop()


def _full_video(phase: Phase, task_id: str) -> bytes:
    with httpx.Client(base_url=phase.emulator.base_url, timeout=30) as http:
        task = http.get(f"/v1/videos/{task_id}",
                        headers={"Authorization": f"Bearer {VIP_KEY}"}).json()
        return http.get(task["video_url"]).content


def test_sigkill_at_every_phase_loses_nothing_and_pays_once(
        phases: dict[str, Phase], home: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    started = time.monotonic()
    plan = [(name, i) for i in range(RUNS_PER_PHASE) for name in PHASES]
    with ThreadPoolExecutor(POOL) as pool:
        kills = list(pool.map(lambda p: kill_one(phases[p[0]], p[1], tmp_path / "runs"), plan))
    killed_at = time.monotonic()

    # -- what the crash left behind ---------------------------------------------------------
    full: dict[tuple[str, str], bytes] = {}

    def video_of(phase: Phase, task_id: str) -> bytes:
        if (phase.name, task_id) not in full:
            full[phase.name, task_id] = _full_video(phase, task_id)
        return full[phase.name, task_id]

    for kill in kills:
        phase, row = phases[kill.phase], kill.row
        assert row is not None
        assert kill.integrity == "ok", kill
        assert not (row["local_path"] or "").endswith(".part")
        if row["local_path"]:                 # a video shown as saved is whole
            assert Path(row["local_path"]).read_bytes() == video_of(phase, row["task_id"])
        for name in kill.mp4_files:           # and so is every mp4 on disk
            assert row["task_id"] and name == f"{row['task_id']}.mp4"
            data = (kill.home / "videos" / name).read_bytes()
            assert data == video_of(phase, row["task_id"]), kill
        expected_tasks = 0 if kill.phase == "before_post" else 1
        assert kill.tasks_at_kill == expected_tasks, kill
        if kill.phase in ("before_post", "during_post"):
            assert row["task_id"] is None and row["status"] == "submitting", kill
        if kill.phase == "polling":
            assert row["task_id"] and row["status"] in ("queued", "in_progress"), kill
        if kill.phase == "downloading":       # killed mid-download, provably
            assert row["status"] == "completed" and row["local_path"] is None, kill
            assert kill.partial_files and not kill.mp4_files, kill

    # -- a fresh Studio per run: recover, resume, finish ------------------------------------
    monkeypatch.setenv("SORA_API_KEY", VIP_KEY)
    monkeypatch.setenv("SORA_POLL_SCALE", str(TEST_TIME_SCALE))
    monkeypatch.delenv("SORA_BUDGET_USD", raising=False)
    studios: list[studio_module.Studio] = []
    resumed: dict[int, list[Job]] = {}
    try:
        for n, kill in enumerate(kills):
            monkeypatch.setenv("SORA_WIDGETS_HOME", str(kill.home))
            monkeypatch.setenv("SORA_BASE_URL", phases[kill.phase].base_url)
            fresh = studio_module.Studio()
            studios.append(fresh)
            resumed[n] = fresh.resume()
        for n, kill in enumerate(kills):
            phase, row = phases[kill.phase], kill.row
            assert row is not None
            jobs = resumed[n]
            if row["task_id"] is None:
                assert jobs == []
                record = Journal(kill.home / "journal.sqlite3").get(row["local_id"])
                assert record is not None
                assert (record.status, record.charge) == ("unknown", "maybe"), kill
                assert "may have been charged" in (record.error_message or "")
                continue
            assert [j.id for j in jobs] == [row["task_id"]], kill
            job = jobs[0].wait(timeout=60)
            assert job.status == "completed" and job.local_path is not None, kill
            assert job.local_path.read_bytes() == video_of(phase, row["task_id"])
    finally:
        for fresh in studios:
            fresh.close()

    # -- nothing was resubmitted -------------------------------------------------------------
    outcome: Counter[str] = Counter()
    for kill in kills:
        phase = phases[kill.phase]
        assert phase.tasks_for(kill.prompt) == kill.tasks_at_kill
        assert kill.row is not None
        outcome[f"{kill.phase}:{'resumed' if kill.row['task_id'] else 'unknown'}"] += 1
    for phase in phases.values():
        stats = phase.emulator.stats()
        assert stats["posts"] == stats["tasks_created"]
        assert stats["posts"] == (0 if phase.name == "before_post" else RUNS_PER_PHASE)
    assert all(outcome[f"{p}:resumed"] + outcome[f"{p}:unknown"] == RUNS_PER_PHASE
               for p in PHASES)
    print(f"\n[crashes] {len(kills)} SIGKILLs survived ({RUNS_PER_PHASE} per phase, pool of "
          f"{POOL}): {dict(sorted(outcome.items()))}; kills took "
          f"{killed_at - started:.1f}s, recovery {time.monotonic() - killed_at:.1f}s")


# -- 4. two kernels on one journal -----------------------------------------------------------


def test_two_kernels_on_one_journal_lose_nothing(emulator: RunningEmulator, home: Path) -> None:
    per_kernel = 40
    emulator.config.update({"shared_video": True, "failure_rate": 0.1,
                            "run_seconds": (60.0, 120.0)})
    env = _env(home, emulator.base_url)
    procs = [subprocess.Popen([sys.executable, str(SCRIPTS / "kernel_worker.py"), tag,
                               str(per_kernel), str(2 * per_kernel)], env=env,
                              cwd=home.parent, text=True, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
             for tag in ("left", "right")]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:                        # both start submitting together
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        reports = []
        for proc in procs:
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    path = home / "journal.sqlite3"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        pids = db.execute("SELECT COUNT(DISTINCT pid), COUNT(DISTINCT session) FROM jobs")
        assert pids.fetchone() == (2, 2)
    rows = Journal(path).history()
    stats = emulator.stats()
    assert len(rows) == 2 * per_kernel == stats["posts"] == stats["tasks_created"]
    assert {r.task_id for r in rows} == set(stats["tasks"])
    assert Counter(r.status for r in rows).keys() <= {"completed", "failed"}
    for row in rows:
        assert row.charge == "charged" and row.task_id is not None
        assert row.status == stats["tasks"][row.task_id]["status"]
        assert (row.local_path is not None) == (row.status == "completed"), row
        if row.local_path:
            assert Path(row.local_path).stat().st_size > 10_000
    seen = {tuple(j) for report in reports for j in report["own"]}
    assert {(r.local_id, r.task_id, r.status) for r in rows} == {s[:3] for s in seen}
    adopted = sum(len(report["adopted"]) for report in reports)
    assert adopted > 0                            # some jobs were polled by both kernels
    assert not list((home / "videos").glob("*.part"))
    print(f"\n[two kernels] {len(rows)} jobs from 2 processes on one journal, "
          f"{adopted} adopted across kernels, integrity ok, "
          f"{Counter(r.status for r in rows)}")
