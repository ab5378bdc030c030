"""Plain data: a validated submit request (and, re-exported, the leniently parsed task
snapshot of :mod:`sora_widgets.core.snapshot` and the quote of :mod:`sora_widgets.core.money`).

Requests are strict (bad input must fail before anything is sent or charged);
answers are lenient (a relay that adds fields, sends ``progress`` as a string or
invents a status must not crash the client: unknown statuses are kept, not guessed).
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sora_widgets.core.errors import ValidationError
from sora_widgets.core.money import Quote
from sora_widgets.core.settings import DEFAULT_MODEL, api_style, settings
from sora_widgets.core.snapshot import TaskError, TaskSnapshot

__all__ = [
    "ASPECT_RATIOS",
    "DURATION_SECONDS",
    "EXTEND",
    "OPERATIONS",
    "REMIX",
    "Quote",
    "TaskError",
    "TaskSnapshot",
    "VideoRequest",
    "printable",
]

ASPECT_RATIOS = ("16:9", "9:16")
#: What a follow-up request does to the task it names (``source_task``).
REMIX = "remix"
EXTEND = "extend"
OPERATIONS = (REMIX, EXTEND)
DURATION_SECONDS = 12
MAX_PROMPT_CHARS = 10_000
MAX_LOCAL_IMAGE_BYTES = 10 * 1024 * 1024
#: What an image file starts with, by the type its data URI will claim.
_IMAGE_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}


def _unsendable(c: str) -> bool:
    return (ord(c) < 32 and c not in "\n\r\t") or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF


def printable(text: str) -> str:
    """``text`` without the characters a request may not carry (control characters, lone
    surrogates): how a row read back from the journal is shown."""
    return "".join(c for c in text if not _unsendable(c))


def _check_text(text: str, what: str) -> None:
    """Text that can be sent as JSON/UTF-8 and means what it shows: no NUL or control
    characters (newline and tab are fine), no lone surrogates (they cannot be encoded)."""
    bad = next((c for c in text if _unsendable(c)), None)
    if bad is not None:
        raise ValidationError(f"{what}: contains a character that cannot be sent "
                              f"(U+{ord(bad):04X}); nothing was sent", field=what)


def _local_image(path: Path) -> str:
    """A local image file as a data URI: its size checked before reading, its bytes checked
    to be the image its name claims (a text file named .png is refused)."""
    mime = mimetypes.guess_type(path.name)[0] or ""
    if mime not in _IMAGE_MAGIC:
        raise ValidationError(f"image: {path.name!r} is not an image file (PNG, JPEG, GIF or WebP)",
                              field="image")
    try:
        if path.stat().st_size > MAX_LOCAL_IMAGE_BYTES:
            raise ValidationError("image: local file is larger than 10 MB", field="image")
        with path.open("rb") as handle:
            data = handle.read(MAX_LOCAL_IMAGE_BYTES + 1)
    except OSError as exc:
        raise ValidationError(f"image: cannot read {path.name!r} ({type(exc).__name__})",
                              field="image") from None
    if len(data) > MAX_LOCAL_IMAGE_BYTES:
        raise ValidationError("image: local file is larger than 10 MB", field="image")
    if not data.startswith(_IMAGE_MAGIC[mime]) or (mime == "image/webp" and data[8:12] != b"WEBP"):
        raise ValidationError(f"image: {path.name!r} is not really a {mime} file",
                              field="image")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _image_to_url(image: object) -> str:
    """An http(s) URL or ``data:image/...`` URI as is; a local image file as a data URI."""
    if isinstance(image, Path) or (
        isinstance(image, str) and not image.startswith(("http://", "https://", "data:"))
        and Path(image).expanduser().is_file()
    ):
        path = Path(image).expanduser()
        if not path.is_file():
            raise ValidationError(f"image: no such file {path.name!r}", field="image")
        return _local_image(path)
    if not isinstance(image, str):
        raise ValidationError("image: must be a URL string or a local file path", field="image")
    url = image.strip()
    _check_text(url, "image")
    if url.startswith("data:"):
        if not url.startswith("data:image/") or ";base64," not in url:
            raise ValidationError("image: a data URI must be data:image/...;base64,...",
                                  field="image")
        return url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        raise ValidationError(
            "image: must be an http(s) URL, a data:image/... URI or an existing local image file",
            field="image",
        )
    return url


def _whole_seconds(value: object, name: str, *, text_ok: bool) -> int | None:
    """A length in whole seconds: an int (or, for ``seconds``, a string of digits as the
    OpenAI SDK sends it); None when not given."""
    if value is None:
        return None
    if text_ok and isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name}: a whole number of seconds, not {str(value)[:20]!r}",
                              field=name)
    return value


_MAX_SEED = 2**32 - 1
_RESOLUTION_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz")


def _options(seed: object, last_frame: object, resolution: object,
             generate_audio: object) -> tuple[int | None, str | None, str | None, bool | None]:
    """The model options, each checked for its type (the catalogue then says whether the
    model takes it)."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                             or not 0 <= seed <= _MAX_SEED):
        raise ValidationError(f"seed: a whole number from 0 to {_MAX_SEED}, not "
                              f"{str(seed)[:20]!r}", field="seed")
    frame = None
    if last_frame is not None and str(last_frame).strip():
        try:
            frame = _image_to_url(last_frame)
        except ValidationError as exc:
            raise ValidationError("last_frame: " + str(exc).split(": ", 1)[-1],
                                  field="last_frame") from None
    shape = None
    if resolution is not None:
        shape = str(resolution).strip().lower()
        if not shape or not set(shape) <= _RESOLUTION_CHARS or len(shape) > 12:
            raise ValidationError(f"resolution: like 720p or 1080p, not "
                                  f"{str(resolution)[:20]!r}", field="resolution")
    if generate_audio is not None and not isinstance(generate_audio, bool):
        raise ValidationError("generate_audio: true or false", field="generate_audio")
    return (seed if isinstance(seed, int) else None), frame, shape, generate_audio


