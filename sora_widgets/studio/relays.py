"""Where a studio's jobs go: the embedded emulator of each wire style, or a relay with the
key it was used with in this process (an old job is polled with the key of *its* relay,
never with the key of the relay in use now), and one shared backend object per relay.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, TypeVar, cast

from sora_widgets.core.errors import ValidationError
from sora_widgets.core.models import VideoRequest
from sora_widgets.core.settings import (
    APIKey,
    Settings,
    api_style,
    missing_key_problem,
    preferences,
    settings,
)
from sora_widgets.engine.job import Backend
from sora_widgets.journal import JobRecord
from sora_widgets.relay.client import warn_if_cleartext
from sora_widgets.relay.styles import adapter_for

__all__ = ["EMULATOR_KEY", "Relays", "check_style"]

log = logging.getLogger("sora_widgets.studio.studio")
#: What ``Relays._one`` interns (immutable, hashable).
_Shared = TypeVar("_Shared", Backend, Path)

#: The embedded emulator wants a VIP key like the relay; this one is public and worthless.
EMULATOR_KEY = APIKey("sk-local-emulator")


class Relays:
    """The backends of one studio: emulators started on first use, keys per relay."""

    _lock: threading.RLock

    def __init__(self, *, api_style: str | None = None) -> None:
        #: This studio's relay wire style; None: the style in force (SORA_API_STYLE,
        #: ``%config SoraMagics.api_style``), read at each call.
        self.api_style = adapter_for(api_style).style if api_style is not None else None
        self._lock = threading.RLock()
        #: The embedded emulator of each wire style (started on first use).
        self._emulators: dict[str, Any] = {}
        #: Keys used with each relay in this process (memory only).
        self._keys: dict[str, APIKey] = {}
        self._interned: dict[object, Any] = {}

    def _one(self, value: _Shared) -> _Shared:
        """The one equal object this Studio already holds (a backend, a folder): thousands
        of handles share it instead of each carrying copies for the garbage collector."""
        with self._lock:
            return cast(_Shared, self._interned.setdefault(value, value))

    def style(self, current: Settings | None = None) -> str:
        """The wire style new jobs of this studio use now."""
        return self.api_style or api_style(current)

    def emulator_url(self, current: Settings | None = None, style: str | None = None) -> str:
        """Start the embedded emulator of a wire style once (its tasks persist under
        SORA_WIDGETS_HOME: ``emulator/`` for the seed's style, ``emulator-<style>/``)."""
        current = current or settings()
        style = style or self.style(current)
        with self._lock:
            emulator = self._emulators.get(style)
            if emulator is None:
                from sora_widgets.emulator import EmulatorConfig, start_emulator

                folder = "emulator" if style == "artifex" else f"emulator-{style}"
                config = EmulatorConfig(time_scale=current.emulator_time_scale,
                                        state_dir=current.home / folder,
                                        style=cast(Any, style))
                emulator = self._emulators[style] = start_emulator(config, host="127.0.0.1",
                                                                   port=0)
                log.info("local emulator (%s style) started at %s", style, emulator.base_url)
            else:
                emulator.config.time_scale = current.emulator_time_scale
            return str(emulator.base_url)

    def backend(self, current: Settings | None = None, *, base_url: str | None = None) -> Backend:
        """The backend new jobs go to now (the emulator when no key is set)."""
        current = current or settings()
        problem = missing_key_problem(current, base_url)
        if problem:
            raise ValidationError(problem, field="api_key")
        style = self.style(current)
        if current.uses_emulator:
            return self._emulator_backend(current, style=style)
        url = (base_url or preferences.base_url_or(current)).rstrip("/")
        warn_if_cleartext(url)   # here, on the caller's thread, before anything is sent
        assert current.api_key is not None
        with self._lock:
            self._keys[url] = current.api_key
        return self._relay_backend(url, current.api_key, current, style)

    def _emulator_backend(self, current: Settings, *, start: bool = True,
                          style: str = "artifex") -> Backend:
        """The embedded emulator's backend; ``start=False`` (history, reprs) starts no
        server: its URL is filled in when the job is tracked."""
        url = self.emulator_url(current, style) if start else ""
        return self._one(Backend(url, EMULATOR_KEY, emulator=True,
                                 time_scale=current.emulator_time_scale,
                                 download_timeout=current.download_timeout,
                                 max_video_bytes=current.max_video_bytes, style=style))

    def _relay_backend(self, url: str, key: APIKey | None, current: Settings,
                       style: str = "artifex") -> Backend:
        return self._one(Backend(url, key, emulator=False, time_scale=current.poll_scale,
                                 timeout=current.http_timeout,
                                 download_timeout=current.download_timeout,
                                 max_video_bytes=current.max_video_bytes, style=style))

    def _backend_of(self, record: JobRecord, current: Settings) -> tuple[Backend, str | None]:
        """The backend of an existing job, with the key of *its* relay, or a reason why
        this process cannot poll it now. The job's wire style is its request's."""
        style = record.video_request.style
        if record.emulator:
            return self._emulator_backend(current, start=False, style=style), None
        url = record.backend
        key = current.api_key if (current.api_key is not None and
                                  current.base_url.rstrip("/") == url) else None
        with self._lock:
            key = key or self._keys.get(url)
        if key is None:
            return self._relay_backend(url, None, current, style), (
                f"this job belongs to the relay {url}, whose key is not set now: it is not "
                "polled (another relay's key is never sent to it). Set SORA_BASE_URL to "
                "that relay and its SORA_API_KEY, then sw.resume()")
        return self._relay_backend(url, key, current, style), None


def check_style(request: VideoRequest, backend: Backend) -> None:
    """A request is checked against one style's catalogue: it goes only to that style."""
    if request.style != backend.style:
        where = "the local emulator" if backend.emulator else backend.base_url
        raise ValidationError(
            f"style: this request was made for the {request.style} style, but {where} speaks "
            f"{backend.style} now (SORA_API_STYLE / %config SoraMagics.api_style); make it "
            "again; nothing was sent", field="style")
