"""When to poll next: learn each relay's progress curve across jobs, fit each job within it.

A relay job sits in a queue (0–20 s), then runs 60–180 s while ``progress`` rises, often
pausing near the end ("stalls"). Finding out it finished costs GETs; noticing late costs
the user's time. Two levels of knowledge decide each delay:

* **Within one job** (``PollSchedule``): the moments each progress value was crossed (the
  middle of the window between the previous answer and the first one showing it) are
  fitted with a rate: least squares, recent points weighing more (``fit_halflife``),
  pooled over the stretches between pauses so a stall neither flattens nor tilts it. The
  fit gives ``E``, the moment progress would reach the end. A value that holds far longer
  than the rate explains is a *pause*: until progress moves again the job cannot finish
  sooner than the rest of the way at full speed, so the schedule only needs to look that
  often (the *lead*).
* **Across the jobs of one relay** (``RelayPrior``, shared): how wrong ``E`` turned out to
  be, as an empirical distribution of ``T − E`` (``T`` = the real completion) for each
  kind of state (rate from the prior / fitted / paused) and each band of ``E − now``; the
  queue times; the run times (start → completed). The fit's errors, the relay's habit of
  pausing near the end and how long it pauses are all in those distributions, learned from
  the relay's own history rather than guessed.

Each decision: the end ``T`` is distributed as ``E + residual`` given ``T > now``. The
schedule sleeps until the earliest plausible end (minus the lead when paused) — one GET
instead of halving towards it —, as far as an expected cost of ``overshoot_budget``
unnoticed seconds allows, never past ``approach_quantile`` of the end nor more than
``approach_share`` of the way to its median; then it polls densely around the likely end
with an interval from the local hazard (short where completions cluster, bounded by
``dense_max`` so the latency stays bounded). While queued it looks only when
the queue has probably ended (the run that follows is at least ~60 s). Without usable
progress (``None``, always 0, an unknown status) the delay is bounded by ``blind_max``
whatever was learned: the learned run times only make the polls denser where completions
are likely. A server hint (``openai-poll-after-ms``) or ``Retry-After`` is always a floor.

All constants are in real seconds multiplied by ``PollPolicy.scale`` (a compressed emulator
timeline compresses the schedule equally); ``RelayPrior`` stores real seconds, so one
prior serves every scale.

How the engine uses it (the poller's event-loop thread only; nothing here takes a lock)::

    prior = RelayPrior()                      # once per relay (the poller: engine/warm.py)
    schedule = PollSchedule(policy, prior)    # once per tracked job; one PollPolicy(scale=s)
                                              # serves them all
    schedule.observe(loop.time(), job.status, job.progress) # the state we start from
    while not final:
        await asyncio.sleep(schedule.next_delay(loop.time(), status, progress, hint))
        ... GET ...
        schedule.observe(loop.time(), snapshot.status, snapshot.progress)   # every answer,
        # including the final one: observe(now, "completed", 100) teaches the prior.
    # instead of the GET's answer after a transient failure (5xx, drop, 429):
    #     delay = schedule.retry_delay(loop.time(), failures_in_a_row, retry_after)

The completed observation is what teaches the prior: ``observe(now, "completed", …)``
calls ``prior.learn(self)`` itself (the completion lies between the previous answer and
this one). ``prior.learn(schedule)`` may be called again afterwards, harmlessly: a
schedule teaches its prior at most once, and one that never saw "completed" (failed,
cancelled, still running) teaches nothing. ``prior=None`` gives the job a private prior
with the cold-start defaults (no cross-job learning). ``predicted_end()`` is the median
completion time on the same clock (for an ETA), or None without evidence.

Cost: ``observe`` and ``next_delay`` are O(1) (a few bisections in fixed-size tables);
``learn`` is O(observations of that job) with a bounded log per job; a prior holds a
fixed number of fixed-size histograms with exponential forgetting (its ``memory`` of
recent jobs), so memory stays the same after 10 or 10,000 jobs, and the same inputs in
the same order give the same prior (no randomness anywhere).
"""
from __future__ import annotations

