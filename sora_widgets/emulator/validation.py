"""Checking a submit body the way the relay's contract states it.

Strict on purpose: a client that sends something the contract does not allow should
find out against the emulator, for free, not against the paid relay. Each error names
the offending field. Unknown extra fields are ignored, as relays do.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from .tasks import VideoRequest

__all__ = ["ASPECT_RATIOS", "BadRequest", "parse_submit"]

ASPECT_RATIOS = ("16:9", "9:16")
DURATION = 12


class BadRequest(ValueError):
    """A 400 answer: ``message`` names the field, ``param`` is the field (or None)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def parse_submit(raw: bytes) -> VideoRequest:
    """Parse and validate a ``POST /v1/videos`` body, or raise BadRequest."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("'model' is required and must be a non-blank string, e.g. \"sora-2\"",
                         "model")
    prompt = body.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise BadRequest("'prompt' must be a string", "prompt")
    image = _images(body.get("image"))
    prompt = (prompt or "").strip()
    if not prompt and not image:
        raise BadRequest("one of 'prompt' or 'image' is required", "prompt")
    aspect_ratio = body.get("aspect_ratio")
    if aspect_ratio is None:
        aspect_ratio = ASPECT_RATIOS[0]
    elif aspect_ratio not in ASPECT_RATIOS:
        raise BadRequest("'aspect_ratio' must be \"16:9\" or \"9:16\"", "aspect_ratio")
    duration = body.get("duration")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int) or duration != DURATION
    ):
        raise BadRequest(f"'duration' must be {DURATION} (Sora 2 videos are {DURATION} s)",
                         "duration")
    return VideoRequest(
        model=model.strip(),
        prompt=prompt,
        aspect_ratio=aspect_ratio,
        duration=DURATION,
        image=image,
    )


def _images(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise BadRequest("'image' must be a URL string or a non-empty array of URL strings",
                         "image")
    for item in items:
        if not isinstance(item, str) or not _is_image_ref(item):
            raise BadRequest(
                "'image' entries must be http(s) URLs or data:image/ URIs", "image"
            )
    return tuple(items)


def _is_image_ref(value: str) -> bool:
    if value.startswith("data:image/"):
        return "," in value
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and value == value.strip()
