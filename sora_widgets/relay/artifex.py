"""The seed's relay (``relay-api.md``): aspect_ratio + integer duration + image URL(s) in,
a ``video_url`` out (usually a signed CDN link: fetched without the key)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sora_widgets.core.models import TaskSnapshot, VideoRequest
from sora_widgets.relay.base import WithoutFollowUps, billed_usd_of, poll_hint_seconds

__all__ = ["ArtifexWire"]


class ArtifexWire(WithoutFollowUps):
    style = "artifex"

    def submit_body(self, request: VideoRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": request.model}
        if request.prompt is not None:
            body["prompt"] = request.prompt
        body["aspect_ratio"] = request.aspect_ratio
        body["duration"] = request.duration
        if len(request.images) == 1:
            body["image"] = request.images[0]
        elif request.images:
            body["image"] = list(request.images)
        return {"json": body}

    def snapshot(self, payload: object, *, base_url: str) -> TaskSnapshot:
        snapshot = TaskSnapshot.parse(payload)
        extra: dict[str, Any] = {}
        if snapshot.video_url:
            extra["fetch_url"] = snapshot.video_url
        billed = billed_usd_of(payload)
        if billed is not None:
            extra["billed_usd"] = billed
        return TaskSnapshot(snapshot.id, snapshot.status, snapshot.progress, snapshot.video_url,
                            snapshot.error, snapshot.completed_at, extra)

    def poll_hint(self, headers: Mapping[str, str]) -> float | None:
        return poll_hint_seconds(headers)

