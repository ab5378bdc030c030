"""The panel's queue, right under the form, and its keyboard.

The running takes, newest first: progress, time left and the status words, and "stop
tracking" (``Job.cancel``: the relay cannot cancel a paid job; ``%sora resume`` follows it
again). One small anywidget (``static/panel.js``) draws it; it also carries the keyboard:
Ctrl/Cmd+Enter in the prompt generates, Escape dismisses a confirmation. Every string goes
into the DOM as text. The items are job fields only: never a key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import anywidget
import traitlets

from sora_widgets.core.lifecycle import Phase
from sora_widgets.engine.job import Job
from sora_widgets.ui.compare import STATIC, front_end
from sora_widgets.ui.render import phase_words

__all__ = ["QueueView", "queue_items"]

log = logging.getLogger("sora_widgets.ui.panel.queue")


def queue_items(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """The running takes among ``jobs`` (newest first) as the view's items: not done, and
    followed here (tracked, or its POST on its way: the poller picks it up after that)."""
    return [{"id": job.local_id, "prompt": job.prompt or "(image only)",
             "status": job.status, "progress": int(job.progress),
             "words": phase_words(job)}
            for job in jobs
            if not job.done and (job.tracking or job.phase == Phase.SUBMITTING)]


class QueueView(anywidget.AnyWidget):
    """The queue strip and the keyboard; the panel answers its messages."""

    _esm = front_end("panel.js")
    _css = (STATIC / "panel.css").read_text("utf-8")

    items = traitlets.List(traitlets.Dict()).tag(sync=True)
    #: A confirmation is shown (Escape dismisses it).
    confirming = traitlets.Bool(False).tag(sync=True)

    def __init__(self, *, on_generate: Callable[[str | None], None],
                 on_dismiss: Callable[[], None],
                 on_cancel: Callable[[str], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_generate = on_generate
        self._on_dismiss = on_dismiss
        self._on_cancel = on_cancel
        self.on_msg(self._on_msg)

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        action = content.get("action")
        try:
            if action == "generate":
                prompt = content.get("prompt")
                self._on_generate(prompt if isinstance(prompt, str) else None)
            elif action == "dismiss":
                self._on_dismiss()
            elif action == "cancel":
                self._on_cancel(str(content.get("id", "")))
        except Exception:     # a kernel-side bug must not break the view
            log.exception("panel action %r failed", action)
