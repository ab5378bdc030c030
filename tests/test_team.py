"""A team on one journal: processes racing for one budget and one prompt (issue 16).

Real processes (``tests/scripts/team_submitter.py``) submit through ``sw.generate`` to the
emulator acting as the paid relay (a VIP key, charges recorded). On PostgreSQL each process
has its own SORA_WIDGETS_HOME and the same SORA_JOURNAL_URL, as kernels on different
machines would; on sqlite they share one SORA_WIDGETS_HOME (one machine). A file barrier
starts every submit at the same instant. POSTs are counted at the emulator.

* 8 processes × 5 distinct prompts under SORA_TEAM_BUDGET_USD=18.00 → exactly 20 POSTs and
  20 refusals, each refusal naming the cap, what is left and who spent it;
* two processes sending one prompt at the same instant → 1 POST, one task id for both;
* a third process lists them all (``sw.jobs(team=True)``), with their users.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sora_widgets.emulator import EmulatorConfig, RunningEmulator, start_emulator
from sora_widgets.journal import open_journal

from .conftest import TEST_TIME_SCALE, VIP_KEY
from .pg_fixtures import pg_server, pg_url

pytestmark = pytest.mark.slow   # processes on one journal, and PostgreSQL

__all__ = ["pg_server", "pg_url"]   # fixtures used by name

SCRIPTS = Path(__file__).parent / "scripts"
ROOT = SCRIPTS.parent.parent
PROCESSES, SUBMITS, TEAM_BUDGET, PRICE = 8, 5, "18.00", 0.90


@pytest.fixture
def relay() -> Iterator[RunningEmulator]:
    """The paid relay: an emulator with short jobs and one shared clip (no renders)."""
    config = EmulatorConfig(time_scale=TEST_TIME_SCALE, seed=16, queue_seconds=(0.0, 5.0),
                            run_seconds=(20.0, 40.0), stall_probability=0.0,
                            shared_video=True)
    with start_emulator(config) as emulator:
        yield emulator


@pytest.fixture(params=["postgres", "sqlite"])
def team(request: pytest.FixtureRequest, tmp_path: Path, relay: RunningEmulator) -> Team:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    return Team(request.param, tmp_path, relay, url)


class Team:
    """Where the teammates' processes run: their environment, barrier and results."""

    def __init__(self, backend: str, root: Path, relay: RunningEmulator,
                 url: str | None) -> None:
        self.backend, self.root, self.relay, self.url = backend, root, relay, url
        self.barrier = root / "barrier"
        self.barrier.mkdir()

    def home(self, name: str) -> Path:
        # PostgreSQL: a home per process (separate machines); sqlite: one shared home.
        return self.root / (f"home-{name}" if self.url else "home")

    def env(self, name: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SORA_")}
        env.update(SORA_API_KEY=VIP_KEY, SORA_BASE_URL=self.relay.base_url,
                   SORA_WIDGETS_HOME=str(self.home(name)), SORA_USER=name,
                   SORA_POLL_SCALE=str(TEST_TIME_SCALE), PYTHONPATH=str(ROOT), **extra)
        if self.url:
            env["SORA_JOURNAL_URL"] = self.url
        return env

    def race(self, prompts_of: dict[str, list[str]], **extra: str) -> dict[str, Any]:
        """Start one submitter per name, release them together, collect their reports."""
        procs = {
            name: subprocess.Popen(
                [sys.executable, str(SCRIPTS / "team_submitter.py"), str(self.barrier), name,
                 *prompts], env=self.env(name, **extra), cwd=self.root,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name, prompts in prompts_of.items()}
        try:
            deadline = time.monotonic() + 120
            while not all((self.barrier / f"{n}.ready").exists() for n in procs):
                failed = [n for n, p in procs.items() if p.poll() is not None]
                assert not failed, f"{failed} died: {procs[failed[0]].communicate()[1]}"
                assert time.monotonic() < deadline, "the submitters never got ready"
                time.sleep(0.01)
            (self.barrier / "go").write_text("")
            reports = {}
            for name, proc in procs.items():
                out, err = proc.communicate(timeout=180)
                assert proc.returncode == 0, f"{name}: {err}"
                reports[name] = json.loads(out.strip().splitlines()[-1])
            return reports
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()

    def listing(self, name: str = "lister") -> list[dict[str, Any]]:
        out = subprocess.run([sys.executable, str(SCRIPTS / "team_lister.py")],
                             env=self.env(name), cwd=self.root, capture_output=True,
                             text=True, timeout=120, check=False)
        assert out.returncode == 0, out.stderr
        result: list[dict[str, Any]] = json.loads(out.stdout.strip().splitlines()[-1])
        return result

    def journal_text(self) -> str:
        """Every value of every row of the journal, as one string."""
        journal = open_journal(self.url or str(self.home("any") / "journal.sqlite3"))
        try:
            return json.dumps([r.__dict__ for r in journal.iter_all()], default=str)
        finally:
            journal.close()


def test_a_team_budget_holds_across_processes(team: Team) -> None:
    prompts_of = {f"user{k}": [f"user{k} shot {i}: a lighthouse in fog" for i in range(SUBMITS)]
                  for k in range(PROCESSES)}
    reports = team.race(prompts_of, SORA_TEAM_BUDGET_USD=TEAM_BUDGET)

    accepted = [job for r in reports.values() for job in r["jobs"]]
    refused = [no for r in reports.values() for no in r["refused"]]
    stats = team.relay.stats()
    assert stats["posts"] == 20 and stats["tasks_created"] == 20
    assert len(accepted) == 20 and len(refused) == 20
    assert all(job["task_id"] and job["status"] == "completed" for job in accepted)
    assert len({job["task_id"] for job in accepted}) == 20
    assert {t["prompt"] for t in stats["tasks"].values()} == {j["prompt"] for j in accepted}
    for no in refused:
        assert no["scope"] == "team"
        message = no["message"]
        assert "SORA_TEAM_BUDGET_USD=$18.00" in message and "$0.00 left" in message
        assert "$18.00 spent this month (UTC), everyone on this journal" in message
        assert "spent by user" in message and "nothing was sent" in message

    listed = team.listing()
    assert len(listed) == 20
    assert {j["task_id"] for j in listed} == {j["task_id"] for j in accepted}
    assert {j["user"] for j in listed} <= set(prompts_of)
    by_user = {name: len(r["jobs"]) for name, r in reports.items()}
    assert {name: sum(j["user"] == name for j in listed) for name in prompts_of} == by_user
    assert VIP_KEY not in team.journal_text()


def test_one_prompt_at_the_same_instant_is_paid_once(team: Team) -> None:
    prompt = "two people, one idea: a paper boat on a flooded street"
    reports = team.race({"ann": [prompt], "bob": [prompt]})
    stats = team.relay.stats()
    assert stats["posts"] == 1
    jobs = [r["jobs"][0] for r in reports.values()]
    assert all(not r["refused"] for r in reports.values())
    assert jobs[0]["task_id"] == jobs[1]["task_id"] == next(iter(stats["tasks"]))
    assert jobs[0]["local_id"] == jobs[1]["local_id"]
    assert sorted(j["cached"] for j in jobs) == [False, True]
    assert all(j["status"] == "completed" for j in jobs)

    listed = team.listing("cy")
    assert [(j["task_id"], j["prompt"]) for j in listed] == [(jobs[0]["task_id"], prompt)]
    assert VIP_KEY not in team.journal_text()


# -- a kernel killed mid-submit, resumed by another host (PostgreSQL) ----------------------------


def _another_host(name: str) -> list[str]:
    """A command prefix that runs the rest under another host name (a UTS namespace)."""
    if os.geteuid() == 0:
        return ["unshare", "--uts", "sh", "-c", f'hostname {name} && exec "$@"', "sh"]
    return ["unshare", "--user", "--map-root-user", "--uts", "sh", "-c",
            f'hostname {name} && exec "$@"', "sh"]


def _resume_elsewhere(team: Team, lease_seconds: float, *, wait: float = 120.0,
                      heartbeat: float | None = None) -> dict[str, Any]:
    tail = [repr(wait)] + ([repr(heartbeat)] if heartbeat is not None else [])
    out = subprocess.run(
        [*_another_host("other-host"), sys.executable, str(SCRIPTS / "team_resumer.py"),
         repr(lease_seconds), *tail], env=team.env("resumer"), cwd=team.root,
        capture_output=True, text=True, timeout=180, check=False)
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["host"] == "other-host"
    return result


def _victim(team: Team, prompt: str, moment: str, *lease: float
            ) -> tuple[subprocess.Popen[str], str]:
    """A teammate's kernel on this host; ``lease``: (lease, heartbeat) seconds, shortened."""
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "team_victim.py"), prompt, moment,
                             *map(repr, lease)],
                            env=team.env("victim"), cwd=team.root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("ready"):
        proc.kill()
        raise AssertionError(f"the victim did not start: {line!r} {proc.communicate()[1]}")
    return proc, line


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.kill()                         # SIGKILL: no atexit, no finally, no goodbye
    proc.communicate(timeout=30)


