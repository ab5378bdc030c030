"""Helpers for the continuation and storyboard tests (issue 14).

* :class:`RecordingProxy`: a real loopback HTTP proxy in front of an emulator that keeps
  every request it forwards (method, path, body), so a test reads the exact bytes of each
  POST the package sent. The Host header is forwarded, so video links point back here.
* image helpers: decode a ``data:image/jpeg`` URI, the first frame of an mp4, and the mean
  pixel difference of two images (0 = identical, 255 = opposite).
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageChops, ImageOps, ImageStat

__all__ = ["RecordingProxy", "Sent", "decode_data_uri", "difference", "first_frame",
           "wait_until"]


@dataclass
class Sent:
    method: str
    path: str
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        owner: RecordingProxy = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with owner.lock:
            owner.sent.append(Sent(self.command, self.path, body))
        upstream = http.client.HTTPConnection("127.0.0.1", owner.upstream_port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        upstream.request(self.command, self.path, body=body or None, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        upstream.close()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _any


class RecordingProxy:
    """Forwards everything to ``127.0.0.1:upstream_port`` and records what it forwarded."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.sent: list[Sent] = []
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.owner = self  # type: ignore[attr-defined]
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def posts(self) -> list[Sent]:
        with self.lock:
            return [s for s in self.sent if s.method == "POST"]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def decode_data_uri(uri: str) -> tuple[str, Image.Image]:
    """(mime type, image) of a ``data:image/...;base64,...`` URI."""
    head, _, payload = uri.partition(",")
    assert head.startswith("data:") and head.endswith(";base64"), head[:40]
    image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
    image.load()
    return head[5:-7], image


def first_frame(video: Path) -> Image.Image:
    with av.open(str(video)) as container:
        frame = next(iter(container.decode(video=0)))
        image: Image.Image = frame.to_image()
        return image


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute pixel difference, ``b`` scaled to cover ``a``'s size."""
    fitted = ImageOps.fit(b.convert("RGB"), a.size, Image.Resampling.LANCZOS)
    return float(sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), fitted)).mean) / 3)


def wait_until(predicate: Callable[[], object], timeout: float, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not met within {timeout} s: {what}")
        time.sleep(0.02)
