"""Where a video download's bytes go, and the rules that bound it as they arrive.

A paid video is saved promptly (relay links expire), so a download must neither hang nor
fill the disk, whatever the far end does:

- **a size cap** (``SORA_MAX_VIDEO_MB``), checked against ``Content-Length`` before the
  first byte and against the bytes as they come (an endless chunked answer);
- **an overall deadline** (``SORA_DOWNLOAD_TIMEOUT``, 600 s);
- **a low-speed cutoff**, as curl's ``--speed-limit``/``--speed-time``: under
  ``SORA_LOW_SPEED_LIMIT`` bytes a second (16 KiB/s) for ``SORA_LOW_SPEED_TIME`` seconds
  (30 s) is a drip. A 1 byte/s link used to keep a finished job unsaved for the whole
  overall deadline; now it is cut within the speed time with an
  :class:`~sora_widgets.core.errors.APITimeoutError` (transient), and the engine asks the
  relay for a fresh link on its GET schedule. The rule is checked as each piece arrives,
  and the client's read timeout is never longer than the speed time (but at least
  :data:`MIN_STALL_SECONDS`, which also covers the wait for the answer's headers), so a
  link that sends nothing at all is cut as well.

The file itself is a temp file beside the target, fsynced and renamed when complete and
removed on any failure: a half-written video never passes for a finished one.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from sora_widgets.core.errors import APIConnectionError, APIError, APITimeoutError

__all__ = ["MIN_LOW_SPEED_TIME", "MIN_STALL_SECONDS", "VIDEO", "Bounds", "LowSpeed",
           "ProgressCallback", "Sink", "content_length", "overall_timeout", "stream_timeout"]

ProgressCallback = Callable[[int, int | None], None]
#: The shortest speed time, however compressed the tests' clock: a pause of a busy
#: 2-core machine on loopback must not count as a drip.
MIN_LOW_SPEED_TIME = 1.0
#: The shortest read timeout of a download. It also bounds the wait for the headers, which
#: a relay may spend making the file (the emulator renders a clip on its first GET).
MIN_STALL_SECONDS = 5.0


@dataclass(frozen=True)
class Bounds:
    """What one download may take (bytes, seconds overall) and what it is, for messages:
    a video has the user's settings; a relay's still has tighter, fixed ones."""

    max_bytes: int
    seconds: float
    what: str = "the video"
    #: The settings a user can change (named in the messages; empty: none).
    size_setting: str = "SORA_MAX_VIDEO_MB"
    time_setting: str = "SORA_DOWNLOAD_TIMEOUT"

    def too_big(self, detail: str) -> APIError:
        setting = f" ({self.size_setting})" if self.size_setting else ""
        return APIError(f"{self.what} {detail} the {_mb(self.max_bytes)} cap{setting}; it was "
                        "not kept", status_code=0)


def _mb(count: int) -> str:
    return f"{count / (1024 * 1024):.4g} MB"


class LowSpeed:
    """curl's low-speed rule: fewer than ``limit`` bytes a second, averaged over a window
    of ``seconds``, aborts the transfer. A window that passes starts the next one, so a
    stall followed by a burst is fine and a steady drip is not. ``limit`` 0 switches it off.
    ``clock`` is injectable for unit tests."""

    def __init__(self, limit: int, seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = max(0, limit)
        self.seconds = seconds
        self.clock = clock
        self.restart()

    def restart(self) -> None:
        """Start a window now: when the answer's headers are in (the wait for them is the
        read timeout's business; a relay may spend it making the file)."""
        self.since = self.clock()
        self.bytes = 0

    @property
    def active(self) -> bool:
        return self.limit > 0 and self.seconds > 0

    def add(self, count: int) -> None:
        """Count ``count`` bytes that just arrived; raise if the window ended too slow."""
        if not self.active:
            return
        self.bytes += count
        now = self.clock()
        elapsed = now - self.since
        if elapsed < self.seconds:
            return
        if self.bytes < self.limit * elapsed:
            raise self.too_slow()
        self.since, self.bytes = now, 0

    def too_slow(self) -> APITimeoutError:
        return APITimeoutError(
            f"the video link sent less than {self.limit / 1024:g} KiB/s for "
            f"{self.seconds:g} s; the download was stopped and a fresh link is asked for "
            "(SORA_LOW_SPEED_LIMIT=0 switches this rule off)")


