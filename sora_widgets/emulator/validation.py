"""Checking a submit body the way each wire style's contract states it.

Strict on purpose: a client that sends something the contract does not allow should
find out against the emulator, for free, not against the paid relay. Each error names
the offending field.

* artifex (``relay-api.md``): a JSON object; unknown extra fields are ignored, as the
  relay does, except the openai style's own fields (``size``, ``seconds``,
  ``input_reference``), which are rejected: a client speaking the wrong style must not
  get a 16:9 video it did not ask for.
* openai (the SDK's ``videos.create``): a JSON object or ``multipart/form-data``; every
  parameter outside ``model``, ``prompt``, ``size``, ``seconds`` and ``input_reference`` is
  rejected with ``code: "unknown_parameter"``, as the real API does.

The first image given (artifex ``image``, or its first entry; openai ``input_reference``)
becomes the video's first frame: a data: URI or an uploaded file is decoded (400 when it
is not an image), a loopback URL is fetched, any other URL is not fetched at all.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from . import images
from .tasks import VideoRequest

__all__ = [
    "ASPECT_RATIOS",
    "OPENAI_FIELDS",
    "OPENAI_MODELS",
    "OPENAI_SECONDS",
    "OPENAI_SIZES",
    "BadRequest",
    "first_frame_of",
    "is_image_ref",
    "json_object",
    "kind_of",
    "listing",
    "parse_multipart",
    "parse_openai_submit",
    "parse_submit",
    "reference_bytes",
]

ASPECT_RATIOS = ("16:9", "9:16")
DURATION = 12
#: The openai style's parameters; anything else is an unknown parameter.
OPENAI_FIELDS = ("model", "prompt", "size", "seconds", "input_reference")
OPENAI_MODELS = ("sora-2", "sora-2-pro")
OPENAI_SECONDS = ("4", "8", "12")
OPENAI_SIZES: dict[str, tuple[str, ...]] = {
    "sora-2": ("720x1280", "1280x720"),
    "sora-2-pro": ("720x1280", "1280x720", "1024x1792", "1792x1024"),
}
OPENAI_DEFAULTS = {"model": "sora-2", "size": "720x1280", "seconds": "4"}
#: Fields of the other style: rejected by the artifex style.
_ARTIFEX_FOREIGN = ("size", "seconds", "input_reference")
_SNAPSHOT = re.compile(r"(sora-2(?:-pro)?)(?:-\d{4}-\d{2}-\d{2})?")
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")


class BadRequest(ValueError):
    """A 400 answer: ``message`` names the field, ``param`` is the field (or None),
    ``code`` a machine-readable reason."""

    def __init__(self, message: str, param: str | None = None,
                 code: str = "invalid_request") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


# --- artifex -------------------------------------------------------------------------------


def parse_submit(raw: bytes) -> VideoRequest:
    """Parse and validate an artifex ``POST /v1/videos`` body, or raise BadRequest."""
    body = json_object(raw)
    for name in _ARTIFEX_FOREIGN:
        if name in body:
            raise BadRequest(
                f"Unknown parameter: '{name}'. This relay takes 'aspect_ratio' (\"16:9\" or "
                "\"9:16\"), 'duration' (12) and 'image' (URL or data URI).",
                name, "unknown_parameter",
            )
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
    first_frame = None
    if image:
        for extra in image[1:]:  # only the first is used; the others must still be well-formed
            if extra.startswith("data:"):
                reference_bytes(extra, "image")
        first_frame = first_frame_of(reference_bytes(image[0], "image"), "image")
    return VideoRequest(
        model=model.strip(),
        prompt=prompt,
        aspect_ratio=aspect_ratio,
        duration=DURATION,
        image=image,
        first_frame=first_frame,
    )


def json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def _images(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise BadRequest("'image' must be a URL string or a non-empty array of URL strings",
                         "image")
    for item in items:
        if not isinstance(item, str) or not is_image_ref(item):
            raise BadRequest(
                "'image' entries must be http(s) URLs or data:image/ URIs", "image"
            )
    return tuple(items)


def is_image_ref(value: str) -> bool:
    if value.startswith("data:image/"):
        return "," in value
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and value == value.strip()


# --- the first frame (both styles) ---------------------------------------------------------


def reference_bytes(ref: str, param: str) -> bytes | None:
    try:
        return images.load_reference(ref)
    except images.ImageProblem as exc:
        raise BadRequest(f"'{param}' {exc.message}", param, exc.code) from None


def first_frame_of(data: bytes | None, param: str,
                 require_size: tuple[int, int] | None = None) -> bytes | None:
    if data is None:
        return None
    try:
        stored, size = images.normalise(data)
    except images.ImageProblem as exc:
        raise BadRequest(f"'{param}' {exc.message}", param, exc.code) from None
    except ImportError:  # no Pillow: the API still works, the video shows no image
        return None
    if require_size is not None and size != require_size:
        raise BadRequest(
            f"Invalid '{param}': the image is {size[0]}x{size[1]} but the requested size is "
            f"{require_size[0]}x{require_size[1]}; the image must match the requested width "
            "and height.", param, "invalid_value",
        )
    return stored


# --- openai --------------------------------------------------------------------------------


class _Upload:
    """A file part of a multipart body."""

    def __init__(self, filename: str, content_type: str, data: bytes) -> None:
        self.filename = filename
        self.content_type = content_type
        self.data = data


def parse_openai_submit(raw: bytes, content_type: str, *,
                        strict_reference_size: bool = False) -> VideoRequest:
    """Parse and validate an openai-style ``POST /v1/videos`` body, or raise BadRequest."""
    fields: dict[str, Any]
    if content_type.split(";")[0].strip().lower() == "multipart/form-data":
        fields = parse_multipart(raw, content_type)
    else:
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("We could not parse the JSON body of your request. The body "
                             "must be JSON or multipart/form-data.", None,
                             "invalid_json") from None
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object.", None, "invalid_type")
        fields = body
    for name in fields:
        if name not in OPENAI_FIELDS:
            raise BadRequest(f"Unknown parameter: '{name}'.", name, "unknown_parameter")

    prompt = fields.get("prompt")
    if prompt is None:
        raise BadRequest("Missing required parameter: 'prompt'.", "prompt",
                         "missing_required_parameter")
    if not isinstance(prompt, str):
        raise BadRequest(f"Invalid type for 'prompt': expected a string, but got "
                         f"{kind_of(prompt)} instead.", "prompt", "invalid_type")
    if not prompt.strip():
        raise BadRequest("Invalid 'prompt': the prompt must not be empty.", "prompt",
                         "invalid_value")

    model = _choice(fields, "model", OPENAI_MODELS, allow_snapshot=True)
    family = _family(model)
    seconds = _choice(fields, "seconds", OPENAI_SECONDS)
    size = fields.get("size", OPENAI_DEFAULTS["size"])
    allowed = OPENAI_SIZES[family]
    if not isinstance(size, str):
        raise BadRequest(f"Invalid type for 'size': expected one of {listing(allowed)}, but "
                         f"got {kind_of(size)} instead.", "size", "invalid_type")
    if size not in allowed:
        raise BadRequest(f"Invalid value: '{size}'. Supported values for model '{family}' are: "
                         f"{listing(allowed)}.", "size", "invalid_value")
    width, height = (int(n) for n in size.split("x"))

    reference = fields.get("input_reference")
    image: tuple[str, ...] = ()
    data: bytes | None = None
    if isinstance(reference, _Upload):
        kind = reference.content_type.split(";")[0].strip().lower()
        if kind and kind not in (*_IMAGE_TYPES, "application/octet-stream"):
            raise BadRequest(
                f"Invalid file 'input_reference': unsupported mimetype ('{kind}'). Supported "
                f"file formats are {listing(_IMAGE_TYPES)}.", "input_reference",
                "unsupported_file",
            )
        if len(reference.data) > images.MAX_IMAGE_BYTES:
            raise BadRequest(f"'input_reference' is larger than "
                             f"{images.MAX_IMAGE_BYTES // (1024 * 1024)} MB",
                             "input_reference", "image_too_large")
        data = reference.data
    elif isinstance(reference, str):
        if not is_image_ref(reference):
            raise BadRequest("Invalid 'input_reference': expected an image file, an http(s) "
                             "URL or a data:image/ URI.", "input_reference", "invalid_value")
        image = (reference,)
        data = reference_bytes(reference, "input_reference")
    elif reference is not None:
        raise BadRequest(f"Invalid type for 'input_reference': expected a file or a string, "
                         f"but got {kind_of(reference)} instead.", "input_reference",
                         "invalid_type")
    first_frame = first_frame_of(data, "input_reference",
                               (width, height) if strict_reference_size else None)
    return VideoRequest(
        model=model,
        prompt=prompt.strip(),
        aspect_ratio="16:9" if width > height else "9:16",
        duration=int(seconds),
        image=image,
        size=size,
        first_frame=first_frame,
        style="openai",
    )


def _choice(fields: dict[str, Any], name: str, allowed: tuple[str, ...], *,
            allow_snapshot: bool = False) -> str:
    value = fields.get(name, OPENAI_DEFAULTS[name])
    if not isinstance(value, str):
        raise BadRequest(f"Invalid type for '{name}': expected one of {listing(allowed)}, but "
                         f"got {kind_of(value)} instead.", name, "invalid_type")
    if value in allowed or (allow_snapshot and _SNAPSHOT.fullmatch(value)):
        return value
    raise BadRequest(f"Invalid value: '{value}'. Supported values are: {listing(allowed)}.",
                     name, "invalid_value")


def _family(model: str) -> str:
    match = _SNAPSHOT.fullmatch(model)
    return match.group(1) if match else model


def listing(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" and {quoted[-1]}"


def kind_of(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if value is None:
        return "null"
    return "a file" if isinstance(value, _Upload) else "a string"


# --- multipart/form-data -------------------------------------------------------------------

_DISPOSITION_PARAM = re.compile(r';\s*([A-Za-z0-9_*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))')


def parse_multipart(raw: bytes, content_type: str) -> dict[str, Any]:
    """The fields of a ``multipart/form-data`` body: text fields as str, file parts (those
    with a ``filename``) as uploads. The last of repeated fields wins. BadRequest if the
    body does not follow the format."""
    match = re.search(r'boundary=(?:"([^"]+)"|([^;\s]+))', content_type)
    if match is None:
        raise BadRequest("multipart/form-data without a boundary", None, "invalid_multipart")
    boundary = (match.group(1) or match.group(2)).encode("latin-1")
    delimiter = b"--" + boundary
    chunks = raw.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise BadRequest("malformed multipart/form-data body (no closing boundary)", None,
                         "invalid_multipart")
    fields: dict[str, Any] = {}
    for chunk in chunks[1:-1]:
        if not chunk.startswith(b"\r\n"):
            raise BadRequest("malformed multipart/form-data body", None, "invalid_multipart")
        head, sep, content = chunk[2:].partition(b"\r\n\r\n")
        if not sep or not content.endswith(b"\r\n"):
            raise BadRequest("malformed multipart/form-data part", None, "invalid_multipart")
        content = content[:-2]
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        if not disposition.lower().startswith("form-data"):
            raise BadRequest("multipart part without Content-Disposition: form-data", None,
                             "invalid_multipart")
        params = {
            key.lower(): (quoted if quoted is not None else bare or "").strip()
            for key, quoted, bare in _DISPOSITION_PARAM.findall(disposition)
        }
        field_name = params.get("name")
        if not field_name:
            raise BadRequest("multipart part without a field name", None, "invalid_multipart")
        if "filename" in params:
            fields[field_name] = _Upload(params["filename"],
                                         headers.get("content-type", ""), content)
        else:
            try:
                fields[field_name] = content.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest(f"multipart field '{field_name}' is not UTF-8 text",
                                 field_name, "invalid_multipart") from None
    return fields
