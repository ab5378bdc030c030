"""What one relay's jobs have taught the poll schedule (``RelayPrior``), shared by every
job's :class:`~sora_widgets.engine.schedule.PollSchedule` of that relay.

How wrong a job's fitted end ``E`` turned out to be, as an empirical distribution of
``T − E`` (``T`` = the real completion) for each kind of state (rate from the prior /
fitted / paused) and each band of ``E − now``; the queue times; the run times (start →
completed). Learned from a completed schedule's :class:`Lesson`, once per job; exponential
forgetting keeps the most recent ``memory`` jobs in charge.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sora_widgets.engine.histogram import Hist

if TYPE_CHECKING:
    from sora_widgets.engine.schedule import PollSchedule

__all__ = ["FIT", "NBANDS", "NHISTS", "PAUSED", "PRIOR", "Lesson", "RelayPrior", "band_key"]


@dataclass(frozen=True)
class Lesson:
    """What a completed job teaches its relay's prior (clock times, as the schedule saw)."""

    completed: tuple[float, float]      # the completion lies between these two answers
    scale: float                        # the policy's time scale (the prior keeps real s)
    log: dict[int, list[float]]         # the ends predicted, by state key
    start: tuple[float, float] | None   # when the run started (between two answers)
    fresh: bool                         # first seen submitting/queued: a queue time too
    t0: float                           # the first observation


