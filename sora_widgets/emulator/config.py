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
    "CANONICAL_STATUSES",
    "COST_REPORTS",
    "DEFAULT_POLL_AFTER_MS",
    "DEFAULT_PRICES",
    "GET_FAULT_NAMES",
    "PROGRESS_MODES",
    "RETRY_AFTER_FORMS",
    "STATUS_SYNONYMS",
    "STYLES",
    "EmulatorConfig",
    "ProgressMode",
    "RetryAfterForm",
    "Style",
]

ProgressMode = Literal["normal", "stuck", "missing", "string"]
RetryAfterForm = Literal["seconds", "http-date"]
#: The wire style: "artifex" (the seed relay's page), "openai" (the SDK's ``videos``) or
#: "router" (OpenRouter's asynchronous video API).
Style = Literal["artifex", "openai", "router"]
#: Where answers carry ``usage.cost``: "auto" (the router style only, as the real ones do),
#: "always" (every style that knows a price) or "never".
CostReport = Literal["auto", "always", "never"]
PROGRESS_MODES: tuple[str, ...] = get_args(ProgressMode)
RETRY_AFTER_FORMS: tuple[str, ...] = get_args(RetryAfterForm)
STYLES: tuple[str, ...] = get_args(Style)
COST_REPORTS: tuple[str, ...] = get_args(CostReport)
#: What the emulator bills, in USD, by style and model: per clip on the artifex style, per
#: second of video on the others; a ``model@shape`` key (a size, or a router resolution)
#: overrides the model's price for that shape.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "artifex": {"sora-2": 0.90},
    "openai": {"sora-2": 0.10, "sora-2-pro": 0.30, "sora-2-pro@1792x1024": 0.50,
               "sora-2-pro@1024x1792": 0.50},
    "router": {"openai/sora-2": 0.10, "openai/sora-2-pro": 0.30,
               "openai/sora-2-pro@1080p": 0.50, "google/veo-3.1": 0.40},
}
CANONICAL_STATUSES = ("queued", "in_progress", "completed", "failed")
#: What ``status_synonyms=True`` answers instead of each canonical status (one per task,
#: picked from the task id, so a task never changes vocabulary mid-way).
STATUS_SYNONYMS: dict[str, tuple[str, ...]] = {
    "queued": ("pending", "submitted"),
    "in_progress": ("processing", "running"),
    "completed": ("succeeded", "success", "finished"),
    "failed": ("error", "cancelled", "expired"),
}
#: The openai style's ``openai-poll-after-ms`` in unscaled ms (answered x ``time_scale``).
DEFAULT_POLL_AFTER_MS = 2000
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
    #: When set, API answers carry ``openai-poll-after-ms: <value>`` (this exact value). When
    #: None, the artifex style sends no such header and the openai style sends
    #: ``round(DEFAULT_POLL_AFTER_MS * time_scale)``.
    poll_hint_ms: int | None = None
    #: Lifetime of signed video links (artifex ``video_url``, router ``urls``) in real
    #: (unscaled) seconds; None = never expire.
    url_ttl_seconds: float | None = None
    #: Video size multiplier: 1 gives 640x360 (16:9) or 360x640 (9:16), the long side being
    #: 640 px for every shape (0.5 gives the 320x180 of version 0.1).
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
    #: The wire style, read per request: "artifex" (``relay-api.md``: aspect_ratio, duration,
    #: image, ``video_url`` links), "openai" (size, seconds as a string, input_reference
    #: as JSON or multipart, ``GET /v1/videos/{id}/content``, ``openai-poll-after-ms``,
    #: remix, extensions, stills) or "router" (``router.py``: under ``/api``).
    style: Style = "artifex"
    #: openai style: a completed video's content can be downloaded until ``expires_at`` =
    #: completion + this many real (unscaled) seconds, rounded up to a whole second; None =
    #: never (``expires_at`` null). Fixed when the task is created.
    content_ttl_seconds: float | None = 3600.0
    #: The status of ``GET /v1/videos/{id}/content`` once the content expired: 410 or 404.
    content_expired_status: int = 410
    #: openai style: reject an ``input_reference`` whose pixel size is not the requested
    #: ``size`` (the real API does); off by default, the image is then scaled to cover.
    strict_reference_size: bool = False
    #: Answer gateway synonyms instead of queued/in_progress/completed/failed: True uses
    #: ``STATUS_SYNONYMS`` (one word per task), a mapping such as {"completed": "succeeded"}
    #: or {"failed": ["error", "cancelled"]} picks per status; False answers the canonical words.
    status_synonyms: bool | dict[str, str | list[str]] = False
    #: When set, each task's first ``mystery_answers`` GET answers carry this status instead
    #: of the real one (a word no client has seen before); progress and the rest stay real.
    mystery_status: str | None = None
    mystery_answers: int = 3
    #: The billed prices (``usage.cost``), by style and model: see ``DEFAULT_PRICES``. A
    #: task's cost is fixed when it is created.
    prices: dict[str, dict[str, float]] = field(
        default_factory=lambda: {style: dict(table) for style, table in DEFAULT_PRICES.items()})
    #: Which answers carry ``usage.cost``: see ``CostReport``.
    report_cost: CostReport = "auto"
    #: router style: completed answers also carry signed ``urls`` (no key needed), pointing
    #: at ``signed_url_base`` (e.g. a storage host; None: the emulator's own origin).
    signed_urls: bool = False
    signed_url_base: str | None = None

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
        _number("video_scale", self.video_scale, minimum=0.25, maximum=4.0)
        for name in ("url_ttl_seconds", "content_ttl_seconds"):
            if getattr(self, name) is not None:
                _number(name, getattr(self, name), minimum=0.0)
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}")
        if self.report_cost not in COST_REPORTS:
            raise ValueError(f"report_cost must be one of {COST_REPORTS}")
        if not isinstance(self.signed_urls, bool):
            raise ValueError("signed_urls must be a bool")
        if self.signed_url_base is not None and (
            not isinstance(self.signed_url_base, str)
            or not self.signed_url_base.startswith(("http://", "https://"))
        ):
            raise ValueError("signed_url_base must be an http(s) URL or None")
        self.prices = _prices(self.prices)
        if self.content_expired_status not in (404, 410) or isinstance(
            self.content_expired_status, bool
        ):
            raise ValueError("content_expired_status must be 404 or 410")
        if not isinstance(self.strict_reference_size, bool):
            raise ValueError("strict_reference_size must be a bool")
        self.status_synonyms = _synonyms(self.status_synonyms)
        if self.mystery_status is not None and (
            not isinstance(self.mystery_status, str) or not self.mystery_status.strip()
        ):
            raise ValueError("mystery_status must be a non-blank string or None")
        if (
            isinstance(self.mystery_answers, bool)
            or not isinstance(self.mystery_answers, int)
            or self.mystery_answers < 0
        ):
            raise ValueError("mystery_answers must be a non-negative int")
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


