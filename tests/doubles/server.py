"""The one loopback server base every test double is built on.

Modelled on httpx's ``tests/conftest.py`` ``serve_in_thread``: a real
``ThreadingHTTPServer`` on 127.0.0.1 (a free port), served from a daemon thread, stopped
with ``shutdown`` + ``server_close``. A double subclasses :class:`Served` and hands
:meth:`Served.serve` a handler class derived from :class:`Handler`; the handler reaches its
double as ``self.owner``. The parts every double used to copy live here once: reading a
request (:class:`Request`), writing an answer (:class:`Answer`), forwarding to an upstream
(proxies), and the quiet log.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["Answer", "Handler", "LoopbackServer", "Request", "Served", "serve_in_thread"]


@dataclass
class Request:
    """One request as the double received it (headers as sent, body whole)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def header(self, name: str) -> str | None:
        """A header by name, case-insensitively (None when absent)."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    @property
    def authorization(self) -> str:
        return self.header("Authorization") or ""

    @property
    def json(self) -> dict[str, Any]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value

    @property
    def prompt(self) -> str | None:
        try:
            value = json.loads(self.body).get("prompt")
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, str) else None


@dataclass
class Answer:
    """A whole answer: status, body, extra headers (Content-Length is always sent)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


class LoopbackServer(ThreadingHTTPServer):
    """Daemon handler threads, no join on close, a deep accept queue (socketserver's 5
    resets a burst of 32 connections), and, when ``quiet``, no traceback for a client that
    hung up mid-answer (what several tests are about)."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, handler: type[BaseHTTPRequestHandler], owner: Any, *,
                 quiet: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.owner = owner
        self.quiet = quiet

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not self.quiet:
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1, silent, with the request/answer/forward steps the doubles share."""

    protocol_version = "HTTP/1.1"

    @property
    def owner(self) -> Any:
        """The double (the :class:`Served`) this handler answers for."""
        return self.server.owner  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_request(self) -> Request:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        return Request(self.command, self.path, dict(self.headers.items()), body)

    def send_answer(self, answer: Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)

    def forward(self, request: Request, upstream_port: int) -> tuple[int, bytes]:
        """Send ``request`` to ``127.0.0.1:upstream_port`` (the Host header too, so links in
        the answer point back at the double), write its status and headers here, and return
        the status and the body for the caller to write (whole, or in parts)."""
        upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "connection"}
        try:
            upstream.request(request.method, request.path, body=request.body or None,
                             headers=headers)
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        return response.status, data


class Served:
    """A double served on loopback from a daemon thread; a context manager."""

    server: LoopbackServer
    thread: threading.Thread

    def serve(self, handler: type[BaseHTTPRequestHandler], *, quiet: bool = False) -> None:
        self.server = LoopbackServer(handler, self, quiet=quiet)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True,
                                       name=f"{type(self).__name__}-server")
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def serve_in_thread(handler: type[BaseHTTPRequestHandler], *,
                    quiet: bool = False) -> Iterator[Served]:
    """Serve a bare handler class for the length of a ``with`` block."""
    served = Served()
    served.serve(handler, quiet=quiet)
    try:
        yield served
    finally:
        served.stop()