from sora_widgets.core.lifecycle import Status
from sora_widgets.engine.policy import PollPolicy
from sora_widgets.engine.prior import FIT, NBANDS, PAUSED, PRIOR, Lesson, RelayPrior, band_key

__all__ = ["PollPolicy", "PollSchedule", "RelayPrior"]


# --------------------------------------------------------------------------------------------
# one job
# --------------------------------------------------------------------------------------------

_LOG_PER_KEY = 6
_BLIND_STATUSES = (Status.SUBMITTING, Status.QUEUED)


class PollSchedule:
    """Per-job state: feed it each observation, ask it for the next delay."""

    __slots__ = (
        "_completed",
        "_done_points",
        "_done_span",
        "_done_sxx",
        "_done_sxy",
        "_fit",
        "_fresh",
        "_last",
        "_learned",
        "_log",
        "_prev_ip",
        "_prior",
        "_seg_n",
        "_seg_p0",
        "_seg_t0",
        "_t0",
        "_t_first_ip",
        "_t_last_queued",
        "_val",
        "policy",
        "started",
    )

    def __init__(self, policy: PollPolicy | None = None,
                 prior: RelayPrior | None = None) -> None:
        self.policy = policy if policy is not None else PollPolicy()
        self._prior = prior if prior is not None else RelayPrior()
        self.started: float | None = None     # clock time of the first observation
        self._t0 = 0.0
        self._fresh = False                   # first seen submitting/queued: a new submit
        self._t_last_queued: float | None = None
        self._t_first_ip: float | None = None  # first in_progress answer after a queued one
        self._last: tuple[float, str, int | None] | None = None
        self._val: tuple[float, int] | None = None   # first sighting of the current value
        self._prev_ip: float | None = None    # the previous in_progress answer
        # Pooled least squares of (crossing time, value): the finished stretches between
        # pauses as centred sums, the current one as raw sums (times from _seg_t0).
        self._done_sxx = 0.0
        self._done_sxy = 0.0
        self._done_span = 0.0
        self._seg_t0 = 0.0
        self._seg_p0 = 0
        self._seg_n = 0
        self._done_points = 0.0
        self._fit = [0.0] * 6     # Σw, Σwt, Σwp, Σwtt, Σwtp, t of the latest point
        self._log: dict[int, list[float]] = {}
        self._completed: tuple[float, float] | None = None
        self._learned = False

    # -- observations ---------------------------------------------------------------------

    def observe(self, now: float, status: str, progress: int | None) -> None:
        """Record one answer of the relay (or the state we start from)."""
        if self.started is None:
            self.started = self._t0 = now
            self._fresh = status in _BLIND_STATUSES
        last = self._last
        if status == Status.COMPLETED:
            if self._completed is None:
                t_lo = last[0] if last is not None else self._t0
                self._completed = (min(t_lo, now), now)
                self._prior.learn(self)
            self._last = (now, status, progress)
            return
        if status == Status.FAILED:
            self._last = (now, status, progress)
            return
        if status in _BLIND_STATUSES:
            self._t_last_queued = now
        elif self._t_first_ip is None and self._t_last_queued is not None:
            self._t_first_ip = now
        self._last = (now, status, progress)
        if status == Status.IN_PROGRESS and progress is not None and progress > 0:
            self._add_value(now, int(progress))
        estimate = self._estimate(now)
        if estimate is not None:
            key, end, _lead = estimate
            ends = self._log.setdefault(key, [])
            ends.append(end)
            if len(ends) > _LOG_PER_KEY:
                del ends[0]

    def _add_value(self, now: float, p: int) -> None:
        val = self._val
        prev_t = self._prev_ip
        self._prev_ip = now
        if val is not None and p == val[1]:
            return                       # the same value again: only its first sighting counts
        if val is not None and p < val[1]:
            self._reset_fit()            # progress went back: the relay restarted the job
            val = None
        pol = self.policy
        rate = self._rate()
        if val is not None and rate is not None:
            gap = now - val[0]
            if gap - (p - val[1]) / rate > pol.plateau_steps / rate + pol.s(pol.plateau_slack):
                self._close_segment()     # a pause lies between: a new stretch
        # The value was crossed after the previous answer (and within one step of now):
        # the middle of that window, not the moment we happened to look.
        window = now - prev_t if prev_t is not None else 0.0
        step = 1.0 / rate if rate is not None else self._typical_step()
        window = min(window, step)
        cross = now - window / 2
        fit = self._fit
        if fit[0] == 0:
            self._seg_t0 = cross
            self._seg_p0 = p
        else:
            half = pol.s(pol.fit_halflife)
            if half > 0:
                decay = 0.5 ** max((cross - self._seg_t0 - fit[5]) / half, 0.0)
                for i in range(5):
                    fit[i] *= decay
                self._done_sxx *= decay
                self._done_sxy *= decay
        t = cross - self._seg_t0
        fit[0] += 1.0
        fit[1] += t
        fit[2] += p
        fit[3] += t * t
        fit[4] += t * p
        fit[5] = t
        self._seg_n += 1
        self._val = (now, p)

    def _typical_step(self) -> float:
        """Seconds per progress point of this relay's typical (median) job, on the clock."""
        pol = self.policy
        return max(self._prior.run.quantile(0.5), 1.0) * pol.scale / pol.end_progress

    def _reset_fit(self) -> None:
        self._done_sxx = self._done_sxy = self._done_span = self._done_points = 0.0
        self._fit = [0.0] * 6
        self._seg_n = 0
        self._val = None

    def _close_segment(self) -> None:
        w, st, sp, stt, stp, last = self._fit
        if self._seg_n >= 2:
            self._done_sxx += stt - st * st / w
            self._done_sxy += stp - st * sp / w
            self._done_span += last
            if self._val is not None:
                self._done_points += self._val[1] - self._seg_p0
        self._fit = [0.0] * 6
        self._seg_n = 0

    def _rate(self) -> float | None:
        """Progress per second from the job's own data (None: not enough yet)."""
        w, st, sp, stt, stp, last = self._fit
        sxx, sxy, span = self._done_sxx, self._done_sxy, self._done_span
        points = self._done_points
        if self._seg_n >= 2 and self._val is not None:
            sxx += stt - st * st / w
            sxy += stp - st * sp / w
            span += last
            points += self._val[1] - self._seg_p0
        pol = self.policy
        if span < pol.s(pol.fit_span) or points < pol.fit_points or sxx <= 1e-12:
            return None
        rate = sxy / sxx
        return rate if rate > 1e-6 else None

    @property
    def prior(self) -> RelayPrior:
        """The relay prior this schedule reads (shared with the relay's other jobs)."""
        return self._prior

    def lesson_for(self, prior: RelayPrior) -> Lesson | None:
        """What this completed job teaches ``prior``, once, and only its own prior (None:
        nothing to teach, or taught already)."""
        if self._learned or self._completed is None or self._prior is not prior:
            return None
        self._learned = True
        return Lesson(self._completed, self.policy.scale, self._log, self._start_range(),
                      self._fresh, self._t0)

    def _start_range(self) -> tuple[float, float] | None:
        """When the job left the queue: between the last queued and first in_progress answer."""
        if self._t_last_queued is None or self._t_first_ip is None:
            return None
        lo, hi = self._t_last_queued, self._t_first_ip
        rate = self._rate()
        w = self._fit[0]
        if rate is not None and w > 0 and self._done_span == 0:
            # The fitted line at progress 0 narrows the window (one stretch only).
            guess = self._seg_t0 + (self._fit[1] - self._fit[2] / rate) / w
            if lo <= guess <= hi:
                half = min(hi - lo, self.policy.s(2.0)) / 2
                lo, hi = max(lo, guess - half), min(hi, guess + half)
        return lo, hi

    # -- the estimate ---------------------------------------------------------------------

    def _estimate(self, now: float) -> tuple[int, float, float] | None:
        """(prior key, E = fitted end on the clock, lead in clock seconds) or None (blind)."""
        last = self._last
        val = self._val
        if last is None or last[1] != Status.IN_PROGRESS or last[2] is None or val is None:
            return None
        pol = self.policy
        sc = pol.scale
        rate = self._rate()
        if rate is None:
            # One value so far: the relay's typical rate (its median run time).
            end = val[0] + max(pol.end_progress - 0.5 - val[1], 0.0) * self._typical_step()
            return band_key(PRIOR, (end - now) / sc), end, 0.0
        # The (weighted) centre of the current stretch, carried to the end at the rate.
        w, st, sp = self._fit[0], self._fit[1], self._fit[2]
        end = self._seg_t0 + (st + (pol.end_progress * w - sp) / rate) / w
        held = now - val[0]
        if held > pol.plateau_steps / rate + pol.s(pol.plateau_slack):
            # Paused: it must move again first and then cover the rest at up to ~1.4x speed.
            rest = max(pol.end_progress - 1.0 - val[1], 0.0)
            lead = min(pol.s(pol.lead_max), pol.lead_share * rest / rate)
            return band_key(PAUSED, (end - now) / sc), end, lead
        return band_key(FIT, (end - now) / sc), end, 0.0

    def predicted_end(self) -> float | None:
        """The likeliest completion time on the clock (median given what is known), or None."""
        last = self._last
        if last is None or last[1] in (Status.COMPLETED, Status.FAILED):
            return None
        now = last[0]
        sc = self.policy.scale
        estimate = self._estimate(now)
        if estimate is not None:
            key, end, _ = estimate
            q = self._prior.residual(key).cond_quantile((now - end) / sc, 0.5)
            return end + (q if q is not None else 0.0) * sc
        start = self._start_range()
        if start is None or last[1] in _BLIND_STATUSES:
            return None
        mid = (start[0] + start[1]) / 2
        q = self._prior.run.cond_quantile((now - mid) / sc, 0.5)
        return None if q is None else mid + q * sc

    # -- decisions ------------------------------------------------------------------------

    def next_delay(self, now: float, status: str, progress: int | None,
                   hint: float | None = None) -> float:
        """Seconds to sleep before the next GET (never less than ``hint``)."""
        pol = self.policy
        if self.started is None or self._last is None:
            self.observe(now, status, progress)
        if status == Status.SUBMITTING:
            delay = pol.s(pol.first_poll)
        elif status == Status.QUEUED:
            delay = self._queued_delay(now)
        else:
            estimate = self._estimate(now) if status == Status.IN_PROGRESS else None
            delay = self._blind_delay(now) if estimate is None else \
                self._progress_delay(now, *estimate)
        delay = max(pol.s(pol.min_interval), min(delay, pol.s(pol.max_interval)))
        return max(delay, hint) if hint is not None else delay

    def retry_delay(self, now: float, failures: int, retry_after: float | None = None) -> float:
        """The delay after ``failures`` failed GETs in a row (transient faults).

        Exponential backoff, ``retry_base``·2^(failures−1): a failed GET taught nothing,
        so the answer it was meant to fetch is still wanted soon. The backoff stops at
        ``retry_cap`` while the job may have ended or may end within that long (at least
        ``missed_share`` of the jobs in its state would), so a finished job is not left
        unnoticed for long; otherwise at ``retry_far`` (a relay that is down is not
        hammered by jobs far from their end). ``retry_after`` (Retry-After) is a floor.
        """
        pol = self.policy
        near = self._missed(now + pol.s(pol.retry_cap)) >= pol.missed_share
        cap = pol.retry_cap if near else pol.retry_far
        backoff = min(cap, pol.retry_base * 2.0 ** min(max(failures - 1, 0), 30)) * pol.scale
        return max(backoff, retry_after) if retry_after is not None else backoff

    def _missed(self, now: float) -> float:
        """How likely the job ended between the last answer and ``now`` (1: no idea)."""
        last = self._last
        if last is None:
            return 1.0
        sc = self.policy.scale
        since = last[0]
        estimate = self._estimate(since)
        if estimate is not None:
            key, end, _ = estimate
            p = self._prior.residual(key).cond_prob((since - end) / sc, (now - end) / sc)
            return 1.0 if p is None else p
        if last[1] in _BLIND_STATUSES:   # queued: a whole run lies ahead at least
            return self._prior.run.cdf((now - since) / sc)
        start = self._start_range()
        if start is None:
            return 1.0
        mid = (start[0] + start[1]) / 2
        p = self._prior.run.cond_prob((since - mid) / sc, (now - mid) / sc)
        return 1.0 if p is None else p

    def _queued_delay(self, now: float) -> float:
        pol = self.policy
        sc = pol.scale
        prior = self._prior
        elapsed = (now - self._t0) / sc
        # Looking every share of the shortest run finds it running with most of that run
        # left (time to fit a rate); before that, only once the queue has likely ended.
        longest = pol.queued_share * max(prior.run.quantile(0.02), 1.0)
        q = prior.queue.cond_quantile(elapsed, pol.queue_quantile)
        wait = longest if q is None else max(q - elapsed, pol.first_poll)
        return min(wait, longest) * sc

    def _progress_delay(self, now: float, key: int, end: float, lead: float) -> float:
        pol = self.policy
        sc = pol.scale
        hist = self._prior.residual(key)
        x0 = (now - end) / sc                       # the residual T − E that would end now
        lead_r = lead / sc
        budget = hist.budget_point(x0, pol.overshoot_budget)
        first = hist.cond_quantile(x0, pol.approach_quantile)
        if budget is None or first is None:
            # Later than anything this relay has shown: widen slowly, bounded.
            past = max(x0 - hist.quantile(1.0), 0.0)
            return min(pol.dense_max + pol.late_growth * past, pol.blind_max) * sc
        # Approach: jump to where the end becomes plausible (paused: to where progress
        # may move again, ``lead`` before it), never past a small overshoot risk.
        median = hist.cond_quantile(x0, 0.5)
        reach = min(budget, first)
        if median is not None:   # a rare tail the prior has not seen enough of: keep a margin
            reach = min(reach, x0 + pol.approach_share * (median - x0))
        approach = reach - x0 - lead_r
        val = self._val
        if key // NBANDS == PRIOR and val is not None:
            # No rate of its own yet: not past the end at the fastest run this relay had.
            fastest = max(self._prior.run.quantile(pol.approach_quantile), 1.0)
            start = self._start_range()
            if start is not None and val[1] > 0:
                # It has run at most since the last queued answer: that much progress in
                # that time means a run no longer than ``longest``. Shorter than the
                # fastest learned: the relay changed, so look again at half of it.
                longest = (val[0] - start[0]) / sc * pol.end_progress / val[1]
                fastest = min(fastest, longest / 2)
            rest = max(pol.end_progress - val[1], 0.0) * fastest / pol.end_progress
            approach = min(approach, rest - (now - val[0]) / sc)
        # Dense: the inspection interval for the local hazard of the end, bounded.
        look = hist.inspection(x0, pol.dense_max, pol.poll_cost) or pol.dense_max
        dense = min(max(look, pol.dense_min), pol.dense_max)
        return max(approach, dense, lead_r) * sc

    def _blind_delay(self, now: float) -> float:
        pol = self.policy
        sc = pol.scale
        start = self._start_range()
        if start is None:
            elapsed = now - (self.started if self.started is not None else now)
            grown = max(pol.s(pol.blind_dense), pol.blind_growth * elapsed)
            return min(pol.s(pol.blind_max), grown)
        # The start is known within a window: the relay's run times say where the end lies.
        mid = (start[0] + start[1]) / 2
        x0 = (now - mid) / sc
        look = self._prior.run.inspection(x0, pol.blind_max, pol.blind_cost) or pol.blind_max
        return min(max(look, pol.blind_dense), pol.blind_max) * sc
