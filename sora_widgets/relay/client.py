"""The relay's wire protocol on httpx: submit, retrieve, download.

Errors are converted here, once, into the tree of ``errors.py``. The money rule
lives here too: a POST is retried only when the connection failed before the
request could be sent (nothing reached the relay, nothing was charged). Any
failure after that — a lost answer, a reset, a gateway 5xx, a garbled body —
raises :class:`SubmissionUnknown`, because the relay has no idempotency key. A
request that cannot even be built (nothing left) is a :class:`ValidationError`.

Keys: the key is added by an ``httpx.Auth`` flow, so no frame holds it in a plain
dict (verbose tracebacks print frame locals), and transport errors are raised
without their httpcore chain (h11's events print the raw headers). Every string
that came from the relay is scrubbed of the key before it is returned.

Resources: answers are read up to :data:`MAX_ANSWER_BYTES`; a download has an
overall deadline and a size cap, so a hostile or broken relay cannot hang a
caller or fill the disk.

Styles: what goes on the wire (the body, where the video is, the poll hint) is the job of
the style's adapter (``wire/``); this module keeps the transport and the rules above for
every style. The key goes only to the relay's own origin (its ``/content`` endpoint), never
to a CDN link, and httpx drops it on a redirect to another origin.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, urlsplit

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
    SoraError,
    SubmissionUnknown,
    ValidationError,
)
from sora_widgets.core.models import TaskError, TaskSnapshot, VideoRequest
from sora_widgets.core.redact import install_log_filter, scrub
from sora_widgets.core.retry import Backoff, parse_retry_after
from sora_widgets.core.settings import APIKey, api_style, is_loopback_url, settings
from sora_widgets.core.version import __version__
from sora_widgets.relay.base import poll_hint_seconds as _poll_hint
from sora_widgets.relay.styles import WireAdapter, adapter_for

__all__ = ["AsyncSoraClient", "SoraClient", "poll_hint_seconds"]

log = logging.getLogger("sora_widgets.relay.client")

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
_HEADERS = MappingProxyType({"User-Agent": f"sora-widgets/{__version__}",
                             "Accept": "application/json"})
_AGENT = {"User-Agent": _HEADERS["User-Agent"]}
ProgressCallback = Callable[[int, int | None], None]
#: A task answer is a few hundred bytes: more than this is not an answer (memory stays flat).
MAX_ANSWER_BYTES = 1024 * 1024
#: Headers of a buffered answer that no longer describe its (decoded) body.
_STALE_HEADERS = ("content-encoding", "content-length", "transfer-encoding")


def _scrub(text: str, key: APIKey | None = None) -> str:
    """Remove every known key (and any long piece of one) from text that came from elsewhere."""
    return scrub(text)


class BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer`` at send time: the key is never in a plain dict."""

    def __init__(self, key: APIKey) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "BearerAuth(********)"

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = "Bearer " + self._key.reveal()
        yield request


def _buffered(response: httpx.Response, body: bytes) -> httpx.Response:
    headers = [(k, v) for k, v in response.headers.multi_items()
               if k.lower() not in _STALE_HEADERS]
    return httpx.Response(response.status_code, headers=headers, content=body,
                          request=response.request)


#: What a closed answer's stream is replaced with (it is never read again).
_READ = httpx.ByteStream(b"")


def _unlink(response: httpx.Response) -> None:
    """Break httpx's response <-> stream cycle once the answer is read and closed. Left
    alone, every request left ~40 objects (request, headers, pool stream, events) to the
    cyclic garbage collector, whose passes hold the GIL: with a thousand jobs polling,
    that garbage set how often and how long the kernel's main thread stalled."""
    response.stream = _READ


