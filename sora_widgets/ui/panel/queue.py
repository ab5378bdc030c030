"""The panel's queue, right under the form: the running takes, newest first.

Progress, time left and the status words, and "stop tracking" (``Job.cancel``: the relay
cannot cancel a paid job; ``%sora resume`` follows it again). The items are job fields
only: never a key; ``static/panel.js`` puts every string into the DOM as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sora_widgets.core.lifecycle import Phase
from sora_widgets.engine.job import Job
from sora_widgets.ui.render import phase_words

__all__ = ["queue_items"]


def queue_items(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """The running takes among ``jobs`` (newest first) as the queue's items: not done, and
    followed here (tracked, or its POST on its way: the poller picks it up after that)."""
    return [{"id": job.local_id, "prompt": job.prompt or "(image only)",
             "status": str(job.status), "progress": int(job.progress),
             "words": phase_words(job)}     # elapsed, then time left
            for job in jobs
            if not job.done and (job.tracking or job.phase == Phase.SUBMITTING)]
