"""The relay's wire protocol on httpx: submit, retrieve, download.

Errors are converted here, once, into the tree of ``errors.py``. The money rule
lives here too: a POST is retried only when the connection failed before the
request could be sent (nothing reached the relay, nothing was charged). Any
failure after that — a lost answer, a reset, a gateway 5xx, a garbled body —
raises :class:`SubmissionUnknown`, because the relay has no idempotency key.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from . import __version__
from .config import APIKey, is_loopback_url, settings
from .errors import (
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
    SoraError,
    SubmissionUnknown,
)
from .models import TaskError, TaskSnapshot, VideoRequest
from .retry import Backoff, parse_retry_after

__all__ = ["AsyncSoraClient", "SoraClient", "poll_hint_seconds"]

log = logging.getLogger("sora_widgets.client")

VIP_MESSAGE = (
    "this API key is not in the provider's VIP group: Sora 2 needs a key from the "
    "'vip' group (an ordinary key gets 403)"
)
MAY_BE_CHARGED = (
    "The submit may have reached the relay and may have been charged ($0.90), but its answer "
    "was lost, so the task id is unknown. It was not retried, to avoid paying twice."
)
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
#: Transport errors that prove nothing was sent: safe to retry even a POST.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
ProgressCallback = Callable[[int, int | None], None]


def _scrub(text: str, key: APIKey | None) -> str:
    """Remove the key (and any long piece of it) from text that came from elsewhere."""
    if key is None:
        return text
    secret = key.reveal()
    if secret in text:
        text = text.replace(secret, "********")
    for size in (16, 8):
        for start in range(0, max(0, len(secret) - size + 1)):
            piece = secret[start:start + size]
            if piece in text:
                text = text.replace(piece, "********")
    return text


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
    message = _scrub(message, key)
    code = _scrub(code, key) if code is not None else None
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
    if status == 429:
        return RateLimitError(f"rate limited (429): {message}", code=code,
                              retry_after=retry_after)
    if status >= 500:
        return ServerError(f"relay server error ({status}): {message}", status_code=status,
                           code=code, retry_after=retry_after)
    return APIError(f"unexpected answer ({status}): {message}", status_code=status, code=code)


def parse_task(response: httpx.Response, key: APIKey | None) -> TaskSnapshot:
    if response.status_code >= 400:
        raise error_for_response(response, key)
    try:
        payload: Any = response.json()
    except (ValueError, RecursionError) as exc:
        raise MalformedResponseError(
            f"the relay answered {response.status_code} with a body that is not JSON",
            status_code=response.status_code) from exc
    snapshot = TaskSnapshot.parse(payload)
    if snapshot.error is not None and key is not None:
        # A relay that quotes the key in a failure message must not put it in job.error.
        snapshot = replace(snapshot, error=TaskError(
            _scrub(snapshot.error.message, key),
            _scrub(snapshot.error.code, key) if snapshot.error.code else None))
    return snapshot


def poll_hint_seconds(response_headers: httpx.Headers) -> float | None:
    """A server's own polling hint (``openai-poll-after-ms``), if any."""
    raw = response_headers.get("openai-poll-after-ms")
    try:
        return max(0.0, float(raw) / 1000.0) if raw else None
    except ValueError:
        return None


def is_transient(exc: BaseException) -> bool:
    """Worth retrying a GET after: transport trouble, 429, 5xx, a garbled body."""
    return isinstance(exc, (APIConnectionError, RateLimitError, ServerError,
                            MalformedResponseError))


def retry_after_of(exc: BaseException | None) -> float | None:
    return getattr(exc, "retry_after", None)


def transport_error(exc: httpx.RequestError) -> APIConnectionError:
    """Any failure of the exchange itself (refused, reset, timeout, undecodable body)."""
    kind = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"the relay did not answer in time ({kind})")
    if isinstance(exc, httpx.TransportError):
        return APIConnectionError(f"could not talk to the relay ({kind})")
    return APIConnectionError(f"the relay's answer could not be read ({kind})")


def warn_if_cleartext(url: str) -> None:
    """The key travels in the Authorization header: plain http is only fine on loopback."""
    if urlsplit(url).scheme.lower() == "http" and not is_loopback_url(url):
        warnings.warn(
            f"SORA base URL {url} is plain http: the API key would travel in clear text. "
            "Use https.", UserWarning, stacklevel=4)


