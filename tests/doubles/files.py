"""A loopback file host: fixed bodies by path, every request counted. It plays an image
host for first-frame images fetched by the emulator, and the host an image uploader puts
its files on."""

from __future__ import annotations

import threading

from .server import Answer, Handler, Served

__all__ = ["FileServer"]


class _FileHandler(Handler):
    def do_GET(self) -> None:
        owner: FileServer = self.owner
        with owner.lock:
            owner.hits.append(self.path)
            status, body = owner.bodies.get(self.path, (404, b"not found"))
        self.send_answer(Answer(status, body, content_type=owner.content_type))


class FileServer(Served):
    """``bodies[path] = (status, bytes)``; any other path is a 404. ``hits`` lists the
    paths asked for, in order."""

    def __init__(self, content_type: str = "application/octet-stream") -> None:
        self.content_type = content_type
        self.bodies: dict[str, tuple[int, bytes]] = {}
        self.hits: list[str] = []
        self.lock = threading.Lock()
        self.serve(_FileHandler)

    @property
    def url(self) -> str:
        return self.base_url
