"""When to poll next: sparse while the end is far, dense around the predicted end.

A relay job takes 60–180 s and reports ``progress``. From the progress
observations we fit a rate and predict when the job will finish; the interval
halves as that moment approaches (about log2(remaining) polls), stays dense
around it, and widens slowly when the job runs late (relays often pause near
99 %). Without usable progress the interval grows with elapsed time up to a
bounded maximum, so the worst-case delay is bounded. A server hint
(``openai-poll-after-ms``) or ``Retry-After`` always wins as a floor.

All constants are in real seconds and multiplied by ``scale``, so a compressed
emulator timeline (tests, demos, benchmarks) compresses the schedule equally.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PollPolicy", "PollSchedule"]


@dataclass(frozen=True)
class PollPolicy:
    scale: float = 1.0
    queued_interval: float = 4.0     # while queued (0–20 s): nothing to predict yet
    first_poll: float = 2.0          # the first GET after the submit answer
    dense_interval: float = 0.7      # around the predicted end: p50 latency ≈ half of this
    approach_factor: float = 0.5     # sleep this share of the predicted remaining time
    dense_window: float = 6.0        # switch to dense polling this close to the end
    late_growth: float = 0.02        # interval grows by this per second past the prediction
    late_max: float = 1.4
    blind_growth: float = 0.1        # no usable progress: interval = share of elapsed time
    blind_max: float = 6.0           # ... bounded: worst-case delay for a blind job
    min_interval: float = 0.25
    max_interval: float = 60.0

    def s(self, seconds: float) -> float:
        return seconds * self.scale


@dataclass
class PollSchedule:
    """Per-job state: feed it each observation, ask it for the next delay."""

    policy: PollPolicy = field(default_factory=PollPolicy)
    started: float | None = None                     # monotonic time of the submit answer
    samples: list[tuple[float, int]] = field(default_factory=list)  # (time, progress) running

    def observe(self, now: float, status: str, progress: int | None) -> None:
        if self.started is None:
            self.started = now
        if status == "in_progress" and progress is not None:
            if self.samples and progress < self.samples[-1][1]:
                self.samples.clear()  # progress went back: the relay restarted it
            self.samples.append((now, progress))
            if len(self.samples) > 64:
                del self.samples[1:len(self.samples) - 63]

    def predicted_end(self) -> float | None:
        """Monotonic time at which progress reaches 100, from a least-squares fit."""
        points = [(t, p) for t, p in self.samples if p > 0]
        if points:
            # Drop a plateau at the end: a stall must not flatten the fitted rate (it would
            # push the prediction late and make us oversleep the real end).
            last_p = points[-1][1]
            points = points[:next(i for i, (_, p) in enumerate(points) if p == last_p) + 1]
        if len(points) < 2 or points[-1][0] - points[0][0] < self.policy.s(1.0):
            return None
        n = len(points)
        mean_t = sum(t for t, _ in points) / n
        mean_p = sum(p for _, p in points) / n
        var = sum((t - mean_t) ** 2 for t, _ in points)
        if var <= 0:
            return None
        rate = sum((t - mean_t) * (p - mean_p) for t, p in points) / var
        if rate <= 1e-6:
            return None
        # Where the fitted line reaches 100: unlike "last sample + rest / rate", it is not
        # pushed late when we first see a plateau value long after the stall began.
        return mean_t + (100 - mean_p) / rate

    def next_delay(self, now: float, status: str, progress: int | None,
                   hint: float | None = None) -> float:
        pol = self.policy
        if self.started is None:
            self.started = now
        if status == "submitting":
            delay = pol.s(pol.first_poll)
        elif status == "queued":
            delay = pol.s(min(pol.queued_interval, max(pol.first_poll, now - self.started)))
        else:
            end = self.predicted_end() if status == "in_progress" else None
            if end is None:
                elapsed = now - self.started
                delay = min(pol.s(pol.blind_max),
                            max(pol.s(pol.dense_interval), pol.blind_growth * elapsed))
            else:
                remaining = end - now
                if remaining > pol.s(pol.dense_window):
                    delay = max(pol.s(pol.dense_interval), pol.approach_factor * remaining)
                    # land the poll just before the window rather than inside the end
                    delay = min(delay, remaining - pol.s(pol.dense_window) * 0.5)
                elif remaining > 0:
                    delay = pol.s(pol.dense_interval)
                else:
                    late = -remaining
                    delay = min(pol.s(pol.late_max),
                                pol.s(pol.dense_interval) + pol.late_growth * late)
        delay = max(pol.s(pol.min_interval), min(delay, pol.s(pol.max_interval)))
        return max(delay, hint) if hint is not None else delay
