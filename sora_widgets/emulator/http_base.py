"""What every emulator answer is built from: one connection's handler base.

The key check (401 without a key, 403 for a non-VIP one; the key is never echoed), the
body read (bounded), and the answers' shapes by style: ``{"error": {"message", "code"[,
"param"]}}`` (artifex), ``{"error": {"message", "type", "param", "code"}}`` (openai) or
``{"error": {"code": <HTTP status>, "message", "metadata": {"param", "reason"}}}`` (router).
Logging carries the request line only, never headers, so no API key can reach a log.
"""

from __future__ import annotations

import json
import logging
import re
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from .engine import Engine

if TYPE_CHECKING:
    from .handler import EmulatorHTTPServer

__all__ = ["BaseHandler"]

logger = logging.getLogger("sora_widgets.emulator")

_MAX_BODY = 32 * 1024 * 1024  # data: URI images can be large, but not unbounded
_HOST_RE = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
_NOT_VIP = "this API key is not in the VIP group; Sora 2 requires a key from the vip group"
_OPENAI_TYPES = {401: "invalid_request_error", 403: "permission_error",
                 429: "rate_limit_error"}


class BaseHandler(BaseHTTPRequestHandler):
    """One connection: the pieces every route uses."""

    server: EmulatorHTTPServer
    #: The style this request is answered in (read once per request) and whether the
    #: emulator's own answers to it carry ``openai-poll-after-ms`` (openai style, /v1/).
    _style = "artifex"
    _hint_all = False
    protocol_version = "HTTP/1.1"
    server_version = "sora-widgets-emulator"
    disable_nagle_algorithm = True
    timeout = 300  # idle keep-alive connections are closed after this

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

    # --- the key ------------------------------------------------------------------------------

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
        if self._style == "router":
            error = {"code": status, "message": message,
                     "metadata": {"param": param, "reason": code}}
        elif self._style == "openai":
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
