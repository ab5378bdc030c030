"""The router style: OpenRouter's asynchronous video API, spoken strictly.

``POST /api/v1/videos`` takes a JSON object of exactly ``model`` (vendor-prefixed),
``prompt``, ``duration`` (an integer), ``resolution``, ``aspect_ratio``, ``generate_audio``,
``seed`` and ``frame_images``; each value must be in the model's sets (``ROUTER_MODELS``,
also served at ``GET /api/v1/videos/models``). Anything else is a 400: the other styles'
fields first of all (``size``, ``seconds``, ``image``, ``input_reference``), since a client
speaking the wrong style must not get a video it did not ask for. OpenRouter's schema is
closed too (provider-specific extras go under ``provider.options``, which the emulator does
not take).

A ``first_frame`` image is the clip's first frame, a ``last_frame`` its last (loopback and
data: URLs only; others are not fetched). Seeds are deterministic: the clip of a seeded task
is drawn from the seed, the model, the shape, the length and the prompt (never the task id),
so the same seed and prompt give the same mp4 bytes and another seed a visibly different
clip.

Answers: ``{id, polling_url, status: "pending"}`` (202), then ``{id, polling_url, status,
created_at}`` with, once completed, ``unsigned_urls`` (``/api/v1/videos/{id}/content?
index=0``, Bearer key required), signed ``urls`` when ``signed_urls`` is on, and ``usage:
{"cost": USD}``; failed: ``error`` as a string. There is no ``progress`` field.
"""

from __future__ import annotations

from typing import Any

from .tasks import Task, VideoRequest
from .validation import (
    BadRequest,
    first_frame_of,
    is_image_ref,
    json_object,
    kind_of,
    listing,
    reference_bytes,
)

__all__ = ["API_PREFIX", "ROUTER_FIELDS", "ROUTER_MODELS", "models_json", "parse_router_submit",
           "router_json"]

#: The router style's paths start here (the base URL is the part before ``/v1/videos``).
API_PREFIX = "/api"
ROUTER_FIELDS = ("model", "prompt", "duration", "resolution", "aspect_ratio", "generate_audio",
                 "seed", "frame_images")
#: The other styles' fields, named as such in the 400.
_FOREIGN = ("size", "seconds", "image", "input_reference")
_FRAME_TYPES = ("first_frame", "last_frame")
_MAX_SEED = 2**32 - 1
#: A model's length when the request gives none (otherwise: its shortest).
_DEFAULT_DURATION = {"google/veo-3.1": 8}
#: Each model's sets, as the models endpoint lists them (defaults: the first of each).
ROUTER_MODELS: dict[str, dict[str, Any]] = {
    "openai/sora-2": {
        "name": "OpenAI: Sora 2", "supported_durations": [4, 8, 12],
        "supported_resolutions": ["720p"], "supported_aspect_ratios": ["16:9", "9:16"],
        "supported_frame_images": ["first_frame"], "generate_audio": True, "seed": False},
    "openai/sora-2-pro": {
        "name": "OpenAI: Sora 2 Pro", "supported_durations": [4, 8, 12],
        "supported_resolutions": ["720p", "1080p"], "supported_aspect_ratios": ["16:9", "9:16"],
        "supported_frame_images": ["first_frame"], "generate_audio": True, "seed": False},
    "google/veo-3.1": {
        "name": "Google: Veo 3.1", "supported_durations": [4, 6, 8],
        "supported_resolutions": ["720p", "1080p"], "supported_aspect_ratios": ["16:9", "9:16"],
        "supported_frame_images": ["first_frame", "last_frame"], "generate_audio": True,
        "seed": True},
}


def models_json(prices: dict[str, float]) -> dict[str, Any]:
    """The answer of ``GET /api/v1/videos/models``: each model's sets and per-second prices."""
    data = []
    for model_id, caps in ROUTER_MODELS.items():
        skus = [{"resolution": res, "unit": "second",
                 "usd": prices.get(f"{model_id}@{res}", prices.get(model_id))}
                for res in caps["supported_resolutions"]]
        data.append({"id": model_id, **caps,
                     "supported_sizes": [],
                     "pricing_skus": [sku for sku in skus if sku["usd"] is not None],
                     "allowed_passthrough_parameters": []})
    return {"data": data}


