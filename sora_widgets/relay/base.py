"""What every wire adapter provides, and the pieces they share."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

from sora_widgets.core.errors import ValidationError
from sora_widgets.core.models import TaskSnapshot, VideoRequest

__all__ = ["STILL_VARIANTS", "WireAdapter", "WithoutFollowUps", "billed_usd_of",
           "check_variant", "checked_prompt", "poll_hint_seconds"]

#: The header a relay uses to say how long to wait before the next GET.
POLL_HINT_HEADER = "openai-poll-after-ms"
#: A hint longer than this is not believed (a broken header must not stall a paid job).
MAX_POLL_HINT_SECONDS = 600.0
#: Stills a relay may render for a task (``content?variant=``).
STILL_VARIANTS = ("thumbnail", "spritesheet")
#: A billed figure above this is not believed (a garbled answer must not book a fortune).
MAX_BILLED_USD = 10_000.0
_MAX_PROMPT_CHARS = 10_000


class WireAdapter(Protocol):
    """One relay style: request bodies out, snapshots in. Pure: it never sends anything.

    Paths are relative to the base URL (the part before ``/v1/videos``); None means the
    style has no such endpoint, and the client refuses before sending anything."""

    style: str

    def submit_body(self, request: VideoRequest) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client.build_request``: ``json=`` or
        ``data=`` + ``files=`` (multipart)."""
        ...

    def snapshot(self, payload: object, *, base_url: str) -> TaskSnapshot:
        """An answer (decoded JSON) as a snapshot; ``extra`` holds ``fetch_url`` (where
        the video is, once completed), ``expires_at`` and ``billed_usd`` (the relay's own
        ``usage.cost``) when the relay gives them.
        Raises ``MalformedResponseError`` for an answer without a task id."""
        ...

    def poll_hint(self, headers: Mapping[str, str]) -> float | None:
        """Seconds the relay asks us to wait before the next GET, or None."""
        ...

    def remix_path(self, task_id: str) -> str | None:
        """Where a remix of ``task_id`` is POSTed, or None."""
        ...

    def extend_path(self) -> str | None:
        """Where an extension is POSTed, or None."""
        ...

    def remix_body(self, prompt: str) -> dict[str, Any]:
        """The remix POST's keyword arguments (a ValidationError where there is none)."""
        ...

    def extend_body(self, task_id: str, prompt: str, seconds: int) -> dict[str, Any]:
        """The extension POST's keyword arguments (a ValidationError where there is none)."""
        ...

    def still_url(self, task_id: str, variant: str) -> str | None:
        """Where a still (``thumbnail`` or ``spritesheet``) of a completed task is, relative
        to the base URL (fetched with the key), or None where the relay renders none."""
        ...


def poll_hint_seconds(headers: Mapping[str, str]) -> float | None:
    """``openai-poll-after-ms`` in seconds (bounded), or None when absent or garbled."""
    raw = headers.get(POLL_HINT_HEADER)
    if not raw:
        return None
    try:
        value = float(raw) / 1000.0
    except ValueError:
        return None
    if value != value or value < 0:
        return None
    return min(value, MAX_POLL_HINT_SECONDS)


def billed_usd_of(payload: object) -> float | None:
    """``usage.cost`` of an answer as a float of USD, or None when absent or not a sane
    number (a bool, a string, NaN, negative, absurdly large): never guessed."""
    if not isinstance(payload, Mapping):
        return None
    usage = payload.get("usage")
    if not isinstance(usage, Mapping):
        return None
    cost = usage.get("cost")
    if isinstance(cost, bool) or not isinstance(cost, (int, float)):
        return None
    value = float(cost)
    if not math.isfinite(value) or value < 0 or value > MAX_BILLED_USD:
        return None
    return round(value, 6)


def checked_prompt(prompt: object, what: str) -> str:
    """A remix/extension prompt: text, not blank, not huge, no control characters."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValidationError(f"prompt: a {what} needs a prompt; nothing was sent",
                              field="prompt")
    text = prompt.strip()
    if len(text) > _MAX_PROMPT_CHARS:
        raise ValidationError(f"prompt: longer than {_MAX_PROMPT_CHARS} characters; nothing "
                              "was sent", field="prompt")
    if any((ord(c) < 32 and c not in "\n\r\t") or ord(c) == 127
           or 0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise ValidationError("prompt: contains a character that cannot be sent; nothing "
                              "was sent", field="prompt")
    return text


def check_variant(variant: str) -> str:
    """``thumbnail`` or ``spritesheet`` (a ValidationError names them otherwise)."""
    if variant not in STILL_VARIANTS:
        raise ValidationError(f"variant: must be one of {', '.join(STILL_VARIANTS)}, not "
                              f"{str(variant)[:20]!r}", field="variant")
    return variant


class WithoutFollowUps:
    """The follow-up half of a style that has no remix, no extension and no relay stills:
    each is refused before anything is sent, pointing at ``continue_with``."""

    style: str

    def remix_path(self, task_id: str) -> str | None:
        return None

    def extend_path(self) -> str | None:
        return None

    def remix_body(self, prompt: str) -> dict[str, Any]:
        raise ValidationError(f"remix: the {self.style} style has no remix endpoint; "
                              "continue_with (the last frame) is the way; nothing was sent",
                              field="remix")

    def extend_body(self, task_id: str, prompt: str, seconds: int) -> dict[str, Any]:
        raise ValidationError(f"extend: the {self.style} style has no extension endpoint; "
                              "continue_with (the last frame) is the way; nothing was sent",
                              field="extend")

    def still_url(self, task_id: str, variant: str) -> str | None:
        return None

