"""The adaptive poll schedule and its shared relay prior, in virtual time.

No clock and no sleeps: each job is the emulator's own task model (``draw_task``: queue
0–20 s, run 60–180 s, optional stall near the end), evaluated at the instants the schedule
asks for. The benchmark (benchmarks/polling.py) measures the same over real HTTP.
"""

from __future__ import annotations

import heapq
import random
import statistics
import sys

import pytest

from sora_widgets.core.retry import Backoff, parse_retry_after
from sora_widgets.emulator.tasks import Task, VideoRequest, draw_task
from sora_widgets.engine.schedule import PollPolicy, PollSchedule, RelayPrior

REQUEST = VideoRequest("sora-2", "test", "16:9", 12, ())


def make_tasks(n: int, seed: int, *, gap: float = 2.0, stall: float = 0.3,
               run: tuple[float, float] = (60.0, 180.0),
               queue: tuple[float, float] = (0.0, 20.0)) -> list[Task]:
    """``n`` tasks submitted one every ``gap`` s on average (Poisson), seeded."""
    rng = random.Random(seed)
    tasks, at = [], 0.0
    for _ in range(n):
        tasks.append(draw_task(random.Random(rng.getrandbits(64)), REQUEST, task_id="v",
                               now=at, time_scale=1.0, queue_seconds=queue, run_seconds=run,
                               stall_probability=stall, failure_rate=0.0))
        at += rng.expovariate(1.0 / gap)
    return tasks


class Run:
    """One job polled in virtual time: its GETs, its delays, when completion was seen."""

    def __init__(self, task: Task, schedule: PollSchedule, *, progress: str = "normal",
                 status_word: str | None = None) -> None:
        self.task, self.schedule = task, schedule
        self.progress_mode, self.status_word = progress, status_word
        self.gets = 0
        self.delays: list[float] = []
        self.latency: float | None = None
        self.now = task.created_at
        self.status, self.progress = "queued", 0
        schedule.observe(self.now, "queued", 0)

    def next_at(self) -> float:
        delay = self.schedule.next_delay(self.now, self.status, self.progress)
        self.delays.append(delay)
        return self.now + delay

    def poll(self, now: float) -> bool:
        """One GET at ``now``; True once the job is final."""
        self.now = now
        self.gets += 1
        state = self.task.state_at(now)
        if state.final:
            self.latency = now - self.task.completed_at
            self.schedule.observe(now, state.status, state.progress)
            return True
        status: str = state.status
        progress: int | None = state.progress
        if status == "in_progress":
            if self.progress_mode == "stuck":
                progress = 0
            elif self.progress_mode == "missing":
                progress = None
            if self.status_word is not None:
                status, progress = self.status_word, None
        self.status, self.progress = status, progress
        self.schedule.observe(now, status, progress)
        return False


def poll_all(tasks: list[Task], make: object, **kw: object) -> list[Run]:
    """Poll every task with its own schedule, interleaved in time (so a shared prior
    learns from the jobs that finish first, as the engine's would)."""
    runs = [Run(task, make(), **kw) for task in tasks]  # type: ignore[operator, arg-type]
    heap = [(run.next_at(), i) for i, run in enumerate(runs)]
    heapq.heapify(heap)
    while heap:
        now, i = heapq.heappop(heap)
        if not runs[i].poll(now):
            heapq.heappush(heap, (runs[i].next_at(), i))
    return runs


def pct(values: list[float], q: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(len(data) * q))]


def latencies(runs: list[Run]) -> list[float]:
    return [r.latency for r in runs if r.latency is not None]


def shared(policy: PollPolicy | None = None,
           prior: RelayPrior | None = None) -> tuple[RelayPrior, object]:
    prior = prior if prior is not None else RelayPrior()
    return prior, lambda: PollSchedule(policy or PollPolicy(), prior)


def trained_prior(n: int = 300, seed: int = 99) -> RelayPrior:
    prior, make = shared()
    poll_all(make_tasks(n, seed), make)
    return prior