@pytest.fixture
def pg_team(tmp_path: Path, relay: RunningEmulator, pg_url: str) -> Team:
    return Team("postgres", tmp_path, relay, pg_url)


def test_killed_after_the_answer_another_host_finishes_it(pg_team: Team) -> None:
    prompt = "a kernel killed after its answer"
    proc, line = _victim(pg_team, prompt, "answered")
    task_id = line.split()[1]
    _kill(proc)
    time.sleep(1.0)                     # the lease (0.5 s here, 120 s for real) expires
    result = _resume_elsewhere(pg_team, lease_seconds=0.5)
    assert [(j["task_id"], j["status"]) for j in result["resumed"]] == [(task_id, "completed")]
    assert Path(result["resumed"][0]["local_path"]).is_file()
    assert str(pg_team.home("resumer")) in result["resumed"][0]["local_path"]
    assert pg_team.relay.stats()["posts"] == 1


def test_killed_during_the_post_another_host_settles_it_after_the_lease(pg_team: Team) -> None:
    relay = pg_team.relay
    relay.inject("accept_then_hang", method="POST", times=1, hang_seconds=30)
    proc, _ = _victim(pg_team, "a kernel killed during its POST", "posting")
    deadline = time.monotonic() + 30
    while relay.stats()["posts"] < 1:
        assert time.monotonic() < deadline, "the POST never reached the relay"
        time.sleep(0.01)
    _kill(proc)
    # Within the lease: the dead host's submit is left alone (it might still be answered).
    early = _resume_elsewhere(pg_team, lease_seconds=3600.0)
    assert early["resumed"] == []
    assert [j["status"] for j in early["jobs"]] == ["submitting"]
    # After the lease: maybe charged, never sent again.
    time.sleep(1.0)
    late = _resume_elsewhere(pg_team, lease_seconds=0.5)
    assert [(j["status"], j["charge"], j["task_id"]) for j in late["jobs"]] == [
        ("unknown", "maybe", None)]
    assert relay.stats()["posts"] == 1


