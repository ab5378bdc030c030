"""The adaptive poll schedule, in virtual time (the benchmark measures it for real)."""

from __future__ import annotations

import random

from sora_widgets.retry import Backoff, parse_retry_after
from sora_widgets.schedule import PollPolicy, PollSchedule


def simulate(run: float, queue: float, *, stuck: bool = False,
             stall: tuple[float, float] | None = None) -> tuple[int, float]:
    """Poll a virtual job; return (GETs, latency of noticing completion)."""
    sched = PollSchedule(PollPolicy())
    end = queue + run
    now, gets, status, progress = 0.0, 0, "queued", 0
    sched.observe(now, status, progress)
    while True:
        now += sched.next_delay(now, status, progress)
        gets += 1
        if now >= end:
            return gets, now - end
        if now < queue:
            status, progress = "queued", 0
        else:
            status = "in_progress"
            frac = (now - queue) / run
            progress = 0 if stuck else int(99 * frac)
            if stall and frac >= stall[0]:
                progress = int(99 * stall[0])
        sched.observe(now, status, progress)


def test_schedule_meets_the_targets_in_virtual_time() -> None:
    rng = random.Random(1)
    results = [simulate(rng.uniform(60, 180), rng.uniform(0, 20)) for _ in range(300)]
    latencies = sorted(lat for _, lat in results)
    gets = [g for g, _ in results]
    assert latencies[len(latencies) // 2] <= 0.5
    assert latencies[int(len(latencies) * 0.95)] <= 1.5
    assert sum(gets) / len(gets) <= 25


def test_blind_jobs_have_a_bounded_delay() -> None:
    gets, latency = simulate(180, 10, stuck=True)
    assert latency <= PollPolicy().blind_max
    assert gets < 180 / 2  # far fewer than fixed 1 s polling


def test_a_stall_near_the_end_does_not_explode_the_get_count() -> None:
    gets, latency = simulate(150, 5, stall=(0.9, 0.0))
    assert latency <= 2.0
    assert gets <= 40


def test_hint_is_a_floor_and_scale_compresses() -> None:
    sched = PollSchedule(PollPolicy(scale=0.01))
    assert sched.next_delay(0.0, "queued", 0) <= 0.05
    assert sched.next_delay(0.0, "queued", 0, hint=2.0) == 2.0


def test_retry_after_both_forms_and_backoff_floor() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("garbage") is None
    backoff = Backoff(base=0.01, cap=0.02, scale=0.0)
    assert backoff.delay(5) == 0.0
    assert backoff.delay(5, retry_after=1.5) == 1.5
