"""An image uploader for ``SORA_IMAGE_UPLOADER=tests.scripts.storyboard_uploader:upload``.

It serves each uploaded file from a loopback HTTP server (started on first use), the way
an image host would; the emulator fetches loopback links, so a continuation made with it
still starts on the uploaded frame.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_files: dict[str, bytes] = {}
_log: list[tuple[str, str]] = []
_lock = threading.Lock()
_server: ThreadingHTTPServer | None = None


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        with _lock:
            body = _files.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _base_url() -> str:
    global _server
    with _lock:
        if _server is None:
            _server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            _server.daemon_threads = True
            threading.Thread(target=_server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{_server.server_address[1]}"


def upload(path: Path) -> str:
    """Keep the file's bytes and return the link they are served at."""
    data = Path(path).read_bytes()
    name = f"/frames/{len(_log)}-{Path(path).name}"
    url = _base_url() + name
    with _lock:
        _files[name] = data
        _log.append((url, str(path)))
    return url


def bad_upload(path: Path) -> str:
    return "ftp://example.invalid/frame.jpg"


def uploaded() -> list[tuple[str, str]]:
    with _lock:
        return list(_log)