# -- leases: renewed by their owner only, on a timer of their own (issue 21 #3, #4) --------------


def test_a_host_that_resumes_within_the_lease_takes_over_once_it_expires(
        pg_team: Team) -> None:
    """Host A is SIGKILLed right after its answer; host B resumes at once, while A's lease
    still runs. B must not renew a lease it does not own: once A's lease expires B takes
    the job over and finishes it (0.2: B's first heartbeat ran before its take-over check
    and renewed every row it watched, so A looked alive for ever and B never polled)."""
    lease = 3.0
    proc, line = _victim(pg_team, "a kernel killed while its lease runs", "answered")
    task_id = line.split()[1]
    _kill(proc)
    result = _resume_elsewhere(pg_team, lease_seconds=lease, wait=lease + 30,
                               heartbeat=lease / 4)
    assert [(j["task_id"], j["status"]) for j in result["resumed"]] == [(task_id, "completed")]
    assert Path(result["resumed"][0]["local_path"]).is_file()
    assert str(pg_team.home("resumer")) in result["resumed"][0]["local_path"]
    assert pg_team.relay.stats()["posts"] == 1


def test_a_live_owner_keeps_its_lease_through_a_long_poll_hint(
        tmp_path: Path, pg_url: str) -> None:
    """Host A is alive and its relay asks for 8 s between GETs (``openai-poll-after-ms``),
    four times the (shortened) lease. A's lease stays fresh on its own timer, so host B's
    resume follows the job through the journal and never takes it over: one POST, one
    download (0.2 renewed only when a poll fell due: B took over, both downloaded)."""
    lease = 2.0
    config = EmulatorConfig(time_scale=TEST_TIME_SCALE, seed=21, queue_seconds=(0.0, 1.0),
                            run_seconds=(10.0, 20.0), stall_probability=0.0,
                            shared_video=True, poll_hint_ms=8000)
    with start_emulator(config) as relay:
        team = Team("postgres", tmp_path, relay, pg_url)
        proc, line = _victim(team, "a live owner told to wait 8 s", "answered", lease,
                             lease / 4)
        try:
            result = _resume_elsewhere(team, lease_seconds=lease, wait=60)
            # The owner saves the video once its hinted GET falls due (at once if it did).
            videos = team.home("victim") / "videos"
            deadline = time.monotonic() + 60
            while not list(videos.glob("*.mp4")):
                assert proc.poll() is None, "the owner died during the test"
                assert time.monotonic() < deadline, "the owner never saved the video"
                time.sleep(0.05)
        finally:
            _kill(proc)
        stats = relay.stats()
    task_id = line.split()[1]
    assert stats["posts"] == 1
    assert stats["video_downloads"] == 1, stats["video_downloads"]
    assert [(j["task_id"], j["status"]) for j in result["resumed"]] == [(task_id, "completed")]
    assert str(team.home("resumer")) not in (result["resumed"][0]["local_path"] or "")