def stream_timeout(timeout: httpx.Timeout | float | None, speed: LowSpeed,
                   cap: float | None = None) -> httpx.Timeout:
    """The client's timeout with its read part no longer than the speed time (floored at
    :data:`MIN_STALL_SECONDS`): a link that sends nothing for that long is below any limit.
    ``cap``: no part longer than this (a download whose whole deadline is shorter)."""
    base = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
    if cap is not None:
        base = httpx.Timeout(**{part: cap if value is None else min(value, cap)
                                for part, value in base.as_dict().items()})
    if not speed.active:
        return base
    stall = max(speed.seconds, MIN_STALL_SECONDS)
    read = stall if base.read is None else min(base.read, stall)
    return httpx.Timeout(connect=base.connect, read=read, write=base.write, pool=base.pool)


def content_length(response: httpx.Response) -> int | None:
    """The announced length of the body as it will be read (None when encoded or absent)."""
    try:
        length = int(response.headers.get("content-length", ""))
    except ValueError:
        return None
    if response.headers.get("content-encoding", "identity") not in ("identity", ""):
        return None
    return length


class Sink:
    """A download's file: see the module docstring. It enforces the size cap, the overall
    deadline and the low-speed rule as bytes arrive."""

    def __init__(self, target: Path, on_progress: ProgressCallback | None,
                 bounds: Bounds, speed: LowSpeed) -> None:
        self.target = target
        self.on_progress = on_progress
        self.bounds = bounds
        self.max_bytes = bounds.max_bytes
        self.deadline = time.monotonic() + bounds.seconds
        self.speed = speed
        self.total: int | None = None
        self.done = 0
        self.finished = False

    def __enter__(self) -> Sink:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp_name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".part",
                                             dir=self.target.parent)
        self.out = os.fdopen(fd, "wb")
        return self

    def start(self, response: httpx.Response) -> None:
        """The answer's headers are in: check the announced size, start the speed window."""
        self.total = content_length(response)
        self.speed.restart()
        if self.total is not None and self.total > self.max_bytes:
            raise self.bounds.too_big(f"is {_mb(self.total)}, more than")

    def write(self, chunk: bytes) -> None:
        self.done += len(chunk)
        if self.done > self.max_bytes:
            raise self.bounds.too_big("passed")
        self.check_deadline()
        self.speed.add(len(chunk))
        self.out.write(chunk)
        if self.on_progress is not None:
            self.on_progress(self.done, self.total)

    def check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise overall_timeout(self.bounds)

    def finish(self) -> None:
        """Flush, fsync and rename into place (blocking: the async client runs it in a
        worker thread, so a slow disk never stalls the poller's loop)."""
        if self.total is not None and self.done != self.total:
            raise APIConnectionError(f"download ended early ({self.done} of {self.total} bytes)")
        self.out.flush()
        os.fsync(self.out.fileno())
        self.out.close()
        os.replace(self.tmp_name, self.target)
        self.finished = True

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None and not self.finished:
                self.finish()
        finally:
            self.out.close()
            Path(self.tmp_name).unlink(missing_ok=True)


def overall_timeout(bounds: Bounds | None = None) -> APITimeoutError:
    bounds = bounds or VIDEO
    if bounds.time_setting:
        return APITimeoutError(f"the download of {bounds.what} took longer than "
                               f"{bounds.time_setting}; it was stopped (job.download() "
                               "tries again)")
    return APITimeoutError(f"the download of {bounds.what} took longer than "
                           f"{bounds.seconds:g} s; it was stopped")


#: The messages' defaults (a video of the user's settings; the numbers are the client's).
VIDEO = Bounds(256 * 1024 * 1024, 600.0)