@dataclass(frozen=True)
class VideoRequest:
    """A submit request that has passed validation (build it with :meth:`create`).

    ``style`` is the relay wire style it was checked for (the catalogue of that style);
    ``duration`` is its length in seconds (``seconds`` is the same), ``size`` the
    ``WxH`` of a style with sizes (None on the seed's relay, where the shape is
    ``aspect_ratio``). The wire body is built by the style's adapter (``wire/``);
    :meth:`to_json` is the journal's form and the cache identity.
    """

    prompt: str | None
    aspect_ratio: str = "16:9"
    images: tuple[str, ...] = ()
    model: str = DEFAULT_MODEL
    duration: int = DURATION_SECONDS
    size: str | None = None
    style: str = "artifex"
    #: Options of the models that take them (the catalogue says which; None: not sent, and
    #: not part of the identity, so journals written before them still match).
    seed: int | None = None
    last_frame: str | None = None
    resolution: str | None = None
    generate_audio: bool | None = None
    #: A remix or an extension (``operation``) of the relay task ``source_task``.
    source_task: str | None = None
    operation: str | None = None
    #: Read from a journal row that no valid request could have written: never sent.
    tainted: bool = field(default=False, compare=False, repr=False)

    @property
    def seconds(self) -> int:
        return self.duration

    @classmethod
    def create(
        cls,
        prompt: str | None = None,
        *,
        aspect_ratio: str | None = None,
        image: str | Path | Iterable[str | Path] | None = None,
        model: str | None = DEFAULT_MODEL,
        duration: int | None = None,
        seconds: int | str | None = None,
        size: str | None = None,
        style: str | None = None,
        seed: int | None = None,
        last_frame: str | Path | None = None,
        resolution: str | None = None,
        generate_audio: bool | None = None,
        check: bool = True,
    ) -> VideoRequest:
        """Validate every field; raise :class:`ValidationError` naming the first bad one.

        ``style`` defaults to the style in force (``SORA_API_STYLE``); the request is
        checked against that style's catalogue (model, ratio or size, seconds) and the
        allowed values are named when it is outside. ``aspect_ratio`` picks the style's
        size for it when no ``size`` is given. ``check=False`` (a journal row) skips the
        catalogue: the request was checked when it was made.
        """
        from sora_widgets.core.catalog import catalogue, style_rules

        if prompt is not None and not isinstance(prompt, str):
            raise ValidationError("prompt: must be text", field="prompt")
        text = (prompt or "").strip() or None
        if text is not None:
            _check_text(text, "prompt")
        if text is not None and len(text) > MAX_PROMPT_CHARS:
            raise ValidationError(f"prompt: longer than {MAX_PROMPT_CHARS} characters",
                                  field="prompt")
        if image is None:
            images: tuple[str, ...] = ()
        elif isinstance(image, (str, Path)):
            images = (_image_to_url(image),) if str(image).strip() else ()
        else:
            images = tuple(_image_to_url(i) for i in image)
        if text is None and not images:
            raise ValidationError("prompt: give a prompt or an image (or both)", field="prompt")
        # One reading of the settings and of the catalogue for the whole call (each costs
        # environment reads and file stats, and this runs on every submit).
        current = settings() if style is None else None
        wire_style = str(style).strip().lower() if style is not None else api_style(current)
        rules = style_rules(wire_style)
        if rules.needs_prompt and text is None:
            raise ValidationError(f"prompt: the {wire_style} style needs a prompt (an image "
                                  "alone is not enough)", field="prompt")
        if rules.max_images is not None and len(images) > rules.max_images:
            raise ValidationError(f"image: the {wire_style} style takes {rules.max_images} "
                                  f"first-frame image, not {len(images)}", field="image")
        ratio = None if aspect_ratio is None else str(aspect_ratio).strip()
        if ratio is not None and ratio not in ASPECT_RATIOS:
            raise ValidationError(
                f"aspect_ratio: must be 16:9 or 9:16, not {str(aspect_ratio)[:20]!r}",
                field="aspect_ratio",
            )
        length = _whole_seconds(duration, "duration", text_ok=False)
        given = _whole_seconds(seconds, "seconds", text_ok=True)
        if length is not None and given is not None and length != given:
            raise ValidationError(f"seconds: {given} and duration: {length} disagree; give "
                                  "one of them", field="seconds")
        length = given if given is not None else length
        shape = None if size is None else str(size).strip().lower()
        if shape is not None:
            _check_text(shape, "size")
        model_name = (model if model is not None else DEFAULT_MODEL)
        if not isinstance(model_name, str) or not model_name.strip():
            raise ValidationError("model: must not be blank", field="model")
        _check_text(model_name, "model")
        model_name = model_name.strip()
        book = catalogue(current) if check else None
        if book is not None:
            resolved = book.resolve(
                wire_style, model_name, aspect_ratio=ratio, size=shape, seconds=length,
                seconds_name="duration" if given is None and duration is not None
                else "seconds")
            ratio, shape, length = resolved.aspect_ratio, resolved.size, resolved.seconds
        options = _options(seed, last_frame, resolution, generate_audio)
        if book is not None:
            book.options(wire_style, model_name, seed=options[0], last_frame=options[1],
                         resolution=options[2], generate_audio=options[3])
        if not check and length is not None and length <= 0:
            raise ValidationError("seconds: must be positive", field="seconds")
        return cls(text, ratio or "16:9", images, model_name,
                   length if length is not None else DURATION_SECONDS,
                   shape if rules.sizes else None, wire_style, *options)

    def to_json(self) -> dict[str, Any]:
        """The journal's form of the request (and the cache identity). The seed's relay
        keeps exactly the shape of 0.1 (old journals still match); other styles add their
        name, ``seconds`` and ``size``."""
        body: dict[str, Any] = {"model": self.model}
        if self.style != "artifex":
            body["style"] = self.style
        if self.prompt is not None:
            body["prompt"] = self.prompt
        body["aspect_ratio"] = self.aspect_ratio
        if self.style != "artifex":
            body["seconds"] = self.duration
            body["size"] = self.size
        else:
            body["duration"] = self.duration
        if len(self.images) == 1:
            body["image"] = self.images[0]
        elif self.images:
            body["image"] = list(self.images)
        for name in ("seed", "last_frame", "resolution", "generate_audio", "source_task",
                     "operation"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> VideoRequest:
        """A request from :meth:`to_json` (a journal row), read as data: not checked against
        today's catalogue (it may have changed since), never refused. A field that a valid
        request cannot hold (a control character, a wrong type: a row written by hand into
        a shared journal) is shown cleaned and marks the request ``tainted``, which keeps it
        from ever being sent (:meth:`check_sendable`)."""
        tainted = False

        def text(value: object, default: str | None = None) -> str | None:
            nonlocal tainted
            if value is None:
                return default
            if not isinstance(value, str):
                tainted = True
                return default
            clean = printable(value)
            tainted = tainted or clean != value
            return clean

        raw_images = body.get("image")
        listed = raw_images if isinstance(raw_images, list) else (
            [] if raw_images is None else [raw_images])
        images = tuple(i for i in (text(v) for v in listed) if i)
        seconds = body.get("seconds", body.get("duration"))
        if isinstance(seconds, str) and seconds.strip().isdigit():
            seconds = int(seconds.strip())
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
            tainted = tainted or seconds is not None
            seconds = DURATION_SECONDS
        style = text(body.get("style"), "artifex") or "artifex"
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            tainted, seed = True, None
        audio = body.get("generate_audio")
        if audio is not None and not isinstance(audio, bool):
            tainted, audio = True, None
        request = cls((text(body.get("prompt")) or "").strip() or None,
                      text(body.get("aspect_ratio"), "16:9") or "16:9", images,
                      text(body.get("model"), DEFAULT_MODEL) or DEFAULT_MODEL, seconds,
                      text(body.get("size")) if style != "artifex" else None, style,
                      seed, text(body.get("last_frame")), text(body.get("resolution")), audio,
                      text(body.get("source_task")), text(body.get("operation")),
                      tainted=tainted)
        if request.operation is not None and (request.operation not in OPERATIONS
                                              or request.source_task is None):
            request = replace(request, tainted=True)
        return request

    def follow_up(self, operation: str, source_task: str, prompt: str,
                  seconds: int | None = None) -> VideoRequest:
        """A remix (same length) or an extension (``seconds`` more) of ``source_task``, a
        task made from this request: the prompt checked like any, the shape kept."""
        if operation not in OPERATIONS:
            raise ValidationError(f"operation: {', '.join(OPERATIONS)}, not {operation[:20]!r}",
                                  field="operation")
        text = prompt.strip() if isinstance(prompt, str) else ""
        if not text or len(text) > MAX_PROMPT_CHARS:
            raise ValidationError(f"prompt: a {operation} needs a prompt (at most "
                                  f"{MAX_PROMPT_CHARS} characters); nothing was sent",
                                  field="prompt")
        _check_text(text, "prompt")
        length = self.duration if seconds is None else _whole_seconds(seconds, "seconds",
                                                                       text_ok=False)
        if length is None or length <= 0:
            raise ValidationError("seconds: must be positive", field="seconds")
        return replace(self, prompt=text, images=(), last_frame=None, seed=None,
                       duration=length, source_task=source_task, operation=operation)

    def check_sendable(self) -> VideoRequest:
        """This request, or a ValidationError when it came from a row that no valid
        request could have written: such a row is shown, never sent."""
        if self.tainted:
            raise ValidationError("request: this job's stored request holds characters or "
                                  "values that cannot be sent (it was written into the "
                                  "journal by hand); nothing was sent", field="prompt")
        return self

    def fingerprint(self) -> str:
        """Identity for the no-double-pay cache: the same request gives the same video
        (style, model, shape, length, prompt and images all count)."""
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
