"""Proxies in front of an emulator: each forwards every request (the Host header too, so
video links point back at the proxy) and adds one thing the emulator does not do.

* :class:`RecordingProxy` keeps every request it received, so a test reads the exact
  bytes of each POST the package sent; its ``answer`` hook may answer a request itself
  instead (a relay's still that is missing, garbage, huge or slow).
* :class:`ThrottlingProxy` holds the first download of each video a third of the way
  through until released: a download that is provably in progress.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .server import Answer, Handler, Request, Served

__all__ = ["RecordingProxy", "ThrottlingProxy"]


class _RecordingHandler(Handler):
    def _any(self) -> None:
        owner: RecordingProxy = self.owner
        request = self.read_request()
        with owner.lock:
            owner.sent.append(request)
        own = owner.answer(request) if owner.answer is not None else None
        if own is not None:
            self.send_answer(own)
            return
        _, data = self.forward(request, owner.upstream_port)
        self.wfile.write(data)

    do_GET = do_POST = _any


class RecordingProxy(Served):
    """Forwards everything to ``127.0.0.1:upstream_port`` and records what it received;
    a request for which ``answer(request)`` returns an :class:`Answer` gets that instead
    (the hook runs on the request's thread: it may block, for a slow answer)."""

    def __init__(self, upstream_port: int,
                 answer: Callable[[Request], Answer | None] | None = None) -> None:
        self.upstream_port = upstream_port
        self.answer = answer
        self.sent: list[Request] = []
        self.lock = threading.Lock()
        # A client that gave up on a held answer is what those tests are about: quiet.
        self.serve(_RecordingHandler, quiet=answer is not None)

    def posts(self) -> list[Request]:
        with self.lock:
            return [s for s in self.sent if s.method == "POST"]

    def matching(self, part: str) -> list[Request]:
        """The requests whose path contains ``part``."""
        with self.lock:
            return [s for s in self.sent if part in s.path]


class _ThrottlingHandler(Handler):
    def _any(self) -> None:
        owner: ThrottlingProxy = self.owner
        status, data = self.forward(self.read_request(), owner.upstream_port)
        path = self.path.partition("?")[0]
        throttle = False
        if path.startswith("/videos/") and status == 200:
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


class ThrottlingProxy(Served):
    """Forwards to ``127.0.0.1:upstream_port``. The first download of each video stops
    after a third of its body: ``on_partial(task_id)`` is called, and the rest follows once
    ``release`` is set (or the connection closes after ``hold_seconds``)."""

    def __init__(self, upstream_port: int, on_partial: Callable[[str], None], *,
                 hold_seconds: float = 30.0) -> None:
        self.upstream_port = upstream_port
        self.on_partial = on_partial
        self.hold_seconds = hold_seconds
        self.lock = threading.Lock()
        self.throttled: set[str] = set()
        self.release = threading.Event()
        self.serve(_ThrottlingHandler, quiet=True)   # a killed client mid-answer is the point

    def stop(self) -> None:
        self.release.set()
        super().stop()