def _synonyms(value: object) -> bool | dict[str, str | list[str]]:
    if isinstance(value, bool):
        return value
    if not isinstance(value, dict):
        raise ValueError("status_synonyms must be a bool or a mapping status -> word(s)")
    result: dict[str, str | list[str]] = {}
    for status, words in value.items():
        if status not in CANONICAL_STATUSES:
            raise ValueError(f"status_synonyms: unknown status {status!r}; "
                             f"known: {', '.join(CANONICAL_STATUSES)}")
        items = [words] if isinstance(words, str) else words
        if (
            not isinstance(items, (list, tuple))
            or not items
            or not all(isinstance(w, str) and w.strip() for w in items)
        ):
            raise ValueError(f"status_synonyms[{status!r}] must be a word or a non-empty list "
                             "of words")
        result[status] = words if isinstance(words, str) else list(items)
    return result


def _prices(value: object) -> dict[str, dict[str, float]]:
    if not isinstance(value, dict):
        raise ValueError("prices must be a mapping style -> {model: USD}")
    result: dict[str, dict[str, float]] = {}
    for style, table in value.items():
        if style not in STYLES or not isinstance(table, dict):
            raise ValueError(f"prices: {style!r} is not a style with a {{model: USD}} table")
        for model, usd in table.items():
            _number(f"prices[{style!r}][{model!r}]", usd, minimum=0.0)
        result[style] = {str(model): float(usd) for model, usd in table.items()}
    return result


def _range(name: str, value: object) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a (low, high) pair")
    low, high = value
    _number(name, low, minimum=0.0)
    _number(name, high, minimum=0.0)
    if low > high:
        raise ValueError(f"{name}: low must be <= high")
    return (float(low), float(high))
