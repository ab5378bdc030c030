"""The client's rules that do no I/O: the key's auth flow, building requests, the money
rule for POSTs, the download sink. ``client.py`` holds the sync and async I/O on top
(as httpx's ``BaseClient`` holds what its two clients share).

The money rule: a POST (submit, remix, extension) is retried only when the connection
failed before the request could be sent; anything after that is
:class:`SubmissionUnknown`, since a relay has no idempotency key. Paths of the other
endpoints (remix, extension, stills) come from the style's adapter, relative to the base
URL; where the style has none, the request is refused with a :class:`ValidationError`
before anything is sent.
"""

from __future__ import annotations

import logging
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
    SubmissionUnknown,
    ValidationError,
)
from sora_widgets.core.models import TaskSnapshot, VideoRequest
from sora_widgets.core.redact import install_log_filter
from sora_widgets.core.retry import Backoff
from sora_widgets.core.settings import APIKey, api_style, is_loopback_url, settings
from sora_widgets.core.version import __version__
from sora_widgets.relay.answers import error_for_response, parse_task, transport_error
from sora_widgets.relay.base import STILL_VARIANTS
from sora_widgets.relay.download import (
    MIN_LOW_SPEED_TIME,
    Bounds,
    LowSpeed,
    ProgressCallback,
    Sink,
)
from sora_widgets.relay.styles import WireAdapter, adapter_for

__all__ = ["AGENT_HEADERS", "DEFAULT_TIMEOUT", "MAX_STILL_BYTES", "MAY_BE_CHARGED", "NOT_SENT",
           "STILL_TIMEOUT", "BearerAuth", "ClientBase", "post_outcome", "warn_if_cleartext"]

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
AGENT_HEADERS = {"User-Agent": _HEADERS["User-Agent"]}
#: A relay's still larger than this is not a still (a real thumbnail is a few dozen KB, a
#: spritesheet a few hundred): the download stops there.
MAX_STILL_BYTES = 8 * 1024 * 1024
#: Seconds a still may take, all in (read at each call): it is a nicety beside a saved
#: video, so a slow one gives way to decoding the poster locally instead of holding up the job.
STILL_TIMEOUT = 15.0


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


class ClientBase:
    """Every non-I/O rule of the two clients (settings, the key, building requests)."""

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

    def _remix_request(self, http: httpx.Client | httpx.AsyncClient, task_id: str,
                       prompt: str) -> httpx.Request:
        """The remix POST (the parent's id in the path), or a ValidationError where the
        style has no remix endpoint: nothing is sent."""
        path = self.wire.remix_path(_task_id(task_id))
        if path is None:
            raise ValidationError(f"remix: the {self.style} style has no remix endpoint; "
                                  "continue_with (the last frame) is the way; nothing was "
                                  "sent", field="remix")
        return self._build(http, "POST", self.base_url + path, **self.wire.remix_body(prompt))

    def _extend_request(self, http: httpx.Client | httpx.AsyncClient, task_id: str,
                        prompt: str, seconds: int) -> httpx.Request:
        path = self.wire.extend_path()
        if path is None:
            raise ValidationError(f"extend: the {self.style} style has no extension "
                                  "endpoint; continue_with (the last frame) is the way; "
                                  "nothing was sent", field="extend")
        return self._build(http, "POST", self.base_url + path,
                           **self.wire.extend_body(_task_id(task_id), prompt, seconds))

    def _still_url(self, task_id: str, variant: str) -> str:
        """Where the relay's still of a task is (on its own origin: fetched with the key)."""
        path = self.wire.still_url(_task_id(task_id), variant)
        if path is None:
            raise ValidationError(f"variant: the {self.style} style renders no stills; "
                                  "decode them from the saved video", field="variant")
        return self.base_url + path

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

    @property
    def renders_stills(self) -> bool:
        """Whether the relay renders stills of a task (``fetch_still`` would send a request;
        where not, nothing is sent and the stills are decoded from the video)."""
        return self.wire.still_url("task", STILL_VARIANTS[0]) is not None

    def _video_bounds(self) -> Bounds:
        return Bounds(self.max_video_bytes, self.download_timeout)

    def _still_bounds(self, variant: str) -> Bounds:
        return Bounds(MAX_STILL_BYTES, min(STILL_TIMEOUT, self.download_timeout),
                      f"the {variant}", size_setting="", time_setting="")

    def _sink(self, path: Path, on_progress: ProgressCallback | None, bounds: Bounds) -> Sink:
        """A download's file, bounded by the cap, the overall deadline and the speed rule."""
        return Sink(path, on_progress, bounds, LowSpeed(self.low_speed_limit, self.low_speed_time))

    def _download_error(self, exc: httpx.RequestError, sink: Sink) -> APIConnectionError:
        """A read that timed out while the speed rule is on is the rule's cut (nothing came
        for the speed time); any other transport failure is converted as usual."""
        if isinstance(exc, httpx.ReadTimeout) and sink.speed.active:
            return sink.speed.too_slow()
        return transport_error(exc)


def post_outcome(client: ClientBase, response: httpx.Response) -> TaskSnapshot:
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


def _task_id(task_id: object) -> str:
    if not isinstance(task_id, str) or not task_id.strip():
        raise ValidationError("task id: must be a non-blank string; nothing was sent",
                              field="task_id")
    return task_id