class _Base:
    def __init__(
        self,
        api_key: str | APIKey | None = None,
        base_url: str | None = None,
        *,
        timeout: httpx.Timeout | float | None = None,
        backoff: Backoff | None = None,
        max_get_attempts: int = 6,
        max_connect_attempts: int = 3,
        warn_cleartext: bool = True,
    ) -> None:
        current = settings()
        if isinstance(api_key, APIKey):
            self._key: APIKey | None = api_key
        elif api_key is not None and api_key.strip():
            self._key = APIKey(api_key)
        else:
            self._key = current.api_key
        self.base_url = (base_url or current.base_url).rstrip("/")
        if warn_cleartext:
            warn_if_cleartext(self.base_url)
        self.timeout = timeout if timeout is not None else DEFAULT_TIMEOUT
        self.backoff = backoff or Backoff()
        self.max_get_attempts = max_get_attempts
        self.max_connect_attempts = max_connect_attempts

    def __repr__(self) -> str:
        key = "set" if self._key else "none"
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={key})"

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": f"sora-widgets/{__version__}", "Accept": "application/json"}
        if self._key is not None:
            headers["Authorization"] = f"Bearer {self._key.reveal()}"
        return headers

    def _task_url(self, task_id: str) -> str:
        return f"{self.base_url}/v1/videos/{quote(task_id, safe='')}"

    def _download_headers(self, url: str) -> dict[str, str]:
        # Video links usually live on a CDN: send the key only to the relay itself.
        if url.startswith(self.base_url + "/"):
            return self._headers()
        return {"User-Agent": f"sora-widgets/{__version__}"}

    def _after_post_error(self, exc: httpx.RequestError, attempt: int) -> float:
        """The money rule, in one place: the wait before retrying a POST whose connection
        failed before anything was sent; otherwise raise (a sent POST may have been charged)."""
        if not isinstance(exc, NOT_SENT):
            raise self._lost_answer(exc) from exc
        if attempt + 1 >= self.max_connect_attempts:
            raise transport_error(exc) from exc
        log.info("submit: connection failed before sending (%s); retrying", type(exc).__name__)
        return self.backoff.delay(attempt)

    def _lost_answer(self, exc: BaseException) -> SubmissionUnknown:
        detail = type(exc).__name__ if not isinstance(exc, APIError) else str(exc)
        return SubmissionUnknown(f"{MAY_BE_CHARGED} (cause: {detail})")


def _post_outcome(client: _Base, response: httpx.Response) -> TaskSnapshot:
    """Turn a POST answer into a snapshot; a lost/garbled 'accepted' answer is unknown."""
    status = response.status_code
    if status >= 500:
        raise client._lost_answer(error_for_response(response, client._key))
    if status >= 400:
        raise error_for_response(response, client._key)
    try:
        return parse_task(response, client._key)
    except MalformedResponseError as exc:
        raise client._lost_answer(exc) from exc


class SoraClient(_Base):
    """Synchronous client. ``submit`` charges $0.90 per accepted call: never loop on it."""

    def __init__(self, *args: Any, http: httpx.Client | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._http = http or httpx.Client(timeout=self.timeout, follow_redirects=True)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SoraClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, request: VideoRequest) -> TaskSnapshot:
        """POST once. Retried only if the connection failed before anything was sent."""
        for attempt in range(self.max_connect_attempts):
            try:
                response = self._http.post(f"{self.base_url}/v1/videos",
                                           json=request.to_json(), headers=self._headers())
            except httpx.RequestError as exc:
                time.sleep(self._after_post_error(exc, attempt))
                continue
            return _post_outcome(self, response)
        raise AssertionError("unreachable")

    def retrieve(self, task_id: str) -> TaskSnapshot:
        """GET the task, retrying transient faults with backoff (honours Retry-After)."""
        attempt = 0
        while True:
            try:
                return self.retrieve_once(task_id)
            except SoraError as exc:
                attempt += 1
                if not is_transient(exc) or attempt >= self.max_get_attempts:
                    raise
                wait = self.backoff.delay(attempt, retry_after_of(exc))
                log.info("retrieve: %s; retry %d in %.2fs", type(exc).__name__, attempt, wait)
                time.sleep(wait)

    def retrieve_once(self, task_id: str) -> TaskSnapshot:
        try:
            response = self._http.get(self._task_url(task_id), headers=self._headers())
        except httpx.RequestError as exc:
            raise transport_error(exc) from exc
        return parse_task(response, self._key)

    def download(self, url: str, path: str | os.PathLike[str],
                 on_progress: ProgressCallback | None = None) -> Path:
        """Stream ``url`` to ``path`` in constant memory; the file appears only when complete."""
        with _Sink(Path(path), on_progress) as sink:
            try:
                with self._http.stream("GET", url, headers=self._download_headers(url)) as r:
                    if r.status_code >= 400:
                        r.read()
                        raise error_for_response(r, self._key)
                    sink.start(r)
                    for chunk in r.iter_bytes(CHUNK):
                        sink.write(chunk)
            except httpx.RequestError as exc:
                raise transport_error(exc) from exc
        return sink.target


