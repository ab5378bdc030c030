"""A relay's answer about a task, parsed leniently: a relay that adds fields, sends
``progress`` as a string or invents a status must not crash the client (unknown statuses
are kept, not guessed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sora_widgets.core.errors import MalformedResponseError
from sora_widgets.core.lifecycle import RelayStatus, relay_status_of

__all__ = ["TaskError", "TaskSnapshot", "as_timestamp"]


@dataclass(frozen=True)
class TaskError:
    message: str
    code: str | None = None


def _as_str(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        text = str(value).strip()
        return text or None
    return None


def _as_progress(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        value = value.strip().rstrip("%").strip()
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    if number != number:  # NaN
        return None
    return int(max(0.0, min(100.0, number)))


def as_timestamp(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (ValueError, OverflowError):
        return None
    return number if 0 < number < 1e11 else None


def _as_error(value: object) -> TaskError | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        message = _as_str(value.get("message")) or "the relay reported a failure without a message"
        return TaskError(message, _as_str(value.get("code")))
    text = _as_str(value)
    return TaskError(text) if text else None


@dataclass(frozen=True)
class TaskSnapshot:
    """One answer of the relay about a task, parsed leniently.

    ``status`` is the relay's raw word (or None when it sent none); ``relay_status`` what it
    means, or None for a word never seen before: that is surfaced, never guessed.
    """

    id: str
    status: str | None
    progress: int | None = None
    video_url: str | None = None
    error: TaskError | None = None
    completed_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def relay_status(self) -> RelayStatus | None:
        return relay_status_of(self.status)

    @property
    def fetch_url(self) -> str | None:
        """Where the video is fetched from (set by the wire adapter; memory only: a CDN
        link is kept raw, unscrubbed)."""
        url = self.extra.get("fetch_url")
        return url if isinstance(url, str) else None

    @property
    def expires_at(self) -> float | None:
        """When the video stops being downloadable (unix seconds), if the relay says."""
        value = self.extra.get("expires_at")
        return value if isinstance(value, float) else None

    @property
    def poll_after(self) -> float | None:
        """The relay's own polling hint from the answer's headers: no GET before this
        many seconds (``openai-poll-after-ms``)."""
        value = self.extra.get("poll_after")
        return value if isinstance(value, float) else None

    @property
    def is_final(self) -> bool:
        return self.relay_status in (RelayStatus.COMPLETED, RelayStatus.FAILED)

    @classmethod
    def parse(cls, payload: object) -> TaskSnapshot:
        """Parse a decoded JSON answer; raise :class:`MalformedResponseError` if it has no id."""
        if not isinstance(payload, Mapping):
            raise MalformedResponseError(
                f"expected a JSON object, got {type(payload).__name__}", status_code=200)
        task_id = _as_str(payload.get("id")) or _as_str(payload.get("task_id"))
        if task_id is None:
            raise MalformedResponseError("the answer has no task id", status_code=200)
        raw_status = _as_str(payload.get("status"))
        status = raw_status[:64] if raw_status else None
        progress = _as_progress(payload.get("progress"))
        if relay_status_of(status) is RelayStatus.COMPLETED:
            progress = 100
        video_url = _as_str(payload.get("video_url"))
        extra = {k: v for k, v in payload.items() if k not in {
            "id", "task_id", "status", "progress", "video_url", "error", "completed_at"}}
        return cls(
            id=task_id[:200],
            status=status,
            progress=progress,
            video_url=video_url,
            error=_as_error(payload.get("error")),
            completed_at=as_timestamp(payload.get("completed_at")),
            extra=extra,
        )
