"""The emulator's state and the JSON shapes it answers with, independent of HTTP.

One ``Engine`` per running emulator: the live config, the task store, the fault plan, the
link signer and the video cache. The request handler reads from it; the Python API
(``RunningEmulator``) drives it directly.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any

from .config import EmulatorConfig
from .faults import FaultPlan
from .links import LinkSigner
from .store import TaskStore
from .tasks import Task
from .video import VideoCache, render_mp4

__all__ = ["Engine"]


class Engine:
    """Everything a request needs, shared by all handler threads."""

    def __init__(self, config: EmulatorConfig) -> None:
        config.validate()
        self.config = config
        self.store = TaskStore(seed=config.seed, state_dir=config.state_dir)
        self.faults = FaultPlan(config.seed)
        self.links = LinkSigner(config.state_dir)
        self.videos = VideoCache()
        #: Set when the emulator stops: held requests give up at once.
        self.stopping = threading.Event()

    def stats(self) -> dict[str, Any]:
        """The JSON of ``GET /_emulator/stats``."""
        stats = self.store.stats()
        stats["video_renders"] = self.videos.renders
        stats["video_render_seconds"] = round(self.videos.render_seconds, 4)
        stats["pending_faults"] = self.faults.pending()
        return stats

    # --- answers ---------------------------------------------------------------------------

    def submit_json(self, task: Task) -> dict[str, Any]:
        """The immediate answer to a submit (always "queued", as the relay answers)."""
        data: dict[str, Any] = {
            "id": task.id,
            "task_id": task.id,
            "object": "video",
            "status": "queued",
            "progress": 0,
            "video_url": None,
            "model": task.model,
        }
        return self._apply_progress_mode(data, final=False)

    def task_json(self, task: Task, base_url: str) -> dict[str, Any]:
        """The answer to ``GET /v1/videos/{id}`` right now."""
        state = task.state_at(time.time())
        data: dict[str, Any] = {
            "id": task.id,
            "task_id": task.id,
            "object": "video",
            "status": state.status,
            "progress": state.progress,
            "video_url": None,
            "model": task.model,
            "aspect_ratio": task.aspect_ratio,
            "duration": task.duration,
            "created_at": int(task.created_at),
        }
        if state.final:
            data["completed_at"] = int(task.completed_at)
        if state.status == "completed":
            query = self.links.query(task.id, self.config.url_ttl_seconds)
            data["video_url"] = f"{base_url}/videos/{task.id}.mp4?{query}"
        elif state.status == "failed":
            data["error"] = {"message": task.error_message, "code": task.error_code}
        return self._apply_progress_mode(data, final=state.final)

    def _apply_progress_mode(self, data: dict[str, Any], *, final: bool) -> dict[str, Any]:
        mode = self.config.progress_mode
        if mode == "missing":
            del data["progress"]
        elif mode == "string":
            data["progress"] = str(data["progress"])
        elif mode == "stuck" and not final:
            data["progress"] = 0
        return data

    # --- videos ----------------------------------------------------------------------------

    def video_bytes(self, task: Task) -> bytes:
        """The task's mp4, rendered on first use (one per aspect ratio if ``shared_video``)."""
        config = self.config
        scale = config.video_scale
        if config.shared_video:
            key: tuple[str, ...] = ("shared", task.aspect_ratio, str(scale))
            render = functools.partial(
                render_mp4, seed=f"shared:{task.aspect_ratio}", aspect_ratio=task.aspect_ratio,
                prompt="a video shared by every task (shared_video)", scale=scale,
                caption="sora-widgets emulator",
            )
        else:
            key = (task.id, str(scale))
            caption = f"sora-widgets emulator · {task.id}"
            if task.image:
                caption += f" · image x{len(task.image)}"
            render = functools.partial(
                render_mp4, seed=task.id, prompt=task.prompt, aspect_ratio=task.aspect_ratio,
                scale=scale, caption=caption,
            )
        return self.videos.get(key, render, max_entries=config.video_cache_size)
