"""The relay's wire protocol on httpx: submit, retrieve, download.

Errors are converted once, at this boundary (``answers.py`` holds the mapping). The
money rule lives here: a POST is retried only when the connection failed before the
request could be sent (nothing reached the relay, nothing was charged). Any
failure after that — a lost answer, a reset, a gateway 5xx, a garbled body —
raises :class:`SubmissionUnknown`, because the relay has no idempotency key. A
request that cannot even be built (nothing left) is a :class:`ValidationError`.

Keys: the key is added by an ``httpx.Auth`` flow, so no frame holds it in a plain
dict (verbose tracebacks print frame locals), and transport errors are raised
without their httpcore chain (h11's events print the raw headers). Every string
that came from the relay is scrubbed of the key before it is returned.

Resources: answers are read up to ``MAX_ANSWER_BYTES``; a download has a size cap, an
overall deadline and a low-speed cutoff (``download.py``), so a hostile or broken relay
cannot hang a caller, keep a paid video unsaved or fill the disk.

Styles: what goes on the wire (the body, where the video is, the poll hint) is the job of
the style's adapter (``styles.py``); this module keeps the transport and the rules above for
every style. The key goes only to the relay's own origin (its ``/content`` endpoint), never
to a CDN link, and httpx drops it on a redirect to another origin.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import time
import warnings
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from sora_widgets.core.errors import (
    APIConnectionError,
    APIError,
    MalformedResponseError,
    SoraError,
    SubmissionUnknown,
    ValidationError,
)
from sora_widgets.core.models import TaskSnapshot, VideoRequest
from sora_widgets.core.redact import install_log_filter
from sora_widgets.core.retry import Backoff
from sora_widgets.core.settings import APIKey, api_style, is_loopback_url, settings
from sora_widgets.core.version import __version__
from sora_widgets.relay.answers import (
    MAX_ANSWER_BYTES,
    VIP_MESSAGE,
    buffered,
    error_for_response,
    is_transient,
    parse_task,
    poll_hint_seconds,
    retry_after_of,
    too_big,
    transport_error,
    unlink,
)
from sora_widgets.relay.download import (
    MIN_LOW_SPEED_TIME,
    LowSpeed,
    ProgressCallback,
    Sink,
    overall_timeout,
    stream_timeout,
)
from sora_widgets.relay.styles import WireAdapter, adapter_for

__all__ = ["MAY_BE_CHARGED", "VIP_MESSAGE", "AsyncSoraClient", "SoraClient",
           "error_for_response", "is_transient", "parse_task", "poll_hint_seconds",
           "retry_after_of", "transport_error", "warn_if_cleartext"]

log = logging.getLogger("sora_widgets.relay.client")

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


class BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer`` at send time: the key is never in a plain dict."""

    def __init__(self, key: APIKey) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "BearerAuth(********)"

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = "Bearer " + self._key.reveal()
        yield request


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
        low_speed_limit: int | None = None,
        low_speed_time: float | None = None,
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
        #: The low-speed cutoff (bytes a second, 0: off; seconds): SORA_LOW_SPEED_LIMIT
        #: and SORA_LOW_SPEED_TIME, the time scaled by SORA_POLL_SCALE like every interval.
        self.low_speed_limit = (current.low_speed_limit if low_speed_limit is None
                                else max(0, low_speed_limit))
        self.low_speed_time = (low_speed_time if low_speed_time is not None else
                               max(MIN_LOW_SPEED_TIME,
                                   current.low_speed_time * current.poll_scale))
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

    def _sink(self, path: Path, on_progress: ProgressCallback | None) -> Sink:
        """A download's file, bounded by the cap, the overall deadline and the speed rule."""
        return Sink(path, on_progress, self.max_video_bytes,
                    time.monotonic() + self.download_timeout,
                    LowSpeed(self.low_speed_limit, self.low_speed_time))

    def _download_error(self, exc: httpx.RequestError, sink: Sink) -> APIConnectionError:
        """A read that timed out while the speed rule is on is the rule's cut (nothing came
        for the speed time); any other transport failure is converted as usual."""
        if isinstance(exc, httpx.ReadTimeout) and sink.speed.active:
            return sink.speed.too_slow()
        return transport_error(exc)


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
                    raise too_big(response)
            return buffered(response, bytes(body))
        finally:
            response.close()
            unlink(response)

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

        Gives up at ``max_video_bytes``, after ``download_timeout`` seconds overall, and
        when the link sends under ``low_speed_limit`` bytes a second for ``low_speed_time``
        seconds (a transient :class:`APITimeoutError`: ask the relay for a fresh link)."""
        failure: APIConnectionError | None = None
        r: httpx.Response | None = None
        with self._sink(Path(path), on_progress) as sink:
            try:
                with self._http.stream("GET", url, headers=_AGENT, auth=self._auth_for(url),
                                       timeout=stream_timeout(self.timeout, sink.speed)) as r:
                    if r.status_code >= 400:
                        r.read()
                        raise error_for_response(r, self._key)
                    sink.start(r)
                    for chunk in r.iter_bytes():
                        sink.write(chunk)
            except httpx.RequestError as exc:
                failure = self._download_error(exc, sink)
            finally:
                if r is not None:
                    unlink(r)
            if failure is not None:
                raise failure
        return sink.target


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
                    raise too_big(response)
            return buffered(response, bytes(body))
        finally:
            await response.aclose()
            unlink(response)

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

        The same bounds as :meth:`SoraClient.download`; the overall deadline is also a
        ``wait_for``, so it holds even while no byte arrives."""
        try:
            return await asyncio.wait_for(self._download(url, path, on_progress),
                                          timeout=self.download_timeout)
        except asyncio.TimeoutError:
            raise overall_timeout() from None

    async def _download(self, url: str, path: Path,
                        on_progress: ProgressCallback | None) -> Path:
        failure: APIConnectionError | None = None
        r: httpx.Response | None = None
        with self._sink(path, on_progress) as sink:
            try:
                async with self._http.stream(
                        "GET", url, headers=_AGENT, auth=self._auth_for(url),
                        timeout=stream_timeout(self.timeout, sink.speed)) as r:
                    if r.status_code >= 400:
                        await r.aread()
                        raise error_for_response(r, self._key)
                    sink.start(r)
                    async for chunk in r.aiter_bytes():
                        sink.write(chunk)
            except httpx.RequestError as exc:
                failure = self._download_error(exc, sink)
            finally:
                if r is not None:
                    unlink(r)
            if failure is not None:
                raise failure
            await asyncio.get_running_loop().run_in_executor(self.io_executor, sink.finish)
        return sink.target
