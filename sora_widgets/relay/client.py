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
to a CDN link, and httpx drops it on a redirect to another origin. What does no I/O (the
key's auth flow, building requests, the money rule's decision) is in ``rules.py``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import time
from pathlib import Path
from typing import Any

import httpx

from sora_widgets.core.errors import (
    APIConnectionError,
    MalformedResponseError,
    SoraError,
)
from sora_widgets.core.models import TaskSnapshot, VideoRequest
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
    Bounds,
    ProgressCallback,
    overall_timeout,
    stream_timeout,
)
from sora_widgets.relay.rules import (
    AGENT_HEADERS,
    MAY_BE_CHARGED,
    ClientBase,
    log,
    post_outcome,
    warn_if_cleartext,
)

__all__ = ["MAY_BE_CHARGED", "VIP_MESSAGE", "AsyncSoraClient", "SoraClient",
           "error_for_response", "is_transient", "parse_task", "poll_hint_seconds",
           "retry_after_of", "transport_error", "warn_if_cleartext"]

class SoraClient(ClientBase):
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
        return self._post(self._submit_request(self._http, request))

    def remix(self, task_id: str, prompt: str) -> TaskSnapshot:
        """A new paid video from a finished one (``openai`` style); POSTed once, as a submit."""
        return self._post(self._remix_request(self._http, task_id, prompt))

    def extend(self, task_id: str, prompt: str, seconds: int) -> TaskSnapshot:
        """A longer video from a finished one, where offered; POSTed once, as a submit."""
        return self._post(self._extend_request(self._http, task_id, prompt, seconds))

    def fetch_still(self, task_id: str, variant: str, path: str | os.PathLike[str]) -> Path:
        """The relay's ``thumbnail`` or ``spritesheet`` of a completed task, saved to ``path``
        (a ValidationError where the style renders none: decode the video instead). Bounded
        tighter than a video: ``MAX_STILL_BYTES``, ``STILL_TIMEOUT`` seconds."""
        return self._fetch(self._still_url(task_id, variant), Path(path), None,
                           self._still_bounds(variant))

    def _post(self, built: httpx.Request) -> TaskSnapshot:
        for attempt in range(self.max_connect_attempts):
            try:
                response = self._exchange(built)
            except httpx.RequestError as exc:
                time.sleep(self._after_post_error(exc, attempt))
                continue
            except MalformedResponseError as exc:   # an endless answer: the POST arrived
                raise self._lost_answer(exc) from None
            return post_outcome(self, response)
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
        return self._fetch(url, Path(path), on_progress, self._video_bounds())

    def _fetch(self, url: str, path: Path, on_progress: ProgressCallback | None,
               bounds: Bounds) -> Path:
        failure: APIConnectionError | None = None
        r: httpx.Response | None = None
        with self._sink(path, on_progress, bounds) as sink:
            try:
                with self._http.stream("GET", url, headers=AGENT_HEADERS, auth=self._auth_for(url),
                                       timeout=stream_timeout(self.timeout, sink.speed,
                                                              bounds.seconds)) as r:
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


class AsyncSoraClient(ClientBase):
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
        return await self._post(self._submit_request(self._http, request))

    async def remix(self, task_id: str, prompt: str) -> TaskSnapshot:
        return await self._post(self._remix_request(self._http, task_id, prompt))

    async def extend(self, task_id: str, prompt: str, seconds: int) -> TaskSnapshot:
        return await self._post(self._extend_request(self._http, task_id, prompt, seconds))

    async def fetch_still(self, task_id: str, variant: str, path: Path) -> Path:
        return await self._fetch(self._still_url(task_id, variant), path, None,
                                 self._still_bounds(variant))

    async def _post(self, built: httpx.Request) -> TaskSnapshot:
        for attempt in range(self.max_connect_attempts):
            try:
                response = await self._exchange(built)
            except httpx.RequestError as exc:
                await asyncio.sleep(self._after_post_error(exc, attempt))
                continue
            except MalformedResponseError as exc:
                raise self._lost_answer(exc) from None
            return post_outcome(self, response)
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
        return await self._fetch(url, path, on_progress, self._video_bounds())

    async def _fetch(self, url: str, path: Path, on_progress: ProgressCallback | None,
                     bounds: Bounds) -> Path:
        try:
            return await asyncio.wait_for(self._download(url, path, on_progress, bounds),
                                          timeout=bounds.seconds)
        except asyncio.TimeoutError:
            raise overall_timeout(bounds) from None

    async def _download(self, url: str, path: Path, on_progress: ProgressCallback | None,
                        bounds: Bounds) -> Path:
        failure: APIConnectionError | None = None
        r: httpx.Response | None = None
        with self._sink(path, on_progress, bounds) as sink:
            try:
                async with self._http.stream(
                        "GET", url, headers=AGENT_HEADERS, auth=self._auth_for(url),
                        timeout=stream_timeout(self.timeout, sink.speed, bounds.seconds)) as r:
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
