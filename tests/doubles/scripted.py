"""A relay whose every answer is a Python function's: for what the emulator cannot stage
(hostile task ids, error messages that echo the key, HTML pages, odd statuses, a gateway
whose videos live on another origin)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from .server import Answer, Handler, Request, Served

__all__ = ["ScriptedRelay"]


class _ScriptedHandler(Handler):
    def _any(self) -> None:
        owner: ScriptedRelay = self.owner
        request = self.read_request()
        with owner.lock:
            owner.requests.append(request)
        self.send_answer(owner.respond(request))

    do_GET = do_POST = _any


class ScriptedRelay(Served):
    """Answers every request with ``respond(request)`` and records the requests."""

    def __init__(self, respond: Callable[[Request], Answer]) -> None:
        self.respond = respond
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.serve(_ScriptedHandler)

    def count(self, method: str) -> int:
        with self.lock:
            return sum(r.method == method for r in self.requests)