def parse_router_submit(raw: bytes) -> VideoRequest:
    """Parse and check a router ``POST /api/v1/videos`` body, or raise BadRequest."""
    body = json_object(raw)
    for name in body:
        if name in _FOREIGN:
            raise BadRequest(f"Unknown parameter: '{name}' belongs to another relay style; "
                             f"this API takes {listing(ROUTER_FIELDS)}.", name,
                             "unknown_parameter")
        if name not in ROUTER_FIELDS:
            raise BadRequest(f"Unknown parameter: '{name}'. This API takes "
                             f"{listing(ROUTER_FIELDS)} (provider extras go under "
                             "provider.options, which the emulator does not take).", name,
                             "unknown_parameter")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("'model' is required: a vendor-prefixed model such as "
                         "\"openai/sora-2\"", "model", "missing_required_parameter")
    caps = ROUTER_MODELS.get(model)
    if caps is None:
        hint = " (vendor-prefixed, e.g. \"openai/sora-2\")" if "/" not in model else ""
        raise BadRequest(f"Model '{model[:80]}' is not a video model here{hint}; models: "
                         f"{listing(tuple(ROUTER_MODELS))}.", "model", "invalid_model")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest("'prompt' is required and must be a non-blank string", "prompt",
                         "missing_required_parameter")
    duration = _pick(body, "duration", caps["supported_durations"], int,
                     _DEFAULT_DURATION.get(model))
    resolution = _pick(body, "resolution", caps["supported_resolutions"], str)
    ratio = _pick(body, "aspect_ratio", caps["supported_aspect_ratios"], str)
    audio = body.get("generate_audio")
    if audio is not None and not isinstance(audio, bool):
        raise BadRequest(f"'generate_audio' must be a boolean, not {kind_of(audio)}",
                         "generate_audio", "invalid_type")
    if audio and not caps["generate_audio"]:
        raise BadRequest(f"{model} does not generate audio", "generate_audio",
                         "unsupported_parameter")
    seed = body.get("seed")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= _MAX_SEED:
            raise BadRequest(f"'seed' must be an integer from 0 to {_MAX_SEED}", "seed",
                             "invalid_type")
        if not caps["seed"]:
            raise BadRequest(f"{model} does not take a seed", "seed", "unsupported_parameter")
    frames = _frames(body.get("frame_images"), caps["supported_frame_images"], model)
    first, last = frames.get("first_frame"), frames.get("last_frame")
    first_frame = first_frame_of(reference_bytes(first, "frame_images"), "frame_images") \
        if first else None
    last_frame = first_frame_of(reference_bytes(last, "frame_images"), "frame_images") \
        if last else None
    return VideoRequest(
        model=model, prompt=prompt.strip(), aspect_ratio=ratio, duration=duration,
        image=tuple(frames[kind] for kind in _FRAME_TYPES if kind in frames),
        first_frame=first_frame, style="router", seed=seed, resolution=resolution,
        generate_audio=audio, last_frame=last_frame,
    )


def _pick(body: dict[str, Any], name: str, allowed: list[Any], kind: type,
          default: Any = None) -> Any:
    value = body.get(name)
    if value is None:
        return allowed[0] if default is None else default
    if isinstance(value, bool) or not isinstance(value, kind) or value not in allowed:
        raise BadRequest(f"'{name}' must be one of {listing(tuple(map(str, allowed)))} for "
                         f"this model, not {str(value)[:20]!r}", name, "invalid_value")
    return value


def _frames(value: Any, allowed: list[str], model: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, list) or not value or len(value) > len(_FRAME_TYPES):
        raise BadRequest("'frame_images' must be an array of one or two frame images",
                         "frame_images", "invalid_type")
    frames: dict[str, str] = {}
    for item in value:
        url = item.get("image_url") if isinstance(item, dict) else None
        url = url.get("url") if isinstance(url, dict) else None
        kind = item.get("frame_type") if isinstance(item, dict) else None
        if not isinstance(item, dict) or item.get("type") != "image_url" or \
                set(item) - {"type", "image_url", "frame_type"} or \
                not isinstance(url, str) or not is_image_ref(url):
            raise BadRequest("each 'frame_images' entry is {\"type\": \"image_url\", "
                             "\"image_url\": {\"url\": ...}, \"frame_type\": ...} with an "
                             "http(s) or data:image/ URL", "frame_images", "invalid_value")
        if kind not in _FRAME_TYPES or kind in frames:
            raise BadRequest("'frame_type' must be first_frame or last_frame, each at most "
                             "once", "frame_images", "invalid_value")
        if kind not in allowed:
            raise BadRequest(f"{model} does not take a {kind}", "frame_images",
                             "unsupported_parameter")
        frames[kind] = url
    return frames


def router_json(task: Task, status: str, canonical: str, base_url: str,
                signed_url: str | None, report_cost: bool) -> dict[str, Any]:
    """A task as the router style shows it (``canonical``: the real status, ``status``:
    the word answered for it)."""
    api = f"{base_url}{API_PREFIX}/v1/videos/{task.id}"
    data: dict[str, Any] = {"id": task.id, "polling_url": api, "status": status,
                            "created_at": int(task.created_at)}
    if canonical == "completed":
        data["unsigned_urls"] = [f"{api}/content?index=0"]
        if signed_url is not None:
            data["urls"] = [signed_url]
        if report_cost and task.cost_usd is not None:
            data["usage"] = {"cost": task.cost_usd}
    elif canonical == "failed":
        data["error"] = task.error_message
    return data
