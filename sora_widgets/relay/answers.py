"""A relay's answers turned into the package's types: snapshots and the exception tree.

Errors are converted here, once (as httpx's ``_exceptions.py`` does for its own), so the
sync and the async client raise the same classes with the same words. Every string that
came from the relay is scrubbed of the key before it is returned: a relay that echoes the
key (in a failure message, a status word or a video link) must not put it in the journal,
a trait or a log.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx

from sora_widgets.core.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from sora_widgets.core.models import TaskError, TaskSnapshot
from sora_widgets.core.redact import scrub
from sora_widgets.core.retry import parse_retry_after
from sora_widgets.core.settings import APIKey
from sora_widgets.relay.base import poll_hint_seconds as _poll_hint
from sora_widgets.relay.styles import WireAdapter, adapter_for

__all__ = ["MAX_ANSWER_BYTES", "VIP_MESSAGE", "buffered", "error_for_response", "is_transient",
           "parse_task", "poll_hint_seconds", "retry_after_of", "too_big", "transport_error",
           "unlink"]

VIP_MESSAGE = (
    "this API key is not in the provider's VIP group: Sora 2 needs a key from the "
    "'vip' group (an ordinary key gets 403)"
)
#: A task answer is a few hundred bytes: more than this is not an answer (memory stays flat).
MAX_ANSWER_BYTES = 1024 * 1024
#: Headers of a buffered answer that no longer describe its (decoded) body.
_STALE_HEADERS = ("content-encoding", "content-length", "transfer-encoding")


def buffered(response: httpx.Response, body: bytes) -> httpx.Response:
    """A streamed answer, read (up to the cap), as a plain response: parsing it needs no
    open connection, and the stream can be closed at once."""
    headers = [(k, v) for k, v in response.headers.multi_items()
               if k.lower() not in _STALE_HEADERS]
    return httpx.Response(response.status_code, headers=headers, content=body,
                          request=response.request)


#: What a closed answer's stream is replaced with (it is never read again).
_READ = httpx.ByteStream(b"")


def unlink(response: httpx.Response) -> None:
    """Break httpx's response <-> stream cycle once the answer is read and closed. Left
    alone, every request left ~40 objects (request, headers, pool stream, events) to the
    cyclic garbage collector, whose passes hold the GIL: with a thousand jobs polling,
    that garbage set how often and how long the kernel's main thread stalled."""
    response.stream = _READ


def too_big(response: httpx.Response) -> MalformedResponseError:
    return MalformedResponseError(
        f"the relay's answer is larger than {MAX_ANSWER_BYTES // 1024} KiB; it was not read",
        status_code=response.status_code)


def _error_fields(response: httpx.Response) -> tuple[str, str | None]:
    try:
        body = response.json()
    except (ValueError, RecursionError):
        body = None
    message: object = None
    code: object = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            message, code = err.get("message"), err.get("code")
        elif isinstance(err, str):
            message = err
        message = message or body.get("message") or body.get("detail")
    if not isinstance(message, str) or not message.strip():
        reason = response.reason_phrase or "error"
        message = f"HTTP {response.status_code} {reason}"
    return message.strip()[:2000], (str(code) if code is not None else None)


def error_for_response(response: httpx.Response, key: APIKey | None) -> APIError:
    """Map an HTTP error answer to the exception tree."""
    status = response.status_code
    message, code = _error_fields(response)
    message = scrub(message)
    code = scrub(code) if code is not None else None
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if status == 400 or status == 422:
        return BadRequestError(f"the relay rejected the request: {message}", status_code=status,
                               code=code)
    if status == 401:
        return AuthenticationError(
            f"authentication failed (401): {message}. Set SORA_API_KEY to your relay key.",
            status_code=status, code=code)
    if status == 403:
        if code == "link_expired" or "expired" in message.lower():
            return PermissionDeniedError(f"the video link has expired (403): {message}",
                                         status_code=status, code=code or "link_expired")
        return PermissionDeniedError(f"{VIP_MESSAGE}. The relay said: {message}",
                                     status_code=status, code=code)
    if status == 404:
        return NotFoundError(f"not found (404): {message}", status_code=status, code=code)
    if status == 410:
        return NotFoundError(f"gone (410): {message}", status_code=status, code=code)
    if status == 429:
        return RateLimitError(f"rate limited (429): {message}", code=code,
                              retry_after=retry_after)
    if status >= 500:
        return ServerError(f"relay server error ({status}): {message}", status_code=status,
                           code=code, retry_after=retry_after)
    return APIError(f"unexpected answer ({status}): {message}", status_code=status, code=code)


def parse_task(response: httpx.Response, key: APIKey | None,
               wire: WireAdapter | None = None, base_url: str = "") -> TaskSnapshot:
    """An answer as a snapshot, through the style's adapter (the seed's by default)."""
    wire = wire or adapter_for("artifex")
    if response.status_code >= 400:
        raise error_for_response(response, key)
    try:
        payload: Any = response.json()
    except (ValueError, RecursionError) as exc:
        raise MalformedResponseError(
            f"the relay answered {response.status_code} with a body that is not JSON",
            status_code=response.status_code) from exc
    snapshot = wire.snapshot(payload, base_url=base_url)
    # A relay that echoes the key (in a failure message, a status word or a video link)
    # must not put it in the journal, a trait or a log. The raw link stays usable: the
    # engine keeps it in memory only (``fetch_url``).
    extra: dict[str, Any] = {name: snapshot.extra[name]
                             for name in ("fetch_url", "expires_at", "billed_usd")
                             if snapshot.extra.get(name) is not None}
    hint = wire.poll_hint(response.headers)
    if hint is not None:
        extra["poll_after"] = hint
    return replace(
        snapshot,
        id=scrub(snapshot.id),
        status=scrub(snapshot.status) if snapshot.status else None,
        video_url=scrub(snapshot.video_url) if snapshot.video_url else None,
        error=TaskError(scrub(snapshot.error.message),
                        scrub(snapshot.error.code) if snapshot.error.code else None)
        if snapshot.error is not None else None,
        extra=extra)


def poll_hint_seconds(response_headers: httpx.Headers) -> float | None:
    """A server's own polling hint (``openai-poll-after-ms``), if any."""
    return _poll_hint(response_headers)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying a GET after: transport trouble, 429, 5xx, a garbled body."""
    return isinstance(exc, (APIConnectionError, RateLimitError, ServerError,
                            MalformedResponseError))


def retry_after_of(exc: BaseException | None) -> float | None:
    return getattr(exc, "retry_after", None)


def transport_error(exc: BaseException) -> APIConnectionError:
    """Any failure of the exchange itself (refused, reset, timeout, undecodable body).

    Raise it with ``from None`` (or outside the ``except``): httpcore's frames and h11's
    events in the chain would print the request headers in a verbose traceback."""
    kind = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"the relay did not answer in time ({kind})")
    if isinstance(exc, httpx.TransportError):
        return APIConnectionError(f"could not talk to the relay ({kind})")
    return APIConnectionError(f"the relay's answer could not be read ({kind})")

