"""OpenAI-shaped gateways (the official SDK's ``videos`` resource, new-api gateways).

Out: ``model``, ``prompt``, ``size`` ("1280x720"), ``seconds`` as a *string* and one
``input_reference``: an http(s) URL goes as a JSON string, an inline image (a local file,
a last frame) as a multipart file part. Nothing else is sent: these gateways answer 400
to any parameter they do not know.

In: no ``video_url``; the mp4 is at ``GET /v1/videos/{id}/content`` on the relay itself
(so the key goes with it, and only there), until ``expires_at``; its stills at
``?variant=thumbnail`` and ``?variant=spritesheet``. Every answer carries
``openai-poll-after-ms``: no GET before it.

More from a finished video: ``POST /v1/videos/{id}/remix`` (``{"prompt"}``: a new video
whose ``remixed_from_video_id`` is the parent) and ``POST /v1/videos/extensions``
(``{"video": {"id"}, "prompt", "seconds"}``, seconds as a string, like ``create``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from sora_widgets.core.errors import ValidationError
from sora_widgets.core.models import TaskSnapshot, VideoRequest
from sora_widgets.core.snapshot import as_timestamp as _as_timestamp
from sora_widgets.relay.base import (
    billed_usd_of,
    check_variant,
    checked_prompt,
    poll_hint_seconds,
)

__all__ = ["OpenAIWire", "content_url"]

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp",
               "image/gif": "gif"}


def content_url(base_url: str, task_id: str) -> str:
    """Where a completed video's mp4 is: the relay's own ``/content`` endpoint."""
    return f"{base_url.rstrip('/')}/v1/videos/{quote(task_id, safe='')}/content"


def _file_part(data_uri: str) -> tuple[str, bytes, str]:
    """A ``data:image/...;base64,...`` URI as a multipart file part."""
    head, _, payload = data_uri.partition(",")
    mime = head[len("data:"):].split(";")[0].strip().lower()
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("image: the inline image is not valid base64; nothing was sent",
                              field="image") from None
    return f"input_reference.{_EXTENSIONS.get(mime, 'png')}", data, mime or "image/png"


class OpenAIWire:
    style = "openai"

    def submit_body(self, request: VideoRequest) -> dict[str, Any]:
        if request.size is None:
            raise ValidationError("size: an openai-style request needs a size; build it "
                                  "with VideoRequest.create(style='openai')", field="size")
        fields: dict[str, str] = {"model": request.model, "prompt": request.prompt or "",
                                  "size": request.size, "seconds": str(request.duration)}
        if not request.images:
            return {"json": fields}
        reference = request.images[0]
        if reference.startswith("data:"):
            return {"data": fields, "files": {"input_reference": _file_part(reference)}}
        return {"json": {**fields, "input_reference": reference}}

    def snapshot(self, payload: object, *, base_url: str) -> TaskSnapshot:
        snapshot = TaskSnapshot.parse(payload)
        extra: dict[str, Any] = {"fetch_url": content_url(base_url, snapshot.id)}
        if isinstance(payload, Mapping):
            expires = _as_timestamp(payload.get("expires_at"))
            if expires is not None:
                extra["expires_at"] = expires
            billed = billed_usd_of(payload)
            if billed is not None:
                extra["billed_usd"] = billed
        return TaskSnapshot(snapshot.id, snapshot.status, snapshot.progress, None,
                            snapshot.error, snapshot.completed_at, extra)

    def poll_hint(self, headers: Mapping[str, str]) -> float | None:
        return poll_hint_seconds(headers)

    def remix_path(self, task_id: str) -> str | None:
        return f"/v1/videos/{quote(task_id, safe='')}/remix"

    def extend_path(self) -> str | None:
        return "/v1/videos/extensions"

    def remix_body(self, prompt: str) -> dict[str, Any]:
        return {"json": {"prompt": checked_prompt(prompt, "remix")}}

    def extend_body(self, task_id: str, prompt: str, seconds: int) -> dict[str, Any]:
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
            raise ValidationError("seconds: an extension is a whole, positive number of "
                                  "seconds; nothing was sent", field="seconds")
        return {"json": {"video": {"id": task_id}, "prompt": checked_prompt(prompt, "extension"),
                         "seconds": str(seconds)}}

    def still_url(self, task_id: str, variant: str) -> str | None:
        return f"/v1/videos/{quote(task_id, safe='')}/content?variant={check_variant(variant)}"