def _too_big(response: httpx.Response) -> MalformedResponseError:
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
    extra: dict[str, Any] = {name: snapshot.extra[name] for name in ("fetch_url", "expires_at")
                             if snapshot.extra.get(name) is not None}
    hint = wire.poll_hint(response.headers)
    if hint is not None:
        extra["poll_after"] = hint
    return replace(
        snapshot,
        id=_scrub(snapshot.id),
        status=_scrub(snapshot.status) if snapshot.status else None,
        video_url=_scrub(snapshot.video_url) if snapshot.video_url else None,
        error=TaskError(_scrub(snapshot.error.message),
                        _scrub(snapshot.error.code) if snapshot.error.code else None)
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
        download_timeout: float | None = None,
        max_video_bytes: int | None = None,
        style: str | None = None,
    ) -> None:
        current = settings()
        #: The relay's wire style (default: the style in force, SORA_API_STYLE).
        self.wire: WireAdapter = adapter_for(style if style is not None else api_style(current))
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
        self.download_timeout = download_timeout or current.download_timeout
        self.max_video_bytes = max_video_bytes or current.max_video_bytes
        self._auth = BearerAuth(self._key) if self._key is not None else None
        install_log_filter()

    def __repr__(self) -> str:
        key = "set" if self._key else "none"
        return (f"{type(self).__name__}(base_url={self.base_url!r}, style={self.style!r}, "
                f"api_key={key})")

    @property
    def style(self) -> str:
        return self.wire.style

    def _submit_request(self, http: httpx.Client | httpx.AsyncClient,
                        request: VideoRequest) -> httpx.Request:
        """The POST, built by the style's adapter before anything is sent."""
        if request.style != self.wire.style:
            raise ValidationError(
                f"style: this request was checked for the {request.style} style but the relay "
                f"at {self.base_url} speaks {self.wire.style}; build it again (VideoRequest."
                f"create(..., style={self.wire.style!r})); nothing was sent", field="style")
        return self._build(http, "POST", f"{self.base_url}/v1/videos",
                           **self.wire.submit_body(request))

    def _parse(self, response: httpx.Response) -> TaskSnapshot:
        return parse_task(response, self._key, self.wire, self.base_url)

    def _task_url(self, task_id: str) -> str:
        return f"{self.base_url}/v1/videos/{quote(task_id, safe='')}"

    def _auth_for(self, url: str) -> httpx.Auth | None:
        """The key goes to the relay's own origin only: video links usually live on a CDN."""
        if self._auth is not None and (url == self.base_url or
                                       url.startswith(self.base_url + "/")):
            return self._auth
        return None

    def _build(self, http: httpx.Client | httpx.AsyncClient, method: str, url: str,
               **kwargs: Any) -> httpx.Request:
        """Build the request before anything is sent: a failure here charged nothing."""
        try:
            return http.build_request(method, url, headers=dict(_HEADERS), **kwargs)
        except Exception as exc:
            kind = type(exc).__name__
        raise ValidationError(f"the request could not be encoded ({kind}); nothing was sent")

    def _after_post_error(self, exc: httpx.RequestError, attempt: int) -> float:
        """The money rule, in one place: the wait before retrying a POST whose connection
        failed before anything was sent; otherwise raise (a sent POST may have been charged)."""
        if not isinstance(exc, NOT_SENT):
            raise self._lost_answer(exc) from None
        if attempt + 1 >= self.max_connect_attempts:
            raise transport_error(exc) from None
        log.info("submit: connection failed before sending (%s); retrying", type(exc).__name__)
        return self.backoff.delay(attempt)

    def _lost_answer(self, exc: BaseException) -> SubmissionUnknown:
        detail = type(exc).__name__ if not isinstance(exc, APIError) else str(exc)
        return SubmissionUnknown(f"{MAY_BE_CHARGED} (cause: {detail})")

    def _check_size(self, response: httpx.Response) -> None:
        length = _content_length(response)
        if length is not None and length > self.max_video_bytes:
            raise APIError(f"the video is {length // (1024 * 1024)} MB, more than the "
                           f"{self.max_video_bytes // (1024 * 1024)} MB cap "
                           "(SORA_MAX_VIDEO_MB); it was not downloaded", status_code=0)


def _post_outcome(client: _Base, response: httpx.Response) -> TaskSnapshot:
    """Turn a POST answer into a snapshot; a lost/garbled 'accepted' answer is unknown."""
    status = response.status_code
    if status >= 500:
        raise client._lost_answer(error_for_response(response, client._key))
    if status >= 400:
        raise error_for_response(response, client._key)
    try:
        return client._parse(response)
    except MalformedResponseError as exc:
        raise client._lost_answer(exc) from None


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

    def _exchange(self, request: httpx.Request) -> httpx.Response:
        """Send, and read the answer up to MAX_ANSWER_BYTES."""
        response = self._http.send(request, stream=True, auth=self._auth_for(str(request.url)))
        try:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise _too_big(response)
            return _buffered(response, bytes(body))
        finally:
            response.close()
            _unlink(response)

    def submit(self, request: VideoRequest) -> TaskSnapshot:
        """POST once. Retried only if the connection failed before anything was sent."""
        built = self._submit_request(self._http, request)
        for attempt in range(self.max_connect_attempts):
            try:
                response = self._exchange(built)
            except httpx.RequestError as exc:
                time.sleep(self._after_post_error(exc, attempt))
                continue
            except MalformedResponseError as exc:   # an endless answer: the POST arrived
                raise self._lost_answer(exc) from None
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
        built = self._build(self._http, "GET", self._task_url(task_id))
        failure: APIConnectionError | None = None
        try:
            response = self._exchange(built)
        except httpx.RequestError as exc:
            failure = transport_error(exc)
        if failure is not None:
            raise failure
        return self._parse(response)

    def download(self, url: str, path: str | os.PathLike[str],
                 on_progress: ProgressCallback | None = None) -> Path:
        """Stream ``url`` to ``path`` in constant memory; the file appears only when complete.

        Gives up after ``download_timeout`` seconds overall and at ``max_video_bytes``."""
        deadline = time.monotonic() + self.download_timeout
        failure: APIConnectionError | None = None
        r: httpx.Response | None = None
        with _Sink(Path(path), on_progress, self.max_video_bytes, deadline) as sink:
            try:
                with self._http.stream("GET", url, headers=_AGENT,
                                       auth=self._auth_for(url)) as r:
                    if r.status_code >= 400:
                        r.read()
                        raise error_for_response(r, self._key)
                    self._check_size(r)
                    sink.start(r)
                    for chunk in r.iter_bytes(CHUNK):
                        sink.write(chunk)
            except httpx.RequestError as exc:
                failure = transport_error(exc)
            finally:
                if r is not None:
                    _unlink(r)
            if failure is not None:
                raise failure
        return sink.target


