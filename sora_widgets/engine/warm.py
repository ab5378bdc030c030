"""Kernels start warm (issue 21 #13): each relay's learned :class:`RelayPrior`, kept in the
journal, read when the poller first meets the relay and written back, debounced, as jobs
complete and at exit.

All journal I/O runs on the events thread: the poller's loop only copies the weights (a
few thousand floats) and posts; the caller's thread never sees any of it. A prior read
back is a teammate's data on a shared journal: it is parsed under a size cap, checked
(shape, finite non-negative numbers, a sane job count) and bounded by
:meth:`RelayPrior.adopt`; anything else is ignored, never raised. The row's key is
:func:`relay_key` — the relay's URL without credentials, its style and the model — never
the API key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from sora_widgets.engine.histogram import NBINS
from sora_widgets.engine.prior import NHISTS, RelayPrior
from sora_widgets.journal.priors import MAX_BODY

if TYPE_CHECKING:
    from sora_widgets.engine.events import EventsThread
    from sora_widgets.engine.job import Job
    from sora_widgets.journal import Journal

__all__ = ["FORMAT", "SAVE_EVERY", "PriorBook", "decode", "encode", "relay_key"]

log = logging.getLogger("sora_widgets.engine.warm")

#: The body's format number (a body of another format is ignored).
FORMAT = 1
#: At most one journal write per relay in this many seconds (plus one at exit).
SAVE_EVERY = 5.0
_MAX_WEIGHT = 1e9          # per bin, in units of the newest job
_MAX_JOBS = 10**9


def relay_key(job: Job) -> str:
    """The journal's name for a job's relay, style and model (credentials, query and
    fragment of the URL are left out: the key never reaches the table)."""
    backend = job.backend
    name = backend.journal_name
    if not backend.emulator:
        parts = urlsplit(name)
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        name = urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))
    return f"{name}|{backend.style}|{job.request.model}"


def encode(weights: list[list[float]], jobs: int) -> str:
    """The journal body: the weights, 6 significant digits (about 40 kB)."""
    rounded = [[float(f"{w:.6g}") for w in hist] for hist in weights]
    return json.dumps({"format": FORMAT, "jobs": jobs, "hists": rounded},
                      separators=(",", ":"))


def decode(body: object) -> tuple[list[list[float]], int] | None:
    """``(weights, jobs learned)`` from a journal body, or None: anything malformed."""
    if not isinstance(body, str) or len(body) > MAX_BODY:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    jobs, hists = data.get("jobs"), data.get("hists")
    if (not isinstance(jobs, int) or isinstance(jobs, bool) or not 0 <= jobs <= _MAX_JOBS
            or not isinstance(hists, list) or len(hists) != NHISTS):
        return None
    weights: list[list[float]] = []
    for hist in hists:
        if not isinstance(hist, list) or len(hist) != NBINS:
            return None
        row = []
        for w in hist:
            if isinstance(w, bool) or not isinstance(w, (int, float)):
                return None
            value = float(w)
            if not (math.isfinite(value) and 0.0 <= value <= _MAX_WEIGHT):
                return None
            row.append(value)
        if sum(row) <= 0.0:
            return None
        weights.append(row)
    return weights, jobs


class _Entry:
    __slots__ = ("dirty", "journals", "last_save", "prior", "timer")

    def __init__(self, prior: RelayPrior) -> None:
        self.prior = prior
        self.journals: dict[int, Journal] = {}
        self.dirty = False
        self.last_save = -math.inf
        self.timer: asyncio.TimerHandle | None = None


class PriorBook:
    """The poller's priors by :func:`relay_key` (loop thread only), kept in the journal.

    ``events`` gives the events thread (None while the poller is stopped: nothing is
    read or written then)."""

    def __init__(self, events: Callable[[], EventsThread[Any] | None],
                 save_every: float = SAVE_EVERY) -> None:
        self._events = events
        self._save_every = save_every
        self._entries: dict[str, _Entry] = {}

    def prior_for(self, job: Job) -> RelayPrior:
        """The job's relay prior; the first time a relay (or a journal) is met, its
        stored prior is read on the events thread and adopted when it arrives."""
        key = relay_key(job)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(RelayPrior())
            entry.prior.on_learn = lambda: self._learned(key)
        journal = job.journal
        if id(journal) not in entry.journals:
            entry.journals[id(journal)] = journal
            if entry.prior.jobs_learned == 0:
                self._post(_load, journal, key, asyncio.get_running_loop(), self._adopt)
        return entry.prior

    def flush(self, events: EventsThread[Any] | None) -> None:
        """Write every prior learned since its last write (loop thread, at exit: the
        poller has already let go of its events thread, so it is passed here)."""
        for key, entry in self._entries.items():
            if entry.timer is not None:
                entry.timer.cancel()
                entry.timer = None
            if entry.dirty:
                self._save(key, events)

    def _adopt(self, key: str, loaded: tuple[list[list[float]], int]) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry.prior.jobs_learned == 0:   # nothing of its own yet
            entry.prior.adopt(*loaded)

    def _learned(self, key: str) -> None:
        entry = self._entries[key]
        entry.dirty = True
        if entry.timer is not None:
            return
        wait = entry.last_save + self._save_every - time.monotonic()
        if wait <= 0:
            self._save(key)
        else:
            entry.timer = asyncio.get_running_loop().call_later(wait, self._timed_save, key)

    def _timed_save(self, key: str) -> None:
        self._entries[key].timer = None
        self._save(key)

    def _save(self, key: str, events: EventsThread[Any] | None = None) -> None:
        entry = self._entries[key]
        entry.dirty = False
        entry.last_save = time.monotonic()
        weights, jobs = entry.prior.export(), entry.prior.jobs_learned
        for journal in entry.journals.values():
            self._post(_store, journal, key, weights, jobs, events=events)

    def _post(self, fn: Callable[..., None], *args: Any,
              events: EventsThread[Any] | None = None) -> None:
        events = events or self._events()
        if events is not None:
            with contextlib.suppress(RuntimeError):   # shut down meanwhile: kept in memory
                events.submit(fn, *args)


def _load(journal: Journal, key: str, loop: asyncio.AbstractEventLoop,
          adopt: Callable[[str, tuple[list[list[float]], int]], None]) -> None:
    """(Events thread.) Read, check, and hand the prior to the loop; never raises."""
    try:
        loaded = decode(journal.load_prior(key))
    except Exception as exc:   # an old journal, a database down: start cold
        log.debug("relay prior %s not read: %s", key, type(exc).__name__)
        return
    if loaded is None:
        return
    with contextlib.suppress(RuntimeError):   # the loop has closed
        loop.call_soon_threadsafe(adopt, key, loaded)


def _store(journal: Journal, key: str, weights: list[list[float]], jobs: int) -> None:
    """(Events thread.) Write one relay's prior; a failure costs only a warm start."""
    try:
        journal.save_prior(key, encode(weights, jobs), jobs)
    except Exception as exc:
        log.debug("relay prior %s not saved: %s", key, type(exc).__name__)