# State kinds: the rate comes from the prior (one progress value seen), from the job's own
# fit, or the job is paused (a value held far longer than its rate explains).
PRIOR, FIT, PAUSED = 0, 1, 2
# Bands of E − now in real seconds (negative: the fitted end has passed).
_BANDS = (-8.0, -2.0, 0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
_BAND_REP = (-16.0, -4.0, -1.0, 0.5, 1.5, 3.0, 6.0, 12.0, 24.0, 48.0, 96.0)
NBANDS = len(_BANDS) + 1
_KEYS = 3 * NBANDS
#: Histograms a prior holds: the residuals by state key, then the queue and the run times.
NHISTS = _KEYS + 2


def band_key(kind: int, rho: float) -> int:
    return kind * NBANDS + bisect_right(_BANDS, rho)


class RelayPrior:
    """What one relay's jobs have shown so far; shared by every ``PollSchedule`` of it.

    Create one per relay (base URL) and pass it to each job's schedule. Only the
    thread that runs the schedules (the poller's event loop) may touch it: no locks.

    ``memory`` is the number of recent jobs that carry most of the weight: the learned
    distributions follow a relay that changes, and old jobs fade exponentially. The
    cold-start defaults (60–180 s runs, a 0–20 s queue, generous errors) count as
    ``prior_jobs`` jobs and fade the same way.
    """

    __slots__ = ("_growth", "_hists", "_memory", "_prior_jobs", "_queue", "_run", "_unit",
                 "jobs_learned", "on_learn")

    def __init__(self, *, memory: int = 200, prior_jobs: float = 3.0) -> None:
        if memory < 1:
            raise ValueError("memory must be at least 1 job")
        self._memory, self._prior_jobs = memory, prior_jobs
        #: Called (loop thread) after each job learned: the journal keeps the prior.
        self.on_learn: Callable[[], None] | None = None
        self._growth = 1.0 + 1.0 / memory
        self._unit = 1.0
        self.jobs_learned = 0
        self._queue = Hist()
        self._run = Hist()
        self._queue.add(0.0, 30.0, prior_jobs)
        self._run.add(30.0, 200.0, prior_jobs)
        self._hists = [Hist() for _ in range(_KEYS)]
        for kind in (PRIOR, FIT, PAUSED):
            for band, rho in enumerate(_BAND_REP):
                ahead, behind = max(rho, 0.0), max(-rho, 0.0)
                if kind == PRIOR:
                    lo, hi = -0.5 * ahead - 3.0, 0.6 * ahead + 5.0 + 2.0 * behind
                elif kind == FIT:
                    lo, hi = -0.3 * ahead - 2.0, 0.3 * ahead + 4.0 + 2.0 * behind
                else:
                    lo, hi = -2.0, 25.0 + 2.0 * behind
                self._hists[kind * NBANDS + band].add(lo, hi, prior_jobs)

    # -- learning (the engine, or observe(…, "completed", …)) ------------------------------

    def learn(self, schedule: PollSchedule) -> bool:
        """Teach the prior a job that completed (once per schedule; False: nothing learned)."""
        lesson = schedule.lesson_for(self)
        if lesson is None:
            return False
        t_lo, t_hi = lesson.completed
        sc = lesson.scale
        unit = self._unit
        if (t_hi - t_lo) / sc <= 20.0:   # a vague end (many failed GETs) would only blur
            for key, ends in lesson.log.items():
                w = unit / len(ends)
                hist = self._hists[key]
                for end in ends:
                    hist.add((t_lo - end) / sc, (t_hi - end) / sc, w)
        start = lesson.start
        if start is not None:
            s_lo, s_hi = start
            self._run.add((t_lo - s_hi) / sc, (t_hi - s_lo) / sc, unit)
            if lesson.fresh:
                self._queue.add((s_lo - lesson.t0) / sc, (s_hi - lesson.t0) / sc, unit)
        self.jobs_learned += 1
        self._unit *= self._growth
        if self._unit > 1e12:   # renormalise now and then: only ratios matter
            for hist in self._all():
                hist.scale(1.0 / self._unit)
            self._unit = 1.0
        if self.on_learn is not None:
            self.on_learn()
        return True

    # -- kept in the journal (engine/warm.py) ----------------------------------------------

    def _all(self) -> list[Hist]:
        return [*self._hists, self._queue, self._run]

    def export(self) -> list[list[float]]:
        """The weights of every histogram (``NHISTS`` lists of ``NBINS``), in units of the
        newest job (so a prior read back starts with the same recent-job weight)."""
        inv = 1.0 / self._unit
        return [[w * inv for w in hist.w] for hist in self._all()]

    def adopt(self, weights: Sequence[Sequence[float]], jobs_learned: int) -> None:
        """Start from weights another process learned (already validated: ``NHISTS`` lists
        of ``NBINS`` finite, non-negative numbers). Each histogram's mass is capped at
        twice ``memory`` jobs, and the cold-start defaults are added again on top, so a
        prior read from a shared journal can sharpen the schedule but never leave it with
        less support than a cold start."""
        fresh = RelayPrior(memory=self._memory, prior_jobs=self._prior_jobs)
        cap = 2.0 * self._memory
        for mine, default, learned in zip(self._all(), fresh._all(), weights, strict=True):
            total = sum(learned)
            factor = min(1.0, cap / total) if total > 0 else 0.0
            mine.w = [d + w * factor for d, w in zip(default.w, learned, strict=True)]
            mine.cum = None
        self._unit = 1.0
        self.jobs_learned = jobs_learned

    # -- what the schedules ask ------------------------------------------------------------

    def residual(self, key: int) -> Hist:
        return self._hists[key]

    @property
    def queue(self) -> Hist:
        return self._queue

    @property
    def run(self) -> Hist:
        return self._run

    def summary(self) -> dict[str, Any]:
        """Typical values learned so far, in real seconds (for display and debugging)."""
        late = self._hists[band_key(PAUSED, -1.0)]
        return {
            "jobs_learned": self.jobs_learned,
            "queue_p50": round(self._queue.quantile(0.5), 2),
            "queue_p90": round(self._queue.quantile(0.9), 2),
            "run_p05": round(self._run.quantile(0.05), 2),
            "run_p50": round(self._run.quantile(0.5), 2),
            "run_p95": round(self._run.quantile(0.95), 2),
            "pause_residual_p50": round(late.quantile(0.5), 2),
            "fit_residual_1_2s_p05_p95": (
                round(self._hists[band_key(FIT, 1.5)].quantile(0.05), 2),
                round(self._hists[band_key(FIT, 1.5)].quantile(0.95), 2)),
        }
