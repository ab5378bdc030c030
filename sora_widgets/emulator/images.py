"""First-frame images: read a data: URI, an uploaded file or a loopback URL, check it
decodes, and keep a bounded copy for the video renderer.

Nothing here ever reaches outside the machine: an ``http(s)`` URL is fetched only when its
host is a loopback address (``127.0.0.0/8``, ``::1`` or ``localhost``), without proxies and
without following redirects; any other URL is accepted but not fetched (the video then
shows no image, as if the relay could not use it). Every image is capped at
``MAX_IMAGE_BYTES`` bytes and ``MAX_IMAGE_PIXELS`` pixels before it is decoded.

Pillow is imported only when an image is actually decoded.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import io
import ipaddress
import logging
import ssl
from urllib.parse import unquote_to_bytes, urlsplit

__all__ = [
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "ImageProblem",
    "data_uri_bytes",
    "fetch_loopback",
    "is_loopback_url",
    "load_reference",
    "normalise",
]

logger = logging.getLogger("sora_widgets.emulator")

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
#: The stored copy fits in this square (the largest frame of ``video_scale`` 2 and more).
STORED_MAX_SIDE = 1280
FETCH_TIMEOUT_SECONDS = 5.0


class ImageProblem(ValueError):
    """The image cannot be used: a 400 answer naming it (``code`` is an OpenAI-style code)."""

    def __init__(self, message: str, code: str = "invalid_image") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def data_uri_bytes(uri: str) -> bytes:
    """The bytes of a ``data:`` URI (base64 or percent-encoded), or ImageProblem."""
    header, sep, payload = uri.partition(",")
    if not sep or not header.startswith("data:"):
        raise ImageProblem("is not a data: URI")
    if header.endswith(";base64"):
        if len(payload) > (MAX_IMAGE_BYTES * 4) // 3 + 8:
            raise ImageProblem(f"is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB",
                               "image_too_large")
        try:
            data = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ImageProblem("is not valid base64") from None
    else:
        data = unquote_to_bytes(payload)
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageProblem(f"is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB",
                           "image_too_large")
    if not data:
        raise ImageProblem("is empty")
    return data


def is_loopback_url(url: str) -> bool:
    """True for an ``http(s)`` URL whose host is a loopback address or ``localhost``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fetch_loopback(url: str, timeout: float = FETCH_TIMEOUT_SECONDS) -> bytes:
    """GET a loopback URL (no proxy, no redirect, capped), or ImageProblem."""
    if not is_loopback_url(url):
        raise ImageProblem("is not a loopback URL")  # never reached by callers: a guard
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    try:
        if parts.scheme == "https":
            # Loopback only: nobody can sit in the middle, and local servers self-sign.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            connection = http.client.HTTPSConnection(host, parts.port, timeout=timeout,
                                                     context=context)
        else:
            connection = http.client.HTTPConnection(host, parts.port, timeout=timeout)
        try:
            connection.request("GET", target, headers={"Accept": "image/*"})
            response = connection.getresponse()
            if response.status != 200:
                raise ImageProblem(f"could not be fetched: HTTP {response.status}")
            data = response.read(MAX_IMAGE_BYTES + 1)
        finally:
            connection.close()
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise ImageProblem(f"could not be fetched: {type(exc).__name__}") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageProblem(f"is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB",
                           "image_too_large")
    return data


def normalise(data: bytes) -> tuple[bytes, tuple[int, int]]:
    """Decode ``data`` as an image; return a bounded RGB JPEG copy and its pixel size as
    sent (before any EXIF rotation).

    Raises ImageProblem for anything that is not a decodable image (garbage bytes,
    truncated files, images over ``MAX_IMAGE_PIXELS``), ImportError without Pillow.
    """
    from PIL import Image, ImageOps

    if len(data) > MAX_IMAGE_BYTES:
        raise ImageProblem(f"is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB",
                           "image_too_large")
    try:
        opened = Image.open(io.BytesIO(data))
        size = opened.size
        if size[0] < 1 or size[1] < 1 or size[0] * size[1] > MAX_IMAGE_PIXELS:
            raise ImageProblem(f"has {size[0]}x{size[1]} pixels; at most "
                               f"{MAX_IMAGE_PIXELS:,} are accepted", "image_too_large")
        opened.draft("RGB", (STORED_MAX_SIDE, STORED_MAX_SIDE))  # JPEG: decode smaller
        opened.load()
        image = ImageOps.exif_transpose(opened)
        if image.mode != "RGB":
            image = image.convert("RGB")
        image.thumbnail((STORED_MAX_SIDE, STORED_MAX_SIDE))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=92, subsampling=0)
    except ImageProblem:
        raise
    except Exception as exc:  # Pillow raises many types for bad input; all mean "not an image"
        raise ImageProblem(f"could not be decoded as an image ({type(exc).__name__})") \
            from None
    return out.getvalue(), size


def load_reference(ref: str) -> bytes | None:
    """The bytes behind an image reference string: a data: URI is decoded, a loopback
    URL is fetched, any other ``http(s)`` URL gives None (never fetched)."""
    if ref.startswith("data:"):
        return data_uri_bytes(ref)
    if is_loopback_url(ref):
        return fetch_loopback(ref)
    logger.debug("not fetching a first-frame image from a non-loopback host")
    return None
