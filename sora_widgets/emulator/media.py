"""Serving a task's media: the mp4 (whole or by Range) and the stills.

* artifex (and router ``urls``): signed ``/videos/{id}.mp4?expires=&sig=`` links, no key;
* openai: ``GET|HEAD /v1/videos/{id}/content`` with the key, ``?variant=video`` (the
  default), ``thumbnail`` (WebP) or ``spritesheet`` (JPEG), until ``expires_at``;
* router: ``GET|HEAD /api/v1/videos/{id}/content?index=0`` with the key.
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs

from .http_base import BaseHandler
from .tasks import Task

__all__ = ["MediaHandler"]

_ECHOABLE_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
_VARIANTS = ("video", "thumbnail", "spritesheet")


class _Unsatisfiable(Exception):
    """A Range header that selects nothing of the file (416)."""


class MediaHandler(BaseHandler):
    """The media routes (see the module docstring)."""

    def _not_found(self, task_id: str) -> None:
        if self._style != "openai":
            self._error(404, "video task not found", "not_found")
            return
        which = f" '{task_id}'" if _ECHOABLE_ID.fullmatch(task_id) else ""
        self._error(404, f"Video with id{which} not found.", "video_not_found", param="video_id")

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
        """``GET /v1/videos/{id}/content``: openai ``[?variant=video|thumbnail|spritesheet]``,
        router ``?index=0``."""
        engine = self.engine
        if not self._authorized():
            return
        task = engine.store.get(task_id)
        if task is None:
            self._not_found(task_id)
            return
        params = parse_qs(query)
        variant = params.get("variant", ["video"])[-1]
        if self._style == "router":
            index = params.get("index", ["0"])[-1]
            if "variant" in params or not index.isdigit():
                self._error(400, "Takes one parameter: index, a whole number.",
                            "invalid_value", param="variant" if "variant" in params else "index")
                return
            if index != "0":
                self._error(404, f"This job has one output, index=0 (not {index[:20]}).",
                            "not_found", param="index")
                return
        elif variant not in _VARIANTS:
            self._error(400, f"Invalid value for 'variant': expected one of 'video', "
                        f"'thumbnail' or 'spritesheet' (got {variant[:40]!r}).",
                        "invalid_value", param="variant")
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
        expires = engine.expires_at(task) if self._style == "openai" else None
        if expires is not None and now >= expires:
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expires))
            self._error(engine.config.content_expired_status,
                        f"The content of this video expired at {when} (expires_at "
                        f"{int(expires)}); it can no longer be downloaded.", "video_expired",
                        param="video_id")
            return
        if variant == "video":
            self._serve_mp4(task)
        else:
            self._serve_still(task, variant)

    def _serve_still(self, task: Task, variant: str) -> None:
        try:
            data, kind = self.engine.still_bytes(task, variant)
        except ImportError:
            self._error(501, "the emulator needs Pillow to render stills: pip install pillow",
                        "video_unavailable")
            return
        headers = {"Cache-Control": "private, max-age=3600"}
        hint = self.engine.poll_after_ms()
        if self._hint_all and hint is not None:
            headers["openai-poll-after-ms"] = str(hint)
        self._send(200, data, kind, headers)

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
