"""Tiny real HTTP servers for tests the emulator cannot stage.

* :class:`ScriptedRelay`: answers every request with whatever a Python function says
  (hostile task ids, error messages that echo the key, HTML pages, odd statuses).
* :class:`ThrottlingProxy`: forwards to an emulator, but holds the first video
  download half-sent until released (a download that is provably in progress).

Both are ``ThreadingHTTPServer``s on 127.0.0.1, started in a daemon thread, in the
manner of httpx's ``serve_in_thread``.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Answer", "Request", "ScriptedRelay", "ThrottlingProxy"]


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class _Running:
    server: _Server

    def _start(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = _Server(("127.0.0.1", 0), handler)
        self.server.owner = self  # type: ignore[attr-defined]
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        owner: ScriptedRelay = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, self.path, dict(self.headers.items()), body)
        with owner.lock:
            owner.requests.append(request)
        answer = owner.respond(request)
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)

    do_GET = do_POST = _any


class ScriptedRelay(_Running):
    """A relay whose every answer is ``respond(request)``; it records the requests."""

    def __init__(self, respond: Callable[[Request], Answer]) -> None:
        self.respond = respond
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self._start(_ScriptedHandler)

    def count(self, method: str) -> int:
        with self.lock:
            return sum(r.method == method for r in self.requests)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        owner: ThrottlingProxy = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
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
        path = self.path.partition("?")[0]
        throttle = False
        if path.startswith("/videos/") and response.status == 200:
            with owner.lock:
                throttle = path not in owner.throttled
                owner.throttled.add(path)
        if not throttle:
            self.wfile.write(data)
            return
        part = max(1, len(data) // 3)
        self.wfile.write(data[:part])
        self.wfile.flush()
        owner.on_partial(path[len("/videos/"):].removesuffix(".mp4"))
        if owner.release.wait(owner.hold_seconds):
            self.wfile.write(data[part:])
        else:
            self.close_connection = True

    do_GET = do_POST = _any


class _QuietServer(_Server):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a killed client mid-answer is the point of these tests


class ThrottlingProxy(_Running):
    """Forwards to ``127.0.0.1:upstream_port`` (the Host header too, so video links point
    back here). The first download of each video stops after a third of its body:
    ``on_partial(task_id)`` is called, and the rest follows once ``release`` is set."""

    def __init__(self, upstream_port: int, on_partial: Callable[[str], None], *,
                 hold_seconds: float = 30.0) -> None:
        self.upstream_port = upstream_port
        self.on_partial = on_partial
        self.hold_seconds = hold_seconds
        self.lock = threading.Lock()
        self.throttled: set[str] = set()
        self.release = threading.Event()
        self._start(_ProxyHandler)

    def _start(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = _QuietServer(("127.0.0.1", 0), handler)
        self.server.owner = self  # type: ignore[attr-defined]
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.release.set()
        super().stop()