def test_a_frozen_owner_taken_over_meanwhile_does_not_download_again(
        tmp_path: Path, pg_url: str) -> None:
    """Host A is frozen (SIGSTOP) longer than its lease; host B takes the job over and
    saves it. When A wakes up its next renewal finds the row is B's: A follows it through
    the journal instead of polling and downloading it too (one POST, one download)."""
    lease = 2.0
    config = EmulatorConfig(time_scale=TEST_TIME_SCALE, seed=22, queue_seconds=(0.0, 1.0),
                            run_seconds=(10.0, 20.0), stall_probability=0.0,
                            shared_video=True, poll_hint_ms=20000)
    with start_emulator(config) as relay:
        team = Team("postgres", tmp_path, relay, pg_url)
        proc, line = _victim(team, "an owner frozen past its lease", "answered+report",
                             lease, lease / 4)
        task_id = line.split()[1]
        try:
            os.kill(proc.pid, signal.SIGSTOP)
            journal = open_journal(pg_url)
            try:
                deadline = time.monotonic() + 30
                while True:           # the frozen owner's lease lapses (by its own clock)
                    record = next(r for r in journal.iter_all() if r.task_id == task_id)
                    if time.time() - (record.heartbeat_at or 0.0) > lease + 0.2:
                        break
                    assert time.monotonic() < deadline, "the lease never lapsed"
                    time.sleep(0.05)
            finally:
                journal.close()
            result = _resume_elsewhere(team, lease_seconds=lease, wait=60)
            os.kill(proc.pid, signal.SIGCONT)
            assert proc.stdout is not None
            done = proc.stdout.readline().split()       # A's handle finished, somehow
        finally:
            _kill(proc)
        stats = relay.stats()
    assert [(j["task_id"], j["status"]) for j in result["resumed"]] == [(task_id, "completed")]
    assert str(team.home("resumer")) in (result["resumed"][0]["local_path"] or "")
    assert done[:2] == ["done", "completed"], done
    assert stats["posts"] == 1
    assert stats["video_downloads"] == 1, stats["video_downloads"]
    assert str(team.home("victim")) not in done[2], "the frozen owner downloaded it too"
