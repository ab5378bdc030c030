"""The emulator's knobs: one mutable dataclass, read live by every request.

Assigning a field of a running emulator's config takes effect for the next request; a
task's timeline, though, is fixed when the task is created (its schedule is drawn then),
so timing knobs only affect tasks created afterwards. ``state_dir`` is read once at start.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

__all__ = [
    "GET_FAULT_NAMES",
    "PROGRESS_MODES",
    "RETRY_AFTER_FORMS",
    "EmulatorConfig",
    "ProgressMode",
    "RetryAfterForm",
]

ProgressMode = Literal["normal", "stuck", "missing", "string"]
RetryAfterForm = Literal["seconds", "http-date"]
PROGRESS_MODES: tuple[str, ...] = get_args(ProgressMode)
RETRY_AFTER_FORMS: tuple[str, ...] = get_args(RetryAfterForm)
#: Keys allowed in ``get_fault_rates`` (per-request probabilities on task GETs).
GET_FAULT_NAMES = ("500", "502", "503", "504", "429", "drop", "reset", "timeout", "malformed")


@dataclass
class EmulatorConfig:
    """Every knob of the emulator, with the defaults of the real relay's behaviour."""

    #: Multiplies queue and run times (0.01 turns a 60-180 s job into 0.6-1.8 s).
    time_scale: float = 1.0
    #: Seed of the schedule and fault RNGs; None draws one from the OS.
    seed: int | None = None
    #: Probability that a task fails (at a random point of its run).
    failure_rate: float = 0.0
    #: Queue and run time ranges in unscaled seconds, each drawn uniformly per task.
    queue_seconds: tuple[float, float] = (0.0, 20.0)
    run_seconds: tuple[float, float] = (60.0, 180.0)
    #: Probability that progress pauses at 90-98 % for 5-12 % of the run time.
    stall_probability: float = 0.3
    #: "normal", "stuck" (0 until done), "missing" (no field) or "string" ("42").
    progress_mode: ProgressMode = "normal"
    #: When set, API answers carry ``openai-poll-after-ms: <value>``.
    poll_hint_ms: int | None = None
    #: Lifetime of video links in real (unscaled) seconds; None = never expire.
    url_ttl_seconds: float | None = None
    #: Video size multiplier: 1 gives 320x180 (16:9) or 180x320 (9:16).
    video_scale: float = 1.0
    #: Render one video per aspect ratio instead of one per task (big benchmarks).
    shared_video: bool = False
    #: Number of rendered videos kept in memory.
    video_cache_size: int = 64
    #: Where tasks are persisted so a restarted emulator still knows them (read at start).
    state_dir: Path | None = None
    #: Keys answered with 403 (besides any key starting with "nonvip").
    non_vip_keys: frozenset[str] = frozenset()
    #: Per-request fault probabilities on ``GET /v1/videos/{id}``, e.g. {"503": 0.1}.
    get_fault_rates: dict[str, float] = field(default_factory=dict)
    #: How long a "timeout" fault holds a request before answering normally.
    slow_seconds: float = 30.0
    #: How long an "accept_then_hang" fault holds the connection at most.
    hang_seconds: float = 300.0
    #: Retry-After value on 429/503 answers, and its form.
    retry_after: float = 1.0
    retry_after_form: RetryAfterForm = "seconds"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Normalise convenient inputs (lists, str paths) and reject nonsense with ValueError."""
        if isinstance(self.state_dir, str):
            self.state_dir = Path(self.state_dir)
        self.queue_seconds = _range("queue_seconds", self.queue_seconds)
        self.run_seconds = _range("run_seconds", self.run_seconds)
        self.non_vip_keys = frozenset(self.non_vip_keys)
        self.get_fault_rates = dict(self.get_fault_rates)
        _number("time_scale", self.time_scale, minimum=0.0)
        for name in ("failure_rate", "stall_probability"):
            _number(name, getattr(self, name), minimum=0.0, maximum=1.0)
        for name in ("slow_seconds", "hang_seconds", "retry_after"):
            _number(name, getattr(self, name), minimum=0.0)
        _number("video_scale", self.video_scale, minimum=0.25, maximum=8.0)
        if self.url_ttl_seconds is not None:
            _number("url_ttl_seconds", self.url_ttl_seconds, minimum=0.0)
        if self.poll_hint_ms is not None and (
            isinstance(self.poll_hint_ms, bool)
            or not isinstance(self.poll_hint_ms, int)
            or self.poll_hint_ms < 0
        ):
            raise ValueError("poll_hint_ms must be a non-negative int or None")
        seed = self.seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed must be an int or None")
        if not isinstance(self.video_cache_size, int) or self.video_cache_size < 1:
            raise ValueError("video_cache_size must be a positive int")
        if self.progress_mode not in PROGRESS_MODES:
            raise ValueError(f"progress_mode must be one of {PROGRESS_MODES}")
        if self.retry_after_form not in RETRY_AFTER_FORMS:
            raise ValueError(f"retry_after_form must be one of {RETRY_AFTER_FORMS}")
        for name, rate in self.get_fault_rates.items():
            if name not in GET_FAULT_NAMES:
                raise ValueError(f"unknown fault {name!r} in get_fault_rates: {GET_FAULT_NAMES}")
            _number(f"get_fault_rates[{name!r}]", rate, minimum=0.0, maximum=1.0)
        if sum(self.get_fault_rates.values()) > 1.0 + 1e-9:
            raise ValueError("get_fault_rates must add up to at most 1")

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update (e.g. from JSON) atomically: all fields valid, or none applied."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        if "state_dir" in changes:
            raise ValueError("state_dir cannot be changed on a running emulator")
        candidate = dataclasses.replace(self, **changes)  # runs validate()
        for name in changes:
            setattr(self, name, getattr(candidate, name))

    def to_json(self) -> dict[str, Any]:
        """The config as JSON-ready data."""
        data = dataclasses.asdict(self)
        data["state_dir"] = None if self.state_dir is None else str(self.state_dir)
        data["non_vip_keys"] = sorted(self.non_vip_keys)
        data["queue_seconds"] = list(self.queue_seconds)
        data["run_seconds"] = list(self.run_seconds)
        return data


def _number(
    name: str, value: object, *, minimum: float | None = None, maximum: float | None = None
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}")


def _range(name: str, value: object) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a (low, high) pair")
    low, high = value
    _number(name, low, minimum=0.0)
    _number(name, high, minimum=0.0)
    if low > high:
        raise ValueError(f"{name}: low must be <= high")
    return (float(low), float(high))
