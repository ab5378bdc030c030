"""The HTTP layer: routing, the relay's answers, and the socket-level faults.

Built on the stdlib ``http.server`` rather than an ASGI server because fault injection
needs the raw socket: close it without answering, reset it, or hold it open. Every
answer has a Content-Length (HTTP/1.1 keep-alive) and ``Access-Control-Allow-Origin: *``.
Logging goes to ``logging.getLogger("sora_widgets.emulator")`` at debug level and carries
the request line only, never headers, so no API key can reach a log.

Routes: ``POST /v1/videos`` and ``GET /v1/videos/{id}`` in both styles; the artifex style
hands out signed ``/videos/{id}.mp4`` links, the openai style serves the mp4 at
``GET|HEAD /v1/videos/{id}/content`` (Bearer key required, Range supported). Error bodies
are ``{"error": {"message", "code"[, "param"]}}`` (artifex) or ``{"error": {"message",
"type", "param", "code"}}`` (openai). In the openai style every answer the emulator itself
composes on ``/v1/`` carries ``openai-poll-after-ms``; injected fault answers (which stand
for a proxy in front of the relay) do not.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import selectors
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any
from urllib.parse import parse_qs

from .engine import Engine
from .faults import ERROR_FAULTS, Fault, error_answer, malformed_answer, retry_after_header
from .tasks import Task
from .validation import BadRequest, parse_openai_submit, parse_submit

__all__ = ["EmulatorHTTPServer", "Handler"]

logger = logging.getLogger("sora_widgets.emulator")

_MAX_BODY = 32 * 1024 * 1024  # data: URI images can be large, but not unbounded
_HOST_RE = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
_TASK_PREFIX = "/v1/videos/"
_CONTENT_SUFFIX = "/content"
_VIDEO_PREFIX = "/videos/"
_CONTROL_PREFIX = "/_emulator/"
_NOT_VIP = "this API key is not in the VIP group; Sora 2 requires a key from the vip group"
_ECHOABLE_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
_OPENAI_TYPES = {401: "invalid_request_error", 403: "permission_error",
                 429: "rate_limit_error"}


class _Unsatisfiable(Exception):
    """A Range header that selects nothing of the file (416)."""


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its open connections, so it can close them all."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], engine: Engine) -> None:
        self.engine = engine
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self._open: set[socket.socket] = set()
        self._to_reset: set[int] = set()
        self._open_lock = threading.Lock()
        self.serving = threading.Event()
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), slow without a resolver.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def service_actions(self) -> None:
        self.serving.set()  # serve_forever is looping: shutdown() is now safe to call

    def process_request(self, request: Any, client_address: Any) -> None:
        if self.engine.stopping.is_set():
            self.shutdown_request(request)
            return
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
            reset = id(request) in self._to_reset
            self._to_reset.discard(id(request))
        if reset:
            self.close_request(request)  # no FIN first: SO_LINGER 0 makes close send RST
        else:
            super().shutdown_request(request)

    def mark_reset(self, sock: socket.socket) -> None:
        """Make the end of this connection a TCP reset instead of an orderly close."""
        linger = struct.pack("hh" if sys.platform == "win32" else "ii", 1, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        with self._open_lock:
            self._to_reset.add(id(sock))

    def close_all_connections(self) -> None:
        """Shut every open connection down; handlers blocked on them return at once."""
        with self._open_lock:
            open_sockets = list(self._open)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that vanish mid-answer are normal here (faults, timeouts): stay quiet.
        logger.debug("connection error", exc_info=True)


class Handler(BaseHTTPRequestHandler):
    """One connection; ``_route`` runs once per request."""

    server: EmulatorHTTPServer
    #: The style this request is answered in (read once per request) and whether the
    #: emulator's own answers to it carry ``openai-poll-after-ms`` (openai style, /v1/).
    _style = "artifex"
    _hint_all = False
    protocol_version = "HTTP/1.1"
    server_version = "sora-widgets-emulator"
    disable_nagle_algorithm = True
    timeout = 300  # idle keep-alive connections are closed after this

    def do_GET(self) -> None:
        self._route()

    do_POST = do_HEAD = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    @property
    def engine(self) -> Engine:
        return self.server.engine

    def version_string(self) -> str:
        return self.server_version

    def send_response(self, code: int, message: str | None = None) -> None:
        super().send_response(code, message)
        self.send_header("Access-Control-Allow-Origin", "*")  # every answer, errors included

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        # http.server's own errors (bad request line, oversized headers...) as JSON too.
        self.close_connection = True
        reason = self.responses.get(code, ("error", ""))[0]
        self._error(code, message or reason, f"http_{code}")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.client_address[0], format % args)

    # --- routing ---------------------------------------------------------------------------

    def _route(self) -> None:
        path, _, query = self.path.partition("?")
        method = self.command
        self._style = self.engine.config.style
        self._hint_all = self._style == "openai" and path.startswith("/v1/")
        try:
            body = self._read_body()
            if body is None:
                return
            if method == "OPTIONS":
                self._send(204, b"", "text/plain", {
                    "Access-Control-Allow-Methods": "GET, POST, HEAD, OPTIONS",
                    "Access-Control-Allow-Headers": "Authorization, Content-Type, Range",
                    "Access-Control-Max-Age": "600",
                })
            elif path == "/v1/videos":
                if self._only(method, "POST"):
                    self._submit(body)
            elif path.startswith(_TASK_PREFIX) and "/" not in path[len(_TASK_PREFIX):]:
                if self._only(method, "GET"):
                    self._retrieve(path[len(_TASK_PREFIX):])
            elif (
                self._style == "openai"
                and path.startswith(_TASK_PREFIX)
                and path.endswith(_CONTENT_SUFFIX)
                and "/" not in path[len(_TASK_PREFIX):-len(_CONTENT_SUFFIX)]
            ):
                if self._only(method, "GET", "HEAD"):
                    self._content(path[len(_TASK_PREFIX):-len(_CONTENT_SUFFIX)], query)
            elif path.startswith(_VIDEO_PREFIX) and path.endswith(".mp4"):
                if self._only(method, "GET", "HEAD"):
                    self._video(path[len(_VIDEO_PREFIX):-len(".mp4")], query)
            elif path.startswith(_CONTROL_PREFIX):
                self._control(method, path[len(_CONTROL_PREFIX):], body)
            elif path == "/":
                self._send_json(200, {"service": "sora-widgets emulator", "api": "/v1/videos",
                                      "stats": "/_emulator/stats"})
            else:
                self._error(404, "not found", "not_found")
        except OSError:
            self.close_connection = True  # the client went away; nothing to answer
        except Exception:
            logger.exception("emulator bug while answering %s %s", method, path)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._error(500, "emulator internal error", "server_error")

    def _only(self, method: str, *allowed: str) -> bool:
        if method in allowed:
            return True
        self._error(405, f"method {method} not allowed here", "method_not_allowed",
                    headers={"Allow": ", ".join(allowed)})
        return False

    def _read_body(self) -> bytes | None:
        """The request body, or None once an error has been answered."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._error(411, "send the body with a Content-Length", "length_required")
            return None
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._error(400, "invalid Content-Length", "invalid_request")
            return None
        if length > _MAX_BODY:
            self.close_connection = True
            self._error(413, "request body too large", "request_too_large")
            return None
        body = self.rfile.read(length)
        if len(body) < length:
            raise ConnectionAbortedError("client closed while sending the body")
        return body

    # --- the relay API ---------------------------------------------------------------------

    def _authorized(self) -> bool:
        """Check the Bearer key (answering 401/403 when it fails); the key is never echoed."""
        scheme, _, key = self.headers.get("Authorization", "").strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            self._error(401, "missing or invalid API key", "invalid_api_key")
            return False
        if key.startswith("nonvip") or key in self.engine.config.non_vip_keys:
            self._error(403, _NOT_VIP, "not_vip_group")
            return False
        return True

    def _submit(self, body: bytes) -> None:
        engine = self.engine
        engine.store.count_post()
        if not self._authorized():
            return
        try:
            if self._style == "openai":
                request = parse_openai_submit(
                    body, self.headers.get("Content-Type", ""),
                    strict_reference_size=engine.config.strict_reference_size,
                )
            else:
                request = parse_submit(body)
        except BadRequest as exc:
            self._error(400, exc.message, exc.code, param=exc.param)
            return
        fault = engine.faults.take("POST")
        if fault is not None:
            engine.store.count_fault(fault.name)
            if fault.name in ("drop", "reset", *ERROR_FAULTS):
                self._answer_fault(fault)  # nothing created, nothing charged
                return
        task = engine.store.create(request, engine.config)
        if fault is not None:
            if fault.name == "accept_then_drop":
                self.close_connection = True
                return
            if fault.name == "accept_then_hang":
                self._hold(float(fault.params.get("hang_seconds", engine.config.hang_seconds)))
                self.close_connection = True
                return
            if self._answer_fault(fault):
                return
        self._send_json(200, engine.submit_json(task), api=True)

    def _retrieve(self, task_id: str) -> None:
        engine = self.engine
        engine.store.count_get(task_id)
        fault = engine.faults.take("GET") or engine.faults.draw(engine.config.get_fault_rates)
        if fault is not None:
            engine.store.count_fault(fault.name)
            if self._answer_fault(fault):
                return
        if not self._authorized():
            return
        task = engine.store.get(task_id)
        if task is None:
            self._not_found(task_id)
            return
        self._send_json(200, engine.task_json(task, self._base_url()), api=True)

    def _not_found(self, task_id: str) -> None:
        if self._style != "openai":
            self._error(404, "video task not found", "not_found")
            return
        which = f" '{task_id}'" if _ECHOABLE_ID.fullmatch(task_id) else ""
        self._error(404, f"Video with id{which} not found.", "video_not_found", param="video_id")

    def _answer_fault(self, fault: Fault) -> bool:
        """Act out ``fault``; True when that was the whole answer, False to answer normally."""
        name, params, config = fault.name, fault.params, self.engine.config
        if name == "drop":
            self.close_connection = True
        elif name == "reset":
            self.server.mark_reset(self.connection)
            self.close_connection = True
        elif name in ERROR_FAULTS:
            status, content_type, body = error_answer(name)
            headers = {}
            if name in ("429", "503"):
                seconds = float(params.get("retry_after", config.retry_after))
                form = str(params.get("retry_after_form", config.retry_after_form))
                headers["Retry-After"] = retry_after_header(seconds, form)
            self._send(status, body, content_type, headers)
        elif name == "malformed":
            content_type, body = malformed_answer(self.engine.faults.malformed_kind(fault))
            self._send(200, body, content_type)
        elif name in ("slow", "timeout"):
            default = config.slow_seconds if name == "timeout" else 1.0
            if self._hold(float(params.get("delay", default))):
                return False
            self.close_connection = True
        else:
            return False
        return True

    def _hold(self, seconds: float) -> bool:
        """Keep the request waiting; False if the client hung up or the server is stopping."""
        deadline = time.monotonic() + seconds
        stopping = self.engine.stopping
        with selectors.DefaultSelector() as selector:
            selector.register(self.connection, selectors.EVENT_READ)
            while (remaining := deadline - time.monotonic()) > 0:
                if stopping.is_set():
                    return False
                if selector.select(min(remaining, 0.05)):
                    try:
                        if not self.connection.recv(1, socket.MSG_PEEK):
                            return False  # orderly close by the client (or by stop())
                    except OSError:
                        return False
                    # More request bytes (pipelining): stop watching the socket, just wait.
                    return not stopping.wait(max(0.0, deadline - time.monotonic()))
        return not stopping.is_set()

    # --- videos ----------------------------------------------------------------------------

    def _video(self, task_id: str, query: str) -> None:
        engine = self.engine
        if not engine.links.check(task_id, query):
            self._error(403, "this video link has expired; fetch the task again for a new one",
                        "link_expired")
            return
        task = engine.store.get(task_id)
        if task is None or task.state_at(time.time()).status != "completed":
            self._error(404, "video not found", "not_found")
            return
        self._serve_mp4(task)

    def _content(self, task_id: str, query: str) -> None:
        """openai style: ``GET /v1/videos/{id}/content[?variant=video]``."""
        engine = self.engine
        if not self._authorized():
            return
        task = engine.store.get(task_id)
        if task is None:
            self._not_found(task_id)
            return
        variants = parse_qs(query).get("variant", ["video"])
        if variants[-1] != "video":
            self._error(400, f"Invalid value for 'variant': the emulator serves only 'video' "
                        f"(got {variants[-1][:40]!r}).", "invalid_value", param="variant")
            return
        now = time.time()
        status = task.state_at(now).status
        if status == "failed":
            self._error(404, "This video failed; it has no content.", "video_failed",
                        param="video_id")
            return
        if status != "completed":
            self._error(404, f"Video is not ready yet (status {status}); download its content "
                        "once it is completed.", "video_not_ready", param="video_id")
            return
        expires = engine.expires_at(task)
        if expires is not None and now >= expires:
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expires))
            self._error(engine.config.content_expired_status,
                        f"The content of this video expired at {when} (expires_at "
                        f"{int(expires)}); it can no longer be downloaded.", "video_expired",
                        param="video_id")
            return
        self._serve_mp4(task)

    def _serve_mp4(self, task: Task) -> None:
        engine = self.engine
        try:
            data = engine.video_bytes(task)
        except ImportError:
            self._error(501, "the emulator needs PyAV and Pillow to render videos: "
                        "pip install av pillow", "video_unavailable")
            return
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
        hint = engine.poll_after_ms()
        if self._hint_all and hint is not None:
            headers["openai-poll-after-ms"] = str(hint)
        try:
            byte_range = _byte_range(self.headers.get("Range"), len(data))
        except _Unsatisfiable:
            headers["Content-Range"] = f"bytes */{len(data)}"
            self._error(416, "requested range not satisfiable", "range_not_satisfiable",
                        headers=headers)
            return
        if self.command == "GET":
            engine.store.count_download()
        if byte_range is None:
            self._send(200, data, "video/mp4", headers)
            return
        start, end = byte_range
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        self._send(206, memoryview(data)[start:end + 1], "video/mp4", headers)

    # --- control endpoints -----------------------------------------------------------------

    def _control(self, method: str, name: str, body: bytes) -> None:
        engine = self.engine
        if method == "GET" and name == "stats":
            self._send_json(200, engine.stats())
        elif method == "GET" and name == "config":
            self._send_json(200, engine.config.to_json())
        elif method == "POST" and name in ("config", "inject"):
            try:
                data = json.loads(body or b"{}")
                if not isinstance(data, dict):
                    raise ValueError("the body must be a JSON object")
                if name == "config":
                    engine.config.update(data)
                    self._send_json(200, engine.config.to_json())
                else:
                    fault = data.pop("fault", None)
                    method_ = data.pop("method", "POST")
                    times = data.pop("times", 1)
                    engine.faults.inject(str(fault), method=str(method_), times=times,
                                         params=data)
                    self._send_json(200, {"pending_faults": engine.faults.pending()})
            except (ValueError, TypeError) as exc:
                self._error(400, str(exc), "invalid_request")
        elif method == "POST" and name == "expire":
            engine.expire_all()
            self._send_json(200, {"expired": True})
        elif method == "POST" and name == "reset_stats":
            engine.store.reset_stats()
            self._send_json(200, {"reset": True})
        else:
            self._error(404, "not found", "not_found")

    # --- writing answers -------------------------------------------------------------------

    def _base_url(self) -> str:
        """``http://HOST:PORT`` as the client reached us (for absolute video links)."""
        host = self.headers.get("Host", "")
        if not _HOST_RE.fullmatch(host):
            host = f"{self.server.server_name}:{self.server.server_port}"
        return f"http://{host}"

    def _error(self, status: int, message: str, code: str, *, param: str | None = None,
               headers: dict[str, str] | None = None) -> None:
        error: dict[str, Any]
        if self._style == "openai":
            kind = _OPENAI_TYPES.get(status,
                                     "server_error" if status >= 500 else "invalid_request_error")
            error = {"message": message, "type": kind, "param": param, "code": code}
        else:
            error = {"message": message, "code": code}
            if param is not None:
                error["param"] = param
        self._send_json(status, {"error": error}, api=self._hint_all, headers=headers)

    def _send_json(self, status: int, data: Any, *, api: bool = False,
                   headers: dict[str, str] | None = None) -> None:
        headers = dict(headers or {})
        hint = self.engine.poll_after_ms()
        if api and hint is not None:
            headers["openai-poll-after-ms"] = str(hint)
        body = json.dumps(data, separators=(",", ":")).encode()
        self._send(status, body, "application/json", headers)

    def _send(self, status: int, body: bytes | memoryview, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (start, end) of a single-range ``Range`` header; None = whole file.

    Multiple or unparsable ranges are ignored (a 200 with the whole file is allowed).
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, sep, last = header[len("bytes="):].strip().partition("-")
    if not sep:
        return None
    try:
        if not first:  # suffix: the last N bytes
            count = int(last)
            if count <= 0:
                raise _Unsatisfiable
            return max(0, size - count), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size:
        raise _Unsatisfiable
    if end < start:
        return None
    return start, min(end, size - 1)
