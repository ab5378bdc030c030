"""Histograms on a signed-log grid of real seconds (fine near 0, wide far away): the
empirical distributions the poll schedule learns per relay (:mod:`.prior`), with the few
questions it asks of them (quantiles, conditional quantiles, the overshoot budget point).
Fixed size, no randomness: memory stays flat after 10 or 10,000 jobs.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right

__all__ = ["NBINS", "Hist"]


# --------------------------------------------------------------------------------------------
# histograms on a signed-log grid (real seconds): fine near 0, wide far away
# --------------------------------------------------------------------------------------------

def _grid(unit: float = 0.25, per_side: int = 64, span: float = 3600.0) -> tuple[float, ...]:
    step = math.log1p(span / unit) / per_side
    pos = [unit * math.expm1(step * k) for k in range(1, per_side + 1)]
    return (*(-x for x in reversed(pos)), 0.0, *pos)


_EDGES = _grid()
_NBINS = len(_EDGES) - 1
#: Bins in every histogram (what a prior kept in the journal must have).
NBINS = _NBINS
_LOW, _HIGH = _EDGES[0], _EDGES[-1]


class Hist:
    """Weights on ``_EDGES`` bins, density uniform within a bin; CDF cached until changed."""

    __slots__ = ("cum", "w")

    def __init__(self) -> None:
        self.w = [0.0] * _NBINS
        self.cum: list[float] | None = None

    def add(self, lo: float, hi: float, weight: float) -> None:
        """Spread ``weight`` uniformly over [lo, hi] (clamped to the grid)."""
        lo = min(max(lo, _LOW), _HIGH)
        hi = min(max(hi, lo), _HIGH)
        self.cum = None
        i = min(bisect_right(_EDGES, lo) - 1, _NBINS - 1)
        if hi - lo < 1e-9:
            self.w[i] += weight
            return
        while i < _NBINS and _EDGES[i] < hi:
            overlap = min(hi, _EDGES[i + 1]) - max(lo, _EDGES[i])
            if overlap > 0:
                self.w[i] += weight * overlap / (hi - lo)
            i += 1

    def scale(self, factor: float) -> None:
        self.w = [x * factor for x in self.w]
        self.cum = None

    def _cum(self) -> list[float]:
        cum = self.cum
        if cum is None:
            cum = [0.0] * (_NBINS + 1)
            total = 0.0
            for i, x in enumerate(self.w):
                total += x
                cum[i + 1] = total
            self.cum = cum
        return cum

    def cdf(self, x: float) -> float:
        cum = self._cum()
        total = cum[-1]
        if total <= 0 or x <= _LOW:
            return 0.0
        if x >= _HIGH:
            return 1.0
        i = bisect_right(_EDGES, x) - 1
        e0, e1 = _EDGES[i], _EDGES[i + 1]
        return (cum[i] + self.w[i] * (x - e0) / (e1 - e0)) / total

    def quantile(self, u: float) -> float:
        cum = self._cum()
        target = min(max(u, 0.0), 1.0) * cum[-1]
        i = min(max(bisect_left(cum, target) - 1, 0), _NBINS - 1)   # the bin reaching it
        while i < _NBINS - 1 and self.w[i] <= 0:
            i += 1
        w = self.w[i]
        frac = 0.0 if w <= 0 else min(max((target - cum[i]) / w, 0.0), 1.0)
        return _EDGES[i] + frac * (_EDGES[i + 1] - _EDGES[i])

    def cond_quantile(self, x0: float, u: float) -> float | None:
        """Quantile ``u`` of the distribution given a value above ``x0`` (None: no mass)."""
        f0 = self.cdf(x0)
        if f0 >= 1.0 - 1e-6:
            return None
        return max(x0, self.quantile(f0 + u * (1.0 - f0)))

    def budget_point(self, x0: float, eps: float) -> float | None:
        """The largest ``u`` with E[(u − X)⁺ | X > x0] ≤ eps (None: no mass above ``x0``).

        Polling at ``u`` costs, on average over the jobs still running at ``x0``, at most
        ``eps`` seconds of unnoticed completion: far from the mass ``u`` jumps across it
        (stopping earlier when the left tail is long), inside it ``u − x0`` is about
        √(2·eps/hazard), the classic inspection interval.
        """
        cum = self._cum()
        total = cum[-1]
        f0 = self.cdf(x0)
        if total <= 0 or f0 >= 1.0 - 1e-6:
            return None
        budget = eps * (1.0 - f0)
        a = max(x0, _LOW)
        i = min(bisect_right(_EDGES, a) - 1, _NBINS - 1)
        fa = f0
        acc = 0.0
        while i < _NBINS:
            b = _EDGES[i + 1]
            fb = cum[i + 1] / total
            area = ((fa - f0) + (fb - f0)) / 2 * (b - a)
            if acc + area >= budget:
                k = (fb - fa) / (b - a) if b > a else 0.0
                left, need = fa - f0, budget - acc
                if k > 1e-15:
                    step = (-left + math.sqrt(left * left + 2 * k * need)) / k
                else:
                    step = need / left if left > 0 else b - a
                return a + min(max(step, 0.0), b - a)
            acc += area
            a, fa = b, fb
            i += 1
        return _HIGH

    def cond_prob(self, x0: float, x1: float) -> float | None:
        """P(value ≤ x1 | value > x0) (None: no mass above ``x0``)."""
        f0 = self.cdf(x0)
        if f0 >= 1.0 - 1e-6:
            return None
        return (self.cdf(x1) - f0) / (1.0 - f0)

    def inspection(self, x0: float, window: float, cost: float) -> float | None:
        """√(2·cost/hazard): the interval that balances ``cost`` per look against the
        expected unnoticed time, for the mean hazard over (x0, x0 + window] given a
        value above ``x0`` (inf: no mass in the window; None: no mass above ``x0``)."""
        p = self.cond_prob(x0, x0 + window)
        if p is None:
            return None
        hazard = -math.log(max(1.0 - p, 1e-9)) / window
        return math.sqrt(2 * cost / hazard) if hazard > 0 else math.inf


# --------------------------------------------------------------------------------------------
# the shared, learned part
# --------------------------------------------------------------------------------------------