CHUNK = 256 * 1024


class _Sink:
    """A download's file: a temp file beside the target, fsynced and renamed when complete,
    removed on any failure, so a half-written video can never pass for a finished one.
    It enforces the size cap and the overall deadline as bytes arrive."""

    def __init__(self, target: Path, on_progress: ProgressCallback | None,
                 max_bytes: int, deadline: float) -> None:
        self.target = target
        self.on_progress = on_progress
        self.max_bytes = max_bytes
        self.deadline = deadline
        self.total: int | None = None
        self.done = 0
        self.finished = False

    def __enter__(self) -> _Sink:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp_name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".part",
                                             dir=self.target.parent)
        self.out = os.fdopen(fd, "wb")
        return self

    def start(self, response: httpx.Response) -> None:
        self.total = _content_length(response)

    def write(self, chunk: bytes) -> None:
        self.done += len(chunk)
        if self.done > self.max_bytes:
            raise APIError(f"the video passed the {self.max_bytes // (1024 * 1024)} MB cap "
                           "(SORA_MAX_VIDEO_MB); the download was stopped", status_code=0)
        self.check_deadline()
        self.out.write(chunk)
        if self.on_progress is not None:
            self.on_progress(self.done, self.total)

    def check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise APITimeoutError("the video download took longer than SORA_DOWNLOAD_TIMEOUT;"
                                  " it was stopped (job.download() tries again)")

    def finish(self) -> None:
        """Flush, fsync and rename into place (blocking: the async client runs it in a
        worker thread, so a slow disk never stalls the poller's loop)."""
        if self.total is not None and self.done != self.total:
            raise APIConnectionError(f"download ended early ({self.done} of {self.total} bytes)")
        self.out.flush()
        os.fsync(self.out.fileno())
        self.out.close()
        os.replace(self.tmp_name, self.target)
        self.finished = True

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None and not self.finished:
                self.finish()
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

    #: Where blocking file work runs (the engine gives its events thread; None: asyncio's).
    io_executor: concurrent.futures.Executor | None = None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _exchange(self, request: httpx.Request) -> httpx.Response:
        response = await self._http.send(request, stream=True,
                                         auth=self._auth_for(str(request.url)))
        try:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise _too_big(response)
            return _buffered(response, bytes(body))
        finally:
            await response.aclose()
            _unlink(response)

    async def submit(self, request: VideoRequest) -> TaskSnapshot:
        built = self._submit_request(self._http, request)
        for attempt in range(self.max_connect_attempts):
            try:
                response = await self._exchange(built)
            except httpx.RequestError as exc:
                await asyncio.sleep(self._after_post_error(exc, attempt))
                continue
            except MalformedResponseError as exc:
                raise self._lost_answer(exc) from None
            return _post_outcome(self, response)
        raise AssertionError("unreachable")

    async def retrieve_once(self, task_id: str) -> tuple[TaskSnapshot, float | None]:
        """One GET, no retry (the poller schedules retries); returns the server's poll hint."""
        built = self._build(self._http, "GET", self._task_url(task_id))
        failure: APIConnectionError | None = None
        try:
            response = await self._exchange(built)
        except httpx.RequestError as exc:
            failure = transport_error(exc)
        if failure is not None:
            raise failure
        snapshot = self._parse(response)
        return snapshot, snapshot.poll_after

    async def download(self, url: str, path: Path,
                       on_progress: ProgressCallback | None = None) -> Path:
        """Stream to a temp file beside ``path``, fsync, then rename: never a half file.

        The overall deadline holds even against a link that sends one byte a second."""
        deadline = time.monotonic() + self.download_timeout
        try:
            return await asyncio.wait_for(self._download(url, path, on_progress, deadline),
                                          timeout=self.download_timeout)
        except asyncio.TimeoutError:
            raise APITimeoutError("the video download took longer than SORA_DOWNLOAD_TIMEOUT;"
                                  " it was stopped (job.download() tries again)") from None

    async def _download(self, url: str, path: Path, on_progress: ProgressCallback | None,
                        deadline: float) -> Path:
        failure: APIConnectionError | None = None
        r: httpx.Response | None = None
        with _Sink(path, on_progress, self.max_video_bytes, deadline) as sink:
            try:
                async with self._http.stream("GET", url, headers=_AGENT,
                                             auth=self._auth_for(url)) as r:
                    if r.status_code >= 400:
                        await r.aread()
                        raise error_for_response(r, self._key)
                    self._check_size(r)
                    sink.start(r)
                    async for chunk in r.aiter_bytes(CHUNK):
                        sink.write(chunk)
            except httpx.RequestError as exc:
                failure = transport_error(exc)
            finally:
                if r is not None:
                    _unlink(r)
            if failure is not None:
                raise failure
            await asyncio.get_running_loop().run_in_executor(self.io_executor, sink.finish)
        return sink.target
