"""The HTTP layer: routing, the relay's answers, and the socket-level faults.

Built on the stdlib ``http.server`` rather than an ASGI server because fault injection
needs the raw socket: close it without answering, reset it, or hold it open. Every
answer has a Content-Length (HTTP/1.1 keep-alive) and ``Access-Control-Allow-Origin: *``.
The answers' shapes and the key check are in ``http_base.py``, the media routes in
``media.py``.

Routes: ``POST /v1/videos`` and ``GET /v1/videos/{id}`` in every style; the artifex style
hands out signed ``/videos/{id}.mp4`` links, the openai style serves the mp4 and its stills
at ``GET|HEAD /v1/videos/{id}/content`` (Bearer key required, Range supported) and takes
``POST /v1/videos/{id}/remix`` and ``POST /v1/videos/extensions``. The router style lives
under ``/api`` (``/api/v1/videos``, ``/api/v1/videos/{id}``, ``.../content?index=0``, the
public ``GET /api/v1/videos/models``); it also answers without the ``/api`` prefix, so a
base URL given as the emulator's origin works as well as the faithful ``origin/api``. In
the openai style every answer the emulator itself composes on ``/v1/`` carries
``openai-poll-after-ms``; injected fault answers (which stand for a proxy in front of the
relay) do not. A remix or an extension is a POST like a submit: the same faults apply.
"""

from __future__ import annotations

import contextlib
import json
import logging
import selectors
import socket
import struct
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any

from .engine import Engine
from .faults import ERROR_FAULTS, Fault, error_answer, malformed_answer, retry_after_header
from .media import MediaHandler
from .remix import child_request, parse_extension, parse_remix
from .router import API_PREFIX, models_json, parse_router_submit
from .tasks import VideoRequest
from .validation import BadRequest, parse_openai_submit, parse_submit

__all__ = ["EmulatorHTTPServer", "Handler"]

logger = logging.getLogger("sora_widgets.emulator")

_TASK_PREFIX = "/v1/videos/"
_CONTENT_SUFFIX = "/content"
_REMIX_SUFFIX = "/remix"
_VIDEO_PREFIX = "/videos/"
_CONTROL_PREFIX = "/_emulator/"


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


class Handler(MediaHandler):
    """One connection; ``_route`` runs once per request."""

    def do_GET(self) -> None:
        self._route()

    do_POST = do_HEAD = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    # --- routing ---------------------------------------------------------------------------

    def _route(self) -> None:
        path, _, query = self.path.partition("?")
        method = self.command
        self._style = style = self.engine.config.style
        self._hint_all = style == "openai" and path.startswith("/v1/")
        if style == "router" and (path == API_PREFIX or path.startswith(API_PREFIX + "/")):
            path = path[len(API_PREFIX):]
        task_path = path[len(_TASK_PREFIX):] if path.startswith(_TASK_PREFIX) else None
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
            elif style == "router" and task_path == "models":
                if self._only(method, "GET"):
                    self._send_json(200, models_json(self.engine.config.prices.get("router",
                                                                                   {})))
            elif style == "openai" and task_path == "extensions":
                if self._only(method, "POST"):
                    self._extend(body)
            elif task_path is not None and "/" not in task_path:
                if self._only(method, "GET"):
                    self._retrieve(task_path)
            elif (style in ("openai", "router") and task_path is not None
                  and task_path.endswith(_CONTENT_SUFFIX)
                  and "/" not in task_path[:-len(_CONTENT_SUFFIX)]):
                if self._only(method, "GET", "HEAD"):
                    self._content(task_path[:-len(_CONTENT_SUFFIX)], query)
            elif (style == "openai" and task_path is not None
                  and task_path.endswith(_REMIX_SUFFIX)
                  and "/" not in task_path[:-len(_REMIX_SUFFIX)]):
                if self._only(method, "POST"):
                    self._remix(task_path[:-len(_REMIX_SUFFIX)], body)
            elif path.startswith(_VIDEO_PREFIX) and path.endswith(".mp4"):
                if self._only(method, "GET", "HEAD"):
                    self._video(path[len(_VIDEO_PREFIX):-len(".mp4")], query)
            elif path.startswith(_CONTROL_PREFIX):
                self._control(method, path[len(_CONTROL_PREFIX):], body)
            elif path in ("/", ""):
                api = (API_PREFIX if style == "router" else "") + "/v1/videos"
                self._send_json(200, {"service": "sora-widgets emulator", "api": api,
                                      "style": style, "stats": "/_emulator/stats"})
            else:
                self._error(404, "not found", "not_found")
        except OSError:
            self.close_connection = True  # the client went away; nothing to answer
        except Exception:
            logger.exception("emulator bug while answering %s %s", method, path)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._error(500, "emulator internal error", "server_error")

    # --- the relay API ---------------------------------------------------------------------

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
            elif self._style == "router":
                request = parse_router_submit(body)
            else:
                request = parse_submit(body)
        except BadRequest as exc:
            self._error(400, exc.message, exc.code, param=exc.param)
            return
        self._create(request)

    def _remix(self, parent_id: str, body: bytes) -> None:
        """openai style: ``POST /v1/videos/{id}/remix``."""
        self.engine.store.count_post()
        if not self._authorized():
            return
        try:
            prompt = parse_remix(body)
        except BadRequest as exc:
            self._error(400, exc.message, exc.code, param=exc.param)
            return
        self._create_child(parent_id, prompt, "remix", 0)

    def _extend(self, body: bytes) -> None:
        """openai style: ``POST /v1/videos/extensions``."""
        self.engine.store.count_post()
        if not self._authorized():
            return
        try:
            parent_id, prompt, seconds = parse_extension(body)
        except BadRequest as exc:
            self._error(400, exc.message, exc.code, param=exc.param)
            return
        self._create_child(parent_id, prompt, "extension", seconds)

    def _create_child(self, parent_id: str, prompt: str, kind: str, seconds: int) -> None:
        parent = self.engine.store.get(parent_id)
        if parent is None:
            self._not_found(parent_id)
            return
        status = parent.state_at(time.time()).status
        if status != "completed":
            self._error(400, f"Video '{parent.id}' is {status}; only a completed video can be "
                        f"the source of a {kind}.", "video_not_ready", param="video_id")
            return
        self._create(child_request(parent, prompt, kind, seconds))

    def _create(self, request: VideoRequest) -> None:
        """Create (charge) a task for a valid, authorised POST, faults permitting."""
        engine = self.engine
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
        status = 202 if self._style == "router" else 200
        self._send_json(status, engine.submit_json(task, self._base_url()), api=True)

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