# --------------------------------------------------------------------------------------------
# what the cross-job prior buys
# --------------------------------------------------------------------------------------------

def test_a_warm_prior_saves_gets_without_losing_latency() -> None:
    tasks = make_tasks(150, seed=1)
    cold = poll_all(tasks, lambda: PollSchedule(PollPolicy(), RelayPrior()))
    prior = trained_prior()
    assert prior.jobs_learned == 300
    warm = poll_all(tasks, lambda: PollSchedule(PollPolicy(), prior))
    cold_gets = statistics.mean(r.gets for r in cold)
    warm_gets = statistics.mean(r.gets for r in warm)
    assert warm_gets < cold_gets - 1.0, (cold_gets, warm_gets)
    assert pct(latencies(warm), 0.5) < pct(latencies(cold), 0.5)
    assert pct(latencies(warm), 0.95) <= pct(latencies(cold), 0.95)


def test_later_jobs_of_one_relay_benefit_from_the_earlier_ones() -> None:
    prior, make = shared()
    runs = poll_all(make_tasks(400, seed=2), make)
    early, late = runs[:40], runs[200:]
    assert statistics.mean(r.gets for r in late) < statistics.mean(r.gets for r in early)
    assert pct(latencies(late), 0.5) < pct(latencies(early), 0.5)
    assert prior.jobs_learned == 400
    learned = prior.summary()
    assert learned["run_p05"] >= 55 and learned["run_p95"] <= 190   # runs of 60–180 s
    assert learned["queue_p90"] <= 22                               # a 0–20 s queue


def test_the_design_targets_hold_in_virtual_time_with_a_shared_prior() -> None:
    """DESIGN.md: p50 ≤ 0.3 s, p95 ≤ 0.8 s at ≤ 16 GETs/job (0.1: 0.37 s, 0.70 s, 19)."""
    _, make = shared()
    runs = poll_all(make_tasks(600, seed=3), make)[60:]   # after a short warm-up
    lat = latencies(runs)
    assert len(lat) == len(runs)
    assert pct(lat, 0.5) <= 0.3
    assert pct(lat, 0.95) <= 0.8
    assert statistics.mean(r.gets for r in runs) <= 16


def test_the_prior_follows_a_relay_that_gets_faster() -> None:
    prior = trained_prior()
    runs = poll_all(make_tasks(200, seed=4, run=(30.0, 90.0), queue=(0.0, 5.0)),
                    lambda: PollSchedule(PollPolicy(), prior))
    lat = latencies(runs)
    assert max(lat) <= PollPolicy().blind_max        # the first ones: surprised, bounded
    assert pct(latencies(runs[100:]), 0.95) <= 0.8   # then learned
    assert prior.summary()["run_p50"] < 100


# --------------------------------------------------------------------------------------------
# stalls, blind jobs, hints
# --------------------------------------------------------------------------------------------

def test_a_stall_near_the_end_does_not_make_it_oversleep() -> None:
    prior = trained_prior()
    tasks = make_tasks(200, seed=5, stall=1.0)           # every job pauses at 90–98 %
    runs = poll_all(tasks, lambda: PollSchedule(PollPolicy(), prior))
    lat = latencies(runs)
    assert pct(lat, 0.95) <= 0.8
    assert max(lat) <= 2.0
    assert statistics.mean(r.gets for r in runs) <= 18


def test_while_paused_it_looks_before_the_job_can_finish() -> None:
    """Progress held at 94 far longer than the rate explains: the next look comes before
    the job could cover the last 5 points at the fitted rate (1 point/s here)."""
    sched = PollSchedule(PollPolicy(), trained_prior())
    sched.observe(0.0, "queued", 0)
    t = 10.0
    for p in range(5, 95, 5):
        sched.observe(t, "in_progress", p)
        t += 5.0
    last_change = t - 5.0
    for held in (4.0, 8.0, 12.0, 20.0):
        now = last_change + held
        sched.observe(now, "in_progress", 90)
        delay = sched.next_delay(now, "in_progress", 90)
        assert delay <= 0.7 * 8 + 1e-9      # lead_share × the 8 points left after 90
    assert sched.predicted_end() is not None


