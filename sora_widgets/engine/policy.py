"""The poll schedule's constants (``PollPolicy``), in real seconds times ``scale``: one
frozen policy per time scale serves every job's schedule."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PollPolicy"]


@dataclass(frozen=True)
class PollPolicy:
    """The schedule's constants, in real seconds (multiplied by ``scale`` when used)."""

    scale: float = 1.0
    first_poll: float = 2.0          # "submitting": the first GET after the submit answer
    queue_quantile: float = 0.9      # while queued, look when this share has left the queue
    queued_share: float = 0.3        # ... but at most this share of the shortest likely run
    end_progress: float = 99.0       # completion when the fitted progress crosses this
    fit_span: float = 3.0            # in_progress seconds needed before a rate is fitted
    fit_points: float = 8.0          # ... and progress points (integers are coarse)
    fit_halflife: float = 10.0       # > 0: older points weigh half every this many seconds
    overshoot_budget: float = 0.01   # a jump may cost this many unnoticed seconds on average
    approach_quantile: float = 0.005  # ... and never passes this quantile of the end
    approach_share: float = 0.7      # ... nor this share of the way to the median end
    poll_cost: float = 0.04          # latency-seconds one GET is worth (dense interval)
    dense_min: float = 0.3           # the shortest interval where the end is likely ...
    dense_max: float = 0.75          # ... and the longest (the latency bound there)
    plateau_steps: float = 1.5       # a value held this many steps (1/rate) longer: a pause
    plateau_slack: float = 0.3       # ... plus this
    lead_share: float = 0.7          # paused: look every share of the fastest rest of the way
    lead_max: float = 6.0            # ... at most this often
    late_growth: float = 0.1         # past everything learned: interval grows this per second
    blind_growth: float = 0.1        # no usable progress, start unknown: share of elapsed
    blind_dense: float = 0.7         # blind, start known: shortest interval ...
    blind_cost: float = 0.2          # ... and latency-seconds one GET is worth
    blind_max: float = 6.0           # ... bounded: worst-case delay for a blind job
    retry_base: float = 0.25         # after a failed GET: base * 2**(failures-1) ...
    retry_cap: float = 1.0           # ... up to this while the job may have ended
    retry_far: float = 30.0          # ... or this, far from the end (a relay that is down)
    missed_share: float = 0.02       # "may have ended": this share of such jobs would have
    min_interval: float = 0.25       # every delay is clamped to these (then the hint)
    max_interval: float = 60.0

    def s(self, seconds: float) -> float:
        return seconds * self.scale
