"""Where a job runs (``Backend``: relay URL, key, timeouts) and where its files go.

Separate from the handle and the poller because both need it and neither should import
the other for it; the key lives here only (never a trait, the journal or a repr).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sora_widgets.core.retry import Backoff
from sora_widgets.core.settings import APIKey
from sora_widgets.relay.client import AsyncSoraClient, SoraClient

__all__ = ["Backend", "inside", "poster_of", "spritesheet_of", "video_file_name"]

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def poster_of(video: Path) -> Path:
    """Where a saved video's poster still lives (``frames.poster`` writes it there)."""
    return video.with_name(video.stem + ".poster.jpg")


def spritesheet_of(video: Path) -> Path:
    """Where the relay's spritesheet of a saved video lives (frames in a grid, for a
    hover-scrub), where its style renders one; nothing is decoded locally for it."""
    return video.with_name(video.stem + ".spritesheet.jpg")


def video_file_name(task_id: str) -> str:
    """An injective file name for a task id: a readable safe part plus a short hash
    (``clip:1`` and ``clip/1`` once mapped to one file, and one paid video overwrote the other)."""
    digest = hashlib.sha256(task_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{_SAFE.sub('_', task_id)[:80]}-{digest}.mp4"


@dataclass(frozen=True)
class Backend:
    """Where a job runs. The key is kept here, never in a trait, the journal or a repr."""

    base_url: str
    key: APIKey | None = field(default=None, repr=False)
    emulator: bool = False
    time_scale: float = 1.0
    timeout: float = 30.0
    download_timeout: float = 600.0
    max_video_bytes: int = 256 * 1024 * 1024
    #: The relay's wire style ("artifex" | "openai"): its clients speak it.
    style: str = "artifex"

    @property
    def journal_name(self) -> str:
        """How the journal names the backend (stable across restarts of the emulator)."""
        return "emulator" if self.emulator else self.base_url

    def _client_args(self) -> dict[str, Any]:
        return {"timeout": httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)),
                "warn_cleartext": False,       # Studio warned on the caller's thread
                "download_timeout": self.download_timeout,
                "max_video_bytes": self.max_video_bytes, "style": self.style}

    def async_client(self) -> AsyncSoraClient:
        return AsyncSoraClient(self.key, self.base_url, **self._client_args(),
                               backoff=Backoff(base=0.5 * self.time_scale,
                                               cap=30 * self.time_scale))

    def sync_client(self) -> SoraClient:
        return SoraClient(self.key, self.base_url, **self._client_args())


def inside(videos_dir: Path, path: str | None) -> Path | None:
    """A journal's ``local_path``, if it is a file inside this user's videos folder (the
    resolved path, symlinks followed); otherwise ``None``: the video counts as missing and
    is fetched again. A row of a shared journal is a teammate's data: its path could point
    at ``~/.ssh/...``, which History, ``--embed`` or ``download()`` would then copy."""
    if not path:
        return None
    try:
        real = Path(path).resolve()
        home = videos_dir.resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    return Path(path) if real.is_relative_to(home) and real.is_file() else None

