"""An image uploader for ``SORA_IMAGE_UPLOADER=tests.scripts.storyboard_uploader:upload``.

It serves each uploaded file from a loopback file host (started on first use), the way
an image host would; the emulator fetches loopback links, so a continuation made with it
still starts on the uploaded frame.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..doubles.files import FileServer

_log: list[tuple[str, str]] = []
_lock = threading.Lock()
_host: FileServer | None = None


def _files() -> FileServer:
    global _host
    with _lock:
        if _host is None:
            _host = FileServer("image/jpeg")
        return _host


def upload(path: Path) -> str:
    """Keep the file's bytes and return the link they are served at."""
    data = Path(path).read_bytes()
    host = _files()
    with _lock:
        name = f"/frames/{len(_log)}-{Path(path).name}"
        url = host.base_url + name
        with host.lock:
            host.bodies[name] = (200, data)
        _log.append((url, str(path)))
    return url


def bad_upload(path: Path) -> str:
    return "ftp://example.invalid/frame.jpg"


def uploaded() -> list[tuple[str, str]]:
    with _lock:
        return list(_log)
