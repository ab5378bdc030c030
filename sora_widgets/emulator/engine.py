"""The emulator's state and the JSON shapes it answers with, independent of HTTP.

One ``Engine`` per running emulator: the live config, the task store, the fault plan, the
link signer and the video cache. The request handler reads from it; the Python API
(``RunningEmulator``) drives it directly.

Both wire styles answer from the same task: ``config.style`` (read per request) picks the
shape. artifex: ``{id, task_id, object, status, progress, video_url, model, aspect_ratio,
duration, created_at[, completed_at][, error]}``; openai: ``{id, object, model, status,
progress, created_at, completed_at, expires_at, size, seconds, remixed_from_video_id, error}``
(the SDK's ``Video``) with no link (the
mp4 is at ``GET /v1/videos/{id}/content``); router: see ``router.py``. ``status_synonyms``
and ``mystery_status`` change only the status word, in any style. ``usage.cost`` is in the
router's completed answers, and in every style's answers with ``report_cost="always"``.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from typing import Any

from .config import DEFAULT_POLL_AFTER_MS, STATUS_SYNONYMS, EmulatorConfig
from .faults import FaultPlan
from .links import LinkSigner
from .router import router_json
from .store import TaskStore
from .tasks import Task, TaskState
from .video import VideoCache, render_mp4, render_still

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
        #: ``expire_all()`` moment: openai content of tasks completed by then is gone.
        self.content_cutoff: float | None = None
        self._mystery_lock = threading.Lock()
        self._mystery_served: dict[str, int] = {}

    def expire_all(self) -> None:
        """Invalidate every artifex link issued so far, and expire the openai content of
        every task completed so far (its ``expires_at`` becomes now)."""
        self.links.expire_all()
        self.content_cutoff = time.time()

    def poll_after_ms(self) -> int | None:
        """The ``openai-poll-after-ms`` value to send now, or None for no header."""
        config = self.config
        if config.poll_hint_ms is not None:
            return config.poll_hint_ms
        if config.style == "openai":
            return round(DEFAULT_POLL_AFTER_MS * config.time_scale)
        return None

    def expires_at(self, task: Task) -> float | None:
        """When the task's openai content expires (whole seconds), or None for never."""
        if task.fails:
            return None
        expires = task.expires_at
        cutoff = self.content_cutoff
        if cutoff is not None and task.completed_at <= cutoff:
            expires = float(int(cutoff)) if expires is None else min(expires, float(int(cutoff)))
        return expires

    def stats(self) -> dict[str, Any]:
        """The JSON of ``GET /_emulator/stats``."""
        stats = self.store.stats()
        stats["video_renders"] = self.videos.renders
        stats["video_render_seconds"] = round(self.videos.render_seconds, 4)
        stats["pending_faults"] = self.faults.pending()
        return stats

    # --- answers ---------------------------------------------------------------------------

    @property
    def reports_cost(self) -> bool:
        """Whether answers in the style in force carry ``usage.cost``."""
        report = self.config.report_cost
        return report == "always" or (report == "auto" and self.config.style == "router")

    def _with_cost(self, data: dict[str, Any], task: Task) -> dict[str, Any]:
        if self.config.report_cost == "always" and task.cost_usd is not None:
            data["usage"] = {"cost": task.cost_usd}
        return data

    def submit_json(self, task: Task, base_url: str = "") -> dict[str, Any]:
        """The immediate answer to a submit (always "queued", as the relay answers)."""
        if self.config.style == "router":
            return {"id": task.id, "polling_url": f"{base_url}/api/v1/videos/{task.id}",
                    "status": self.word(task.id, "queued")}
        if self.config.style == "openai":
            return self._with_cost(self._openai_json(
                task, TaskState("queued", 0), self.word(task.id, "queued")), task)
        data: dict[str, Any] = {
            "id": task.id,
            "task_id": task.id,
            "object": "video",
            "status": self.word(task.id, "queued"),
            "progress": 0,
            "video_url": None,
            "model": task.model,
        }
        return self._with_cost(self._apply_progress_mode(data, final=False), task)

    def task_json(self, task: Task, base_url: str) -> dict[str, Any]:
        """The answer to ``GET /v1/videos/{id}`` right now (counts a mystery answer)."""
        state = task.state_at(time.time())
        status = self._mystery(task.id) or self.word(task.id, state.status)
        if self.config.style == "router":
            signed = None
            if self.config.signed_urls and state.status == "completed":
                host = (self.config.signed_url_base or base_url).rstrip("/")
                query = self.links.query(task.id, self.config.url_ttl_seconds)
                signed = f"{host}/videos/{task.id}.mp4?{query}"
            return router_json(task, status, state.status, base_url, signed, self.reports_cost)
        if self.config.style == "openai":
            return self._with_cost(self._openai_json(task, state, status), task)
        data: dict[str, Any] = {
            "id": task.id,
            "task_id": task.id,
            "object": "video",
            "status": status,
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
        return self._with_cost(self._apply_progress_mode(data, final=state.final), task)

    def _openai_json(self, task: Task, state: TaskState, status: str) -> dict[str, Any]:
        expires = self.expires_at(task) if state.status == "completed" else None
        error = None
        if state.status == "failed":
            error = {"code": task.error_code, "message": task.error_message}
        data: dict[str, Any] = {
            "id": task.id,
            "object": "video",
            "model": task.model,
            "status": status,
            "progress": state.progress,
            "created_at": int(task.created_at),
            "completed_at": int(task.completed_at) if state.final else None,
            "expires_at": None if expires is None else int(expires),
            "size": task.size or ("1280x720" if task.aspect_ratio == "16:9" else "720x1280"),
            "seconds": str(task.duration),
            "remixed_from_video_id": task.parent_id if task.kind == "remix" else None,
            "error": error,
        }
        return self._apply_progress_mode(data, final=state.final)

    def word(self, task_id: str, status: str) -> str:
        """The word answered for canonical ``status`` (``status_synonyms``)."""
        synonyms = self.config.status_synonyms
        if self.config.style == "router" and status == "queued" and (
                synonyms is False or (synonyms is not True and "queued" not in synonyms)):
            return "pending"  # the router's own word for it
        if synonyms is False:
            return status
        words = STATUS_SYNONYMS[status] if synonyms is True else synonyms.get(status)
        if not words:
            return status
        if isinstance(words, str):
            return words
        digest = hashlib.sha256(task_id.encode()).digest()
        return words[int.from_bytes(digest[:4], "big") % len(words)]

    def _mystery(self, task_id: str) -> str | None:
        """``mystery_status`` while this task has had fewer than ``mystery_answers`` of it."""
        config = self.config
        word = config.mystery_status
        if word is None:
            return None
        with self._mystery_lock:
            served = self._mystery_served.get(task_id, 0)
            if served >= config.mystery_answers:
                return None
            self._mystery_served[task_id] = served + 1
        return word

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
        """The task's mp4, rendered on first use (one per shape and length if
        ``shared_video``, without first-frame images)."""
        config = self.config
        if config.shared_video:
            shape = task.size or task.aspect_ratio
            key: tuple[str, ...] = ("shared", shape, str(task.duration), str(config.video_scale))
            render = functools.partial(
                render_mp4, seed=f"shared:{shape}", aspect_ratio=shape,
                prompt="a video shared by every task (shared_video)", scale=config.video_scale,
                caption="sora-widgets emulator", seconds=task.duration,
            )
        else:
            key = (task.id, str(config.video_scale))
            render = functools.partial(render_mp4, **self._picture(task))
        return self.videos.get(key, render, max_entries=config.video_cache_size)

    def still_bytes(self, task: Task, variant: str) -> tuple[bytes, str]:
        """A ``thumbnail`` or ``spritesheet`` of the task's video, and its media type."""
        render = functools.partial(render_still, variant=variant, **self._picture(task))
        data = self.videos.get((task.id, variant, str(self.config.video_scale)),
                               lambda: b"\0".join(_pack(render())),
                               max_entries=self.config.video_cache_size)
        kind, _, image = data.partition(b"\0")
        return image, kind.decode()

    def _picture(self, task: Task) -> dict[str, Any]:
        """What a task's clip is drawn from. A seeded task's clip comes from its seed and
        request alone (never its id): the same seed and prompt give the same bytes."""
        shape = task.size or task.aspect_ratio
        if task.seed is not None:
            seed = f"seed:{task.seed}:{task.model}:{shape}:{task.duration}"
            caption = f"sora-widgets emulator · {task.model} · seed {task.seed}"
        else:
            seed, caption = task.id, f"sora-widgets emulator · {task.id}"
        if task.parent_id is not None:
            caption += f" · {task.kind} of {task.parent_id}"
        elif task.style == "router" and task.image:
            caption += f" · frame images x{len(task.image)}"
        elif task.image:
            caption += f" · image x{len(task.image)}"
        elif task.first_frame:
            caption += " · input_reference"
        first_frame = self.store.first_frame(task.id) if task.first_frame else None
        parent = self.store.get(task.parent_id) if task.kind == "extension" and \
            task.parent_id is not None else None
        if parent is not None and parent.id != task.id:   # an extension continues its parent
            first_frame = self.still_bytes(parent, "last")[0]
        last_frame = self.store.first_frame(task.id, last=True) if task.last_frame else None
        return {"seed": seed, "prompt": task.prompt, "aspect_ratio": shape,
                "scale": self.config.video_scale, "caption": caption,
                "seconds": task.duration, "first_frame": first_frame, "last_frame": last_frame}


def _pack(still: tuple[bytes, str]) -> tuple[bytes, bytes]:
    """A still as (media type, bytes), to be kept in the video cache as one value."""
    image, kind = still
    return kind.encode(), image
