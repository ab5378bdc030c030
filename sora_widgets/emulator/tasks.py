"""A task and its timeline: drawn once at creation, then a pure function of the clock.

Nothing runs in the background. A task's whole future (queue time, run time, progress
curve with its optional stall, failure point) is drawn from a seeded RNG when it is
created, so its state at any instant is ``task.state_at(now)`` and the exact moment it
becomes final (``completed_at``) is known from the start. That makes benchmarks exact
(server-side completion time is not "when somebody polled") and lets a persisted task
continue by wall clock after a restart.
"""

from __future__ import annotations

import bisect
import math
import random
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

__all__ = ["FAILURES", "Task", "TaskState", "VideoRequest", "draw_task", "new_task_id"]

#: Error bodies of failed tasks, as (message, code).
FAILURES: tuple[tuple[str, str], ...] = (
    ("content policy violation: the request was flagged by the moderation system",
     "content_policy"),
    ("content policy violation: the reference image may contain a real person",
     "content_policy"),
    ("generation failed: the upstream model returned an internal error, please retry",
     "generation_failed"),
)
_SEGMENTS = 24  # pieces of the piecewise-linear progress curve
_MAX_RUNNING_PROGRESS = 99.0


def new_task_id(style: str = "artifex") -> str:
    """An id shaped like the relay's: ``v_`` + 24 hex characters (artifex), like
    OpenAI's: ``video_`` + 40 hex characters (openai), or ``job_`` + 32 (router)."""
    if style == "openai":
        return "video_" + secrets.token_hex(20)
    if style == "router":
        return "job_" + secrets.token_hex(16)
    return "v_" + secrets.token_hex(12)


@dataclass(frozen=True)
class VideoRequest:
    """A validated submit body (either style)."""

    model: str
    prompt: str
    aspect_ratio: str
    duration: int
    image: tuple[str, ...]
    #: The openai style's ``size`` ("1280x720"...); None for artifex requests.
    size: str | None = None
    #: The first-frame image, decoded and re-encoded (JPEG) at submit; None when no image
    #: was given or it could not be fetched (a non-loopback URL is never fetched).
    first_frame: bytes | None = field(default=None, repr=False)
    style: str = "artifex"
    #: router style: the seed (same seed and prompt: the same clip), the resolution, audio,
    #: and the last-frame image (decoded and re-encoded, like ``first_frame``).
    seed: int | None = None
    resolution: str | None = None
    generate_audio: bool | None = None
    last_frame: bytes | None = field(default=None, repr=False)
    #: openai style: the video this one remixes or extends, and which of the two it is.
    parent_id: str | None = None
    kind: str = "create"


class TaskState(NamedTuple):
    """What a task looks like at one instant."""

    status: str  # "queued" | "in_progress" | "completed" | "failed"
    progress: int  # 0..100

    @property
    def final(self) -> bool:
        return self.status in ("completed", "failed")


@dataclass(frozen=True)
class Task:
    """One video task with its whole schedule (times are unix seconds, floats)."""

    id: str
    model: str
    prompt: str
    aspect_ratio: str
    duration: int
    image: tuple[str, ...]
    created_at: float
    started_at: float
    #: The exact moment the task becomes final: completed, or failed if ``error_code``.
    completed_at: float
    error_message: str | None
    error_code: str | None
    #: Progress curve: seconds after ``started_at`` -> progress, both non-decreasing.
    curve_t: tuple[float, ...] = field(repr=False)
    curve_p: tuple[float, ...] = field(repr=False)
    #: The style the task was submitted in, its openai ``size`` (None for artifex), whether
    #: a first-frame image is stored for it, and when its content expires (openai style;
    #: whole unix seconds, None = never).
    style: str = "artifex"
    size: str | None = None
    first_frame: bool = False
    expires_at: float | None = None
    #: The router fields (see ``VideoRequest``), the parent of a remix or an extension
    #: (``kind``), and what the task is billed (``usage.cost``; None: no price known).
    seed: int | None = None
    resolution: str | None = None
    generate_audio: bool | None = None
    parent_id: str | None = None
    kind: str = "create"
    cost_usd: float | None = None
    last_frame: bool = False

    @property
    def fails(self) -> bool:
        return self.error_code is not None

    @property
    def status(self) -> str:
        """The status now."""
        return self.state_at(time.time()).status

    def state_at(self, now: float) -> TaskState:
        """The state at ``now``; a pure function of the schedule."""
        if now < self.started_at:
            return TaskState("queued", 0)
        if now >= self.completed_at:
            if self.fails:
                return TaskState("failed", self._progress(self.completed_at - self.started_at))
            return TaskState("completed", 100)
        return TaskState("in_progress", self._progress(now - self.started_at))

    def _progress(self, elapsed: float) -> int:
        i = bisect.bisect_right(self.curve_t, elapsed)
        if i <= 0:
            return 0
        if i >= len(self.curve_t):
            value = self.curve_p[-1]
        else:
            t0, t1 = self.curve_t[i - 1], self.curve_t[i]
            p0, p1 = self.curve_p[i - 1], self.curve_p[i]
            value = p0 if t1 <= t0 else p0 + (p1 - p0) * (elapsed - t0) / (t1 - t0)
        return int(min(max(value, 0.0), _MAX_RUNNING_PROGRESS))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("image", "curve_t", "curve_p"):
            data[name] = list(data[name])
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        values = dict(data)
        for name in ("image", "curve_t", "curve_p"):
            values[name] = tuple(values[name])
        return cls(**values)


