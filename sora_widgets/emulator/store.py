"""The task table and the request counters, behind one lock, optionally on disk.

Request handling must stay cheap with hundreds of concurrent connections, so the lock
only guards dict updates; drawing a schedule and writing its file happen outside it.
With a ``state_dir`` each task is one small JSON file (written atomically before the
submit is answered), and a new store on the same directory reloads them: the embedded
emulator's jobs survive a kernel restart and keep running by wall clock. A task's
first-frame image (already decoded and re-encoded as a JPEG at submit) is kept in memory
and, with a ``state_dir``, in ``frames/{id}.jpg``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import EmulatorConfig
from .pricing import cost_of
from .tasks import Task, VideoRequest, draw_task, new_task_id

__all__ = ["TaskStore"]

logger = logging.getLogger("sora_widgets.emulator")
_SAFE_ID = re.compile(r"(v|video|job)_[0-9a-f]{1,64}")
#: The file name suffix of a task's last-frame image.
_LAST = ".last"


@dataclass
class _TaskCounters:
    gets: int = 0
    get_times: list[float] = field(default_factory=list)


class TaskStore:
    """Tasks by id, plus what the stats endpoint reports."""

    def __init__(self, *, seed: int | None, state_dir: Path | None) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._tasks: dict[str, Task] = {}
        self._counters: dict[str, _TaskCounters] = {}
        self._frames: dict[str, bytes] = {}
        self._dir = None if state_dir is None else Path(state_dir) / "tasks"
        self._frames_dir = None if state_dir is None else Path(state_dir) / "frames"
        self._reset_counters()
        if self._dir is not None:
            self._dir.mkdir(parents=True, exist_ok=True)
            self._load()

    def _reset_counters(self) -> None:
        self.posts = 0
        self.gets = 0
        self.tasks_created = 0
        self.video_downloads = 0
        self.faults: Counter[str] = Counter()
        self._counters = {task_id: _TaskCounters() for task_id in self._tasks}

    # --- tasks -----------------------------------------------------------------------------

    def create(self, request: VideoRequest, config: EmulatorConfig) -> Task:
        """Draw, persist and register a new task (this is the "charge")."""
        with self._lock:
            task_rng = random.Random(self._rng.getrandbits(64))
        task = draw_task(
            task_rng,
            request,
            task_id=new_task_id(request.style),
            now=time.time(),
            time_scale=config.time_scale,
            queue_seconds=config.queue_seconds,
            run_seconds=config.run_seconds,
            stall_probability=config.stall_probability,
            failure_rate=config.failure_rate,
            content_ttl_seconds=config.content_ttl_seconds,
            cost_usd=cost_of(request, config),
        )
        if request.first_frame is not None:
            self._save_frame(task.id, request.first_frame)
        if request.last_frame is not None:
            self._save_frame(task.id + _LAST, request.last_frame)
        self._save(task)
        with self._lock:
            self._tasks[task.id] = task
            self._counters[task.id] = _TaskCounters()
            self.tasks_created += 1
        return task

    def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def first_frame(self, task_id: str, *, last: bool = False) -> bytes | None:
        """The task's first-frame image (JPEG bytes; ``last``: its last-frame one), or None."""
        if not _SAFE_ID.fullmatch(task_id):
            return None
        name = task_id + (_LAST if last else "")
        data = self._frames.get(name)
        if data is None and self._frames_dir is not None:
            try:
                data = (self._frames_dir / f"{name}.jpg").read_bytes()
            except OSError:
                return None
            self._frames[name] = data
        return data

    # --- counters --------------------------------------------------------------------------

    def count_post(self) -> None:
        with self._lock:
            self.posts += 1

    def count_get(self, task_id: str) -> None:
        now = time.time()
        with self._lock:
            self.gets += 1
            counters = self._counters.get(task_id)
            if counters is not None:
                counters.gets += 1
                counters.get_times.append(now)

    def count_download(self) -> None:
        with self._lock:
            self.video_downloads += 1

    def count_fault(self, name: str) -> None:
        with self._lock:
            self.faults[name] += 1

    def reset_stats(self) -> None:
        """Zero every counter; the tasks themselves stay."""
        with self._lock:
            self._reset_counters()

    def stats(self) -> dict[str, Any]:
        """The JSON of ``GET /_emulator/stats``."""
        now = time.time()
        with self._lock:
            tasks = list(self._tasks.values())
            counters = {t.id: self._counters.get(t.id, _TaskCounters()) for t in tasks}
            result: dict[str, Any] = {
                "posts": self.posts,
                "tasks_created": self.tasks_created,
                "gets": self.gets,
                "video_downloads": self.video_downloads,
                "faults_injected": dict(self.faults),
            }
            result["tasks"] = {
                t.id: {
                    "gets": counters[t.id].gets,
                    "get_times": list(counters[t.id].get_times),
                    **_task_stats(t, now),
                }
                for t in tasks
            }
        return result

    # --- persistence -----------------------------------------------------------------------

    def _save(self, task: Task) -> None:
        if self._dir is None:
            return
        data = json.dumps(task.to_json()).encode()
        fd, tmp = tempfile.mkstemp(dir=self._dir, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, self._dir / f"{task.id}.json")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _save_frame(self, task_id: str, data: bytes) -> None:
        self._frames[task_id] = data
        if self._frames_dir is None:
            return
        self._frames_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._frames_dir, prefix=".tmp-", suffix=".jpg")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, self._frames_dir / f"{task_id}.jpg")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _load(self) -> None:
        assert self._dir is not None
        for path in sorted(self._dir.glob("*.json")):
            if not _SAFE_ID.fullmatch(path.stem):
                continue
            try:
                task = Task.from_json(json.loads(path.read_text()))
            except (OSError, ValueError, TypeError, KeyError):
                logger.warning("skipping unreadable task file %s", path.name)
                continue
            self._tasks[task.id] = task
            self._counters[task.id] = _TaskCounters()
        if self._tasks:
            logger.info("reloaded %d task(s) from %s", len(self._tasks), self._dir)


def _task_stats(task: Task, now: float) -> dict[str, Any]:
    state = task.state_at(now)
    return {
        "status": state.status,
        "progress": state.progress,
        "created_at": task.created_at,
        "started_at": task.started_at,
        "completed_at": task.completed_at if state.final else None,
        "prompt": task.prompt,
        "aspect_ratio": task.aspect_ratio,
    }
