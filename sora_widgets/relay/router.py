"""OpenRouter-shaped relays (OpenRouter's asynchronous video API and gateways like it).

Out: ``POST /api/v1/videos`` (the base URL is the part before ``/v1/videos``, so
``https://openrouter.ai/api``) with a JSON body of exactly ``model`` (vendor-prefixed:
``openai/sora-2``, ``google/veo-3.1``), ``prompt``, an integer ``duration``,
``aspect_ratio``, and, only when the request sets them, ``resolution``, ``generate_audio``,
``seed`` and ``frame_images`` (``[{"type": "image_url", "image_url": {"url": ...},
"frame_type": "first_frame" | "last_frame"}]``). Never ``size``, ``seconds`` or ``image``:
the schema is closed (provider-specific extras go under ``provider.options``, which this
package does not send) and a value outside a model's sets is a 400.

In: ``{id, polling_url, status: "pending"}``, then ``GET /api/v1/videos/{id}``:
``pending``, ``in_progress``, ``completed``, ``failed``, ``cancelled``, ``expired`` (the last
two are failures of an accepted job; the words are mapped in ``core/lifecycle.py``).
Completed answers carry ``unsigned_urls`` (the relay's own ``/content?index=0``: fetched
**with** the key) and maybe signed ``urls`` (a storage link: fetched **without** it), and
``usage.cost``, the billed figure, kept in ``extra["billed_usd"]``. ``error`` is a string
or an object. ``polling_url`` is not followed: the task is polled at the base URL by id,
so the key only ever goes to the relay's own origin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from sora_widgets.core.errors import ValidationError
from sora_widgets.core.lifecycle import RelayStatus
from sora_widgets.core.models import TaskSnapshot, VideoRequest
from sora_widgets.relay.base import WithoutFollowUps, billed_usd_of, poll_hint_seconds

__all__ = ["RouterWire", "router_content_url"]


def router_content_url(base_url: str, task_id: str, index: int = 0) -> str:
    """The relay's authenticated content proxy for output ``index`` of a task."""
    return f"{base_url.rstrip('/')}/v1/videos/{quote(task_id, safe='')}/content?index={index}"


def _frame(url: str, frame_type: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}, "frame_type": frame_type}


def _signed_url(payload: Mapping[str, Any]) -> str | None:
    """The first signed ``urls`` entry that is an absolute http(s) link, if any."""
    urls = payload.get("urls")
    if not isinstance(urls, list):
        return None
    for url in urls:
        if isinstance(url, str) and urlsplit(url).scheme in ("http", "https") \
                and urlsplit(url).netloc:
            return url
    return None


class RouterWire(WithoutFollowUps):
    style = "router"

    def submit_body(self, request: VideoRequest) -> dict[str, Any]:
        if request.prompt is None:
            raise ValidationError("prompt: a router-style request needs a prompt; nothing "
                                  "was sent", field="prompt")
        if len(request.images) > 1:
            raise ValidationError("image: the router style takes one first-frame image (and "
                                  "a last_frame); nothing was sent", field="image")
        body: dict[str, Any] = {"model": request.model, "prompt": request.prompt,
                                "duration": int(request.duration),
                                "aspect_ratio": request.aspect_ratio}
        resolution = getattr(request, "resolution", None)
        if resolution is not None:
            body["resolution"] = str(resolution)
        audio = getattr(request, "generate_audio", None)
        if audio is not None:
            body["generate_audio"] = bool(audio)
        seed = getattr(request, "seed", None)
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise ValidationError("seed: a whole number; nothing was sent", field="seed")
            body["seed"] = seed
        frames = [_frame(request.images[0], "first_frame")] if request.images else []
        last = getattr(request, "last_frame", None)
        if last is not None:
            frames.append(_frame(str(last), "last_frame"))
        if frames:
            body["frame_images"] = frames
        return {"json": body}

    def snapshot(self, payload: object, *, base_url: str) -> TaskSnapshot:
        snapshot = TaskSnapshot.parse(payload)
        extra: dict[str, Any] = {}
        if isinstance(payload, Mapping):
            if snapshot.relay_status is RelayStatus.COMPLETED:
                # A signed link first (no key at all); else the relay's content proxy, built
                # from the base URL and never taken from the answer, since the key goes with it.
                extra["fetch_url"] = (_signed_url(payload)
                                      or router_content_url(base_url, snapshot.id))
            billed = billed_usd_of(payload)
            if billed is not None:
                extra["billed_usd"] = billed
        return TaskSnapshot(snapshot.id, snapshot.status, snapshot.progress, None,
                            snapshot.error, snapshot.completed_at, extra)

    def poll_hint(self, headers: Mapping[str, str]) -> float | None:
        return poll_hint_seconds(headers)