@pytest.mark.parametrize("mode", ["stuck", "missing", "unknown-status"])
def test_blind_jobs_have_a_bounded_delay(mode: str) -> None:
    bound = PollPolicy().blind_max
    for prior in (RelayPrior(), trained_prior()):
        kw: dict[str, object] = ({"status_word": "rendering"} if mode == "unknown-status"
                                 else {"progress": mode})
        runs = poll_all(make_tasks(60, seed=6), lambda p=prior: PollSchedule(PollPolicy(), p),
                        **kw)
        for run in runs:
            assert run.latency is not None and run.latency <= bound + 1e-9
            in_run = run.delays[2:]   # past the queued phase
            assert max(in_run) <= bound + 1e-9
        assert statistics.mean(r.gets for r in runs) < 180 / 2  # far fewer than 1 s polling


def test_a_resumed_job_without_progress_is_bounded_too() -> None:
    sched = PollSchedule(PollPolicy(), trained_prior())
    for k in range(50):                          # first seen running: its start is unknown
        now = 1000.0 + k * 3
        sched.observe(now, "in_progress", None)
        assert sched.next_delay(now, "in_progress", None) <= PollPolicy().blind_max


@pytest.mark.parametrize("hint", [0.0, 0.4, 3.0, 45.0, 200.0])
def test_a_server_hint_is_a_floor_in_every_state(hint: float) -> None:
    prior = trained_prior(100)
    cases: list[tuple[str, int | None, list[tuple[float, str, int | None]]]] = [
        ("queued", 0, [(0.0, "queued", 0)]),
        ("in_progress", 20, [(0.0, "queued", 0), (18.0, "in_progress", 20)]),
        ("in_progress", 96, [(0.0, "queued", 0), (18.0, "in_progress", 10),
                             (60.0, "in_progress", 60), (96.0, "in_progress", 96)]),
        ("in_progress", None, [(0.0, "queued", 0), (18.0, "in_progress", None)]),
        ("mystery", None, [(0.0, "queued", 0), (18.0, "mystery", None)]),
    ]
    for status, progress, history in cases:
        plain = PollSchedule(PollPolicy(), prior)
        hinted = PollSchedule(PollPolicy(), prior)
        for obs in history:
            plain.observe(*obs)
            hinted.observe(*obs)
        now = history[-1][0]
        base = plain.next_delay(now, status, progress)
        got = hinted.next_delay(now, status, progress, hint=hint)
        assert got >= hint
        assert got == max(base, hint)


def test_scale_compresses_every_delay() -> None:
    prior = trained_prior(100)
    history = [(0.0, "queued", 0), (15.0, "in_progress", 12), (45.0, "in_progress", 40),
               (80.0, "in_progress", 75), (95.0, "in_progress", 90)]
    real = PollSchedule(PollPolicy(), prior)
    fast = PollSchedule(PollPolicy(scale=0.01), prior)
    for t, status, progress in history:
        real.observe(t, status, progress)
        fast.observe(t * 0.01, status, progress)
        assert fast.next_delay(t * 0.01, status, progress) == pytest.approx(
            real.next_delay(t, status, progress) * 0.01)


# --------------------------------------------------------------------------------------------
# the prior's contract: learning once, bounded, deterministic
# --------------------------------------------------------------------------------------------

def _size(prior: RelayPrior) -> int:
    hists = [*prior._hists, prior.queue, prior.run]
    return sum(sys.getsizeof(h.w) + len(h.w) for h in hists)