def draw_task(
    rng: random.Random,
    request: VideoRequest,
    *,
    task_id: str,
    now: float,
    time_scale: float,
    queue_seconds: tuple[float, float],
    run_seconds: tuple[float, float],
    stall_probability: float,
    failure_rate: float,
    content_ttl_seconds: float | None = None,
    cost_usd: float | None = None,
) -> Task:
    """Draw a task's whole future from ``rng`` (which should be private to this task)."""
    queue = rng.uniform(*queue_seconds) * time_scale
    run = rng.uniform(*run_seconds) * time_scale
    curve_t, curve_p = _progress_curve(rng, run, stall_probability)
    message: str | None = None
    code: str | None = None
    final_after = run
    if rng.random() < failure_rate:
        message, code = rng.choice(FAILURES)
        final_after = run * rng.uniform(0.05, 0.95)
    started = now + queue
    completed = started + final_after
    expires: float | None = None
    if code is None and content_ttl_seconds is not None:
        expires = float(math.ceil(completed + content_ttl_seconds))
    return Task(
        id=task_id,
        model=request.model,
        prompt=request.prompt,
        aspect_ratio=request.aspect_ratio,
        duration=request.duration,
        image=request.image,
        created_at=now,
        started_at=started,
        completed_at=completed,
        error_message=message,
        error_code=code,
        curve_t=curve_t,
        curve_p=curve_p,
        style=request.style,
        size=request.size,
        first_frame=request.first_frame is not None,
        expires_at=expires,
        seed=request.seed,
        resolution=request.resolution,
        generate_audio=request.generate_audio,
        parent_id=request.parent_id,
        kind=request.kind,
        cost_usd=cost_usd,
        last_frame=request.last_frame is not None,
    )


def _progress_curve(
    rng: random.Random, run: float, stall_probability: float
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """A noisy, monotonic, roughly linear 0 -> 99 curve over ``run`` seconds.

    With probability ``stall_probability`` the curve holds at a value in 90-98 for 5-12 % of
    the run; the run time includes that pause, so the completion time does not move.
    """
    stall = rng.uniform(0.05, 0.12) * run if rng.random() < stall_probability else 0.0
    stall_at = rng.uniform(90.0, 98.0)
    active = run - stall
    steps = [rng.uniform(0.6, 1.4) for _ in range(_SEGMENTS)]
    total = sum(steps)
    times = [active * i / _SEGMENTS for i in range(_SEGMENTS + 1)]
    values = [0.0]
    for step in steps:
        values.append(values[-1] + _MAX_RUNNING_PROGRESS * step / total)
    if stall <= 0.0:
        return tuple(times), tuple(values)
    # Insert the pause where the curve crosses stall_at, shifting later knots by its length.
    i = bisect.bisect_left(values, stall_at)
    t0, t1, p0, p1 = times[i - 1], times[i], values[i - 1], values[i]
    t_stall = t0 + (t1 - t0) * (stall_at - p0) / (p1 - p0) if p1 > p0 else t0
    new_t = [*times[:i], t_stall, t_stall + stall, *(t + stall for t in times[i:])]
    new_p = [*values[:i], stall_at, stall_at, *values[i:]]
    return tuple(new_t), tuple(new_p)
