"""The openai style's two ways to make a video from a finished one.

* ``POST /v1/videos/{id}/remix`` with ``{"prompt"}``: a new video of the parent's model,
  size and length, whose ``remixed_from_video_id`` is the parent;
* ``POST /v1/videos/extensions`` with ``{"video": {"id"} | "id", "prompt", "seconds"}``
  (seconds as a string: 4, 8, 12, 16 or 20): a new, longer video (the parent's length plus
  ``seconds``) that continues the parent.

Both are charged like a submit (their price is the table's for the new video). The parent
must exist (404) and be completed (400 ``video_not_ready`` otherwise); every other field
is an unknown parameter (400), as on ``create``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .tasks import Task, VideoRequest
from .validation import BadRequest, json_object, kind_of, listing

__all__ = ["EXTENSION_SECONDS", "child_request", "parse_extension", "parse_remix"]

EXTENSION_SECONDS = ("4", "8", "12", "16", "20")


def _prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if prompt is None:
        raise BadRequest("Missing required parameter: 'prompt'.", "prompt",
                         "missing_required_parameter")
    if not isinstance(prompt, str):
        raise BadRequest(f"Invalid type for 'prompt': expected a string, but got "
                         f"{kind_of(prompt)} instead.", "prompt", "invalid_type")
    if not prompt.strip():
        raise BadRequest("Invalid 'prompt': the prompt must not be empty.", "prompt",
                         "invalid_value")
    return prompt.strip()


def _only(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for name in body:
        if name not in allowed:
            raise BadRequest(f"Unknown parameter: '{name}'.", name, "unknown_parameter")


def parse_remix(raw: bytes) -> str:
    """The prompt of a remix body, or BadRequest."""
    body = json_object(raw)
    _only(body, ("prompt",))
    return _prompt(body)


def parse_extension(raw: bytes) -> tuple[str, str, int]:
    """(parent id, prompt, seconds) of an extensions body, or BadRequest."""
    body = json_object(raw)
    _only(body, ("video", "prompt", "seconds"))
    video = body.get("video")
    video_id = video.get("id") if isinstance(video, dict) and set(video) == {"id"} else video
    if not isinstance(video_id, str) or not video_id.strip():
        raise BadRequest("Missing required parameter: 'video' (the id of a completed video, "
                         "or {\"id\": ...}).", "video", "missing_required_parameter")
    seconds = body.get("seconds")
    if not isinstance(seconds, str) or seconds not in EXTENSION_SECONDS:
        raise BadRequest(f"Invalid value for 'seconds': expected one of "
                         f"{listing(EXTENSION_SECONDS)}.", "seconds", "invalid_value")
    return video_id.strip(), _prompt(body), int(seconds)


def child_request(parent: Task, prompt: str, kind: str, seconds: int = 0) -> VideoRequest:
    """The request of a remix (``seconds`` 0) or an extension of ``parent``."""
    request = VideoRequest(model=parent.model, prompt=prompt, aspect_ratio=parent.aspect_ratio,
                           duration=parent.duration, image=(), size=parent.size,
                           style=parent.style)
    return replace(request, duration=parent.duration + seconds, parent_id=parent.id,
                   kind=kind)