def test_memory_is_bounded_whatever_the_number_of_jobs() -> None:
    prior, make = shared()
    poll_all(make_tasks(50, seed=7), make)
    size = _size(prior)
    poll_all(make_tasks(2000, seed=8, gap=0.5), make)
    assert prior.jobs_learned == 2050
    assert _size(prior) == size
    # one job's own log stays bounded however long it is polled
    sched = PollSchedule(PollPolicy(), prior)
    sched.observe(0.0, "queued", 0)
    for k in range(5000):
        sched.observe(10.0 + k * 0.5, "in_progress", min(98, k // 40))
    assert sum(len(v) for v in sched._log.values()) <= 6 * 33


def test_learning_is_once_per_job_and_only_from_completed_ones() -> None:
    prior = RelayPrior()
    sched = PollSchedule(PollPolicy(), prior)
    assert not prior.learn(sched)                       # not finished: nothing to learn
    sched.observe(0.0, "queued", 0)
    sched.observe(15.0, "in_progress", 10)
    sched.observe(90.0, "in_progress", 95)
    sched.observe(96.0, "completed", 100)              # observe() teaches the prior
    assert prior.jobs_learned == 1
    assert not prior.learn(sched)                       # a second call changes nothing
    assert prior.jobs_learned == 1
    failed = PollSchedule(PollPolicy(), prior)
    failed.observe(0.0, "queued", 0)
    failed.observe(30.0, "failed", 40)
    assert not prior.learn(failed)
    assert prior.jobs_learned == 1
    other = RelayPrior()
    assert not other.learn(sched)                       # a schedule teaches its own prior
    alone = PollSchedule(PollPolicy())                  # prior=None: private cold defaults
    alone.observe(0.0, "queued", 0)
    assert alone.next_delay(0.0, "queued", 0) > 0


def test_same_inputs_same_prior_same_delays() -> None:
    def delays() -> list[float]:
        _, make = shared()
        runs = poll_all(make_tasks(120, seed=9), make)
        return [d for r in runs for d in r.delays]

    assert delays() == delays()


def test_progress_going_back_restarts_the_fit() -> None:
    sched = PollSchedule(PollPolicy(), trained_prior(100))
    sched.observe(0.0, "queued", 0)
    for t, p in ((15.0, 10), (45.0, 40), (75.0, 70)):
        sched.observe(t, "in_progress", p)
    before = sched.predicted_end()
    sched.observe(80.0, "in_progress", 3)               # the relay restarted the job
    after = sched.predicted_end()
    assert before is not None and after is not None
    assert after > before + 30


def test_retry_delay_keeps_near_the_end_short_and_honours_retry_after() -> None:
    prior = trained_prior(100)
    pol = PollPolicy()
    sched = PollSchedule(pol, prior)
    sched.observe(0.0, "queued", 0)
    for t, p in ((15.0, 10), (45.0, 40), (75.0, 70), (95.0, 90), (100.0, 95), (102.0, 97)):
        sched.observe(t, "in_progress", p)              # 1 point/s: the end is ~2 s away
    delays = [sched.retry_delay(102.3, failures) for failures in (*range(1, 12), 5000)]
    assert max(delays) <= pol.retry_cap + 1e-9          # 0.1's backoff reached 30 s here
    assert delays == sorted(delays)                     # still a backoff
    assert sched.retry_delay(102.3, 3, retry_after=2.5) == 2.5


def test_retry_delay_backs_off_far_from_the_end() -> None:
    """A relay that is down is not hammered by jobs that cannot have finished yet."""
    pol = PollPolicy()
    sched = PollSchedule(pol, trained_prior(100))
    sched.observe(0.0, "queued", 0)
    sched.observe(15.0, "in_progress", 5)               # more than a minute to go
    delays = [sched.retry_delay(16.0, failures) for failures in range(1, 12)]
    assert delays[0] <= pol.retry_cap
    assert max(delays) == pytest.approx(pol.retry_far)
    assert delays == sorted(delays)
    # ... but once it may have ended (a long outage), back to short retries
    assert sched.retry_delay(15.0 + 400.0, 11) <= pol.retry_cap + 1e-9


def test_retry_after_both_forms_and_backoff_floor() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("garbage") is None
    backoff = Backoff(base=0.01, cap=0.02, scale=0.0)
    assert backoff.delay(5) == 0.0
    assert backoff.delay(5, retry_after=1.5) == 1.5
