"""A toy relay for the trust-core tests (issue 11): a loopback server (see ``server``) that
plays the parts the emulator cannot.

:class:`ToyRelay` speaks the relay's two calls (``POST /v1/videos``, ``GET /v1/videos/{id}``)
and serves videos under ``/videos/``, with knobs:

* ``hold``: prompts whose POST answer is held until :meth:`ToyRelay.release` (a submit
  provably in flight);
* ``task_ids``: the task id given to a prompt (hostile ids like ``clip:1`` / ``clip/1``);
* ``task``: ``task(relay, task_id, n)`` builds the answer to the n-th GET of a task (a dict
  is sent as JSON; an :class:`Answer` or a :class:`Stream` as is);
* ``video``: ``video(relay, task_id)`` the same for a video download.

A :class:`Stream` answer is written chunk by chunk (slowly, endlessly, hugely) and the
server records in :attr:`ToyRelay.streams` how each one ended: how many bytes went out,
and whether the client hung up first. Every request is recorded with its headers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from .server import Answer, Handler, Request, Served

__all__ = ["Answer", "Request", "Sent", "Stream", "ToyRelay", "completed", "mp4_bytes", "running"]


@dataclass
class Stream:
    """An answer written piece by piece: ``head``, then ``chunk`` repeated until ``total``
    bytes went out (a safety cap: the test machine's disk and memory are shared), with
    ``interval`` seconds between pieces. ``length`` is the Content-Length announced
    (None: chunked transfer encoding, an answer of no announced size)."""

    head: bytes = b""
    chunk: bytes = b"\0" * 65536
    total: int = 0
    interval: float = 0.0
    length: int | None = None
    status: int = 200
    content_type: str = "application/octet-stream"


@dataclass
class Sent:
    """How one streamed answer ended."""

    path: str
    started: float
    ended: float | None = None
    bytes: int = 0
    aborted: bool = False      # the client hung up before the end
    finished: bool = False     # every byte up to ``total`` went out

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started


def mp4_bytes(task_id: str, size: int = 4096) -> bytes:
    """A small file that starts like an mp4 and differs per task id."""
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + task_id.encode() + b"\x00"
    return head + bytes((i * 7 + len(task_id)) % 251 for i in range(max(0, size - len(head))))


TaskFn = Callable[["ToyRelay", str, int], "dict[str, Any] | Answer | Stream"]
VideoFn = Callable[["ToyRelay", str], "Answer | Stream"]


def completed(relay: ToyRelay, task_id: str, n: int) -> dict[str, Any]:
    """The default task answer: completed at once, with a link to this relay."""
    return {"id": task_id, "task_id": task_id, "status": "completed", "progress": 100,
            "video_url": relay.video_url(task_id)}


def running(relay: ToyRelay, task_id: str, n: int) -> dict[str, Any]:
    """A task that stays in progress (for as long as the test needs it to)."""
    return {"id": task_id, "task_id": task_id, "status": "in_progress", "progress": 10}


def serve_mp4(relay: ToyRelay, task_id: str) -> Answer:
    return Answer(200, mp4_bytes(task_id), content_type="video/mp4")


class _Handler(Handler):
    def _any(self) -> None:
        relay: ToyRelay = self.owner
        request = self.read_request()
        with relay.lock:
            relay.requests.append(request)
        answer = relay.answer(request)
        if isinstance(answer, Stream):
            self._stream(relay, answer)
        else:
            self.send_answer(answer)

    def _stream(self, relay: ToyRelay, stream: Stream) -> None:
        sent = Sent(self.path, time.monotonic())
        with relay.lock:
            relay.streams.append(sent)
        chunked = stream.length is None
        self.close_connection = True
        try:
            self.send_response(stream.status)
            self.send_header("Content-Type", stream.content_type)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(stream.length))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.flush()
            pieces = [stream.head] if stream.head else []
            while True:
                piece = pieces.pop() if pieces else stream.chunk
                piece = piece[:max(0, stream.total - sent.bytes)]
                if not piece:
                    break
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                else:
                    self.wfile.write(piece)
                self.wfile.flush()
                sent.bytes += len(piece)
                if stream.interval and relay.stopping.wait(stream.interval):
                    break
            if sent.bytes >= stream.total:
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                sent.finished = True
        except OSError:
            sent.aborted = True
        finally:
            sent.ended = time.monotonic()

    do_GET = do_POST = _any


class ToyRelay(Served):
    """See the module docstring. Use as a context manager (or call :meth:`stop`)."""

    def __init__(self, *, hold: Iterable[str] = (), task_ids: dict[str, str] | None = None,
                 task: TaskFn = completed, video: VideoFn = serve_mp4) -> None:
        self.hold = set(hold)
        self.task_ids = dict(task_ids or {})
        self.task = task
        self.video = video
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self.streams: list[Sent] = []
        self.stopping = threading.Event()
        self._released: dict[str, threading.Event] = {}
        self._accepted = 0
        self.serve(_Handler, quiet=True)   # clients that hang up mid-answer are the point

    # -- what the tests read ----------------------------------------------------------------

    def video_url(self, task_id: str, query: str = "") -> str:
        url = f"{self.base_url}/videos/{quote(task_id, safe='')}.mp4"
        return f"{url}?{query}" if query else url

    def posts(self, prompt: str | None = None) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.method == "POST"
                    and (prompt is None or r.prompt == prompt)]

    def gets(self, task_id: str | None = None) -> list[Request]:
        """Task GETs (not video downloads), of one task or of all."""
        with self.lock:
            found = [r for r in self.requests if r.method == "GET"
                     and r.path.partition("?")[0].startswith("/v1/videos/")]
        if task_id is None:
            return found
        return [r for r in found if self._task_of(r.path) == task_id]

    def release(self, prompt: str) -> None:
        """Let the held POST of ``prompt`` be answered."""
        self._event(prompt).set()

    def stop(self) -> None:
        self.stopping.set()
        for event in list(self._released.values()):
            event.set()
        super().stop()

    # -- answering --------------------------------------------------------------------------

    def _event(self, prompt: str) -> threading.Event:
        with self.lock:
            return self._released.setdefault(prompt, threading.Event())

    @staticmethod
    def _task_of(path: str) -> str:
        return unquote(path.partition("?")[0][len("/v1/videos/"):])

    def new_task_id(self, prompt: str) -> str:
        """``task_ids[prompt]`` if given, else a fresh id per accepted POST: v_toy_1, ..."""
        with self.lock:
            self._accepted += 1
            return self.task_ids.get(prompt, f"v_toy_{self._accepted}")

    def answer(self, request: Request) -> Answer | Stream:
        path = request.path.partition("?")[0]
        if request.method == "POST" and path == "/v1/videos":
            prompt = request.prompt or ""
            if prompt in self.hold:
                self._event(prompt).wait(60)
            task_id = self.new_task_id(prompt)
            body = {"id": task_id, "task_id": task_id, "object": "video", "status": "queued",
                    "progress": 0, "video_url": None, "model": "sora-2"}
            return Answer(200, json.dumps(body).encode())
        if request.method == "GET" and path.startswith("/v1/videos/"):
            task_id = self._task_of(path)
            n = len(self.gets(task_id))
            result = self.task(self, task_id, n)
            if isinstance(result, dict):
                return Answer(200, json.dumps(result).encode())
            return result
        if request.method == "GET" and path.startswith("/videos/") and path.endswith(".mp4"):
            return self.video(self, unquote(path[len("/videos/"):-len(".mp4")]))
        return Answer(404, b'{"error": {"message": "not found", "code": "not_found"}}')