CHUNK = 256 * 1024


class _Sink:
    """A download's file: a temp file beside the target, fsynced and renamed when complete,
    removed on any failure, so a half-written video can never pass for a finished one."""

    def __init__(self, target: Path, on_progress: ProgressCallback | None) -> None:
        self.target = target
        self.on_progress = on_progress
        self.total: int | None = None
        self.done = 0

    def __enter__(self) -> _Sink:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp_name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".part",
                                             dir=self.target.parent)
        self.out = os.fdopen(fd, "wb")
        return self

    def start(self, response: httpx.Response) -> None:
        self.total = _content_length(response)

    def write(self, chunk: bytes) -> None:
        self.out.write(chunk)
        self.done += len(chunk)
        if self.on_progress is not None:
            self.on_progress(self.done, self.total)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                if self.total is not None and self.done != self.total:
                    raise APIConnectionError(
                        f"download ended early ({self.done} of {self.total} bytes)")
                self.out.flush()
                os.fsync(self.out.fileno())
                self.out.close()
                os.replace(self.tmp_name, self.target)
        finally:
            self.out.close()
            Path(self.tmp_name).unlink(missing_ok=True)


def _content_length(response: httpx.Response) -> int | None:
    try:
        length = int(response.headers.get("content-length", ""))
    except ValueError:
        return None
    if response.headers.get("content-encoding", "identity") not in ("identity", ""):
        return None
    return length


class AsyncSoraClient(_Base):
    """The same protocol on ``httpx.AsyncClient``: used by the single background poller."""

    def __init__(self, *args: Any, http: httpx.AsyncClient | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._http = http or httpx.AsyncClient(
            timeout=self.timeout, follow_redirects=True,
            # httpcore spends CPU per request in proportion to the pool size: keep it small;
            # loopback or a relay 200 ms away needs no more than a few dozen in flight.
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def submit(self, request: VideoRequest) -> TaskSnapshot:
        for attempt in range(self.max_connect_attempts):
            try:
                response = await self._http.post(f"{self.base_url}/v1/videos",
                                                 json=request.to_json(), headers=self._headers())
            except httpx.RequestError as exc:
                await asyncio.sleep(self._after_post_error(exc, attempt))
                continue
            return _post_outcome(self, response)
        raise AssertionError("unreachable")

    async def retrieve_once(self, task_id: str) -> tuple[TaskSnapshot, float | None]:
        """One GET, no retry (the poller schedules retries); returns the server's poll hint."""
        try:
            response = await self._http.get(self._task_url(task_id), headers=self._headers())
        except httpx.RequestError as exc:
            raise transport_error(exc) from exc
        return parse_task(response, self._key), poll_hint_seconds(response.headers)

    async def download(self, url: str, path: Path,
                       on_progress: ProgressCallback | None = None) -> Path:
        """Stream to a temp file beside ``path``, fsync, then rename: never a half file."""
        with _Sink(path, on_progress) as sink:
            try:
                async with self._http.stream("GET", url, headers=self._download_headers(url)) as r:
                    if r.status_code >= 400:
                        await r.aread()
                        raise error_for_response(r, self._key)
                    sink.start(r)
                    async for chunk in r.aiter_bytes(CHUNK):
                        sink.write(chunk)
            except httpx.RequestError as exc:
                raise transport_error(exc) from exc
        return sink.target
