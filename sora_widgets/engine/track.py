"""The poller's one tracking record per job (``Track``), and the modes a record is in.

Everything the engine must remember about a tracked job lives here, owned by the poller's
loop thread: the handle (``Job``) is only the observable face it updates through the
events thread. Slots keep the record to one collector object (a process may track
thousands of jobs).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from sora_widgets.core.lifecycle import JobState

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job
    from sora_widgets.engine.schedule import PollSchedule

__all__ = ["Mode", "Track"]


class Mode(str, Enum):
    """What a record's next step does."""

    SUBMIT = "submit"     # send the POST (once)
    POLL = "poll"         # GET the task
    SAVE = "save"         # download the video
    WATCH = "watch"       # follow the journal while another live process owns the row


@dataclass(eq=False, slots=True)
class Track:
    """The poller's view of one tracked job (loop thread only, except ``post_started``,
    which the poller reads after its thread died)."""

    job: Job
    state: JobState
    mode: Mode
    #: The POST left (or may have): it must never be sent again.
    post_started: bool = False
    #: Only a copy of the video is saved here (``Poller.fetch``: a teammate's finished
    #: job); the row stays its owner's.
    borrowed: bool = False
    schedule: PollSchedule | None = None
    seq: int = 0
    busy: bool = False
    #: The running step (held here: the event loop keeps only a weak reference).
    task: asyncio.Task[None] | None = None
    failures: int = 0
    hint: float | None = None
    detach_after_submit: bool = False
    fetch_url: str | None = None
    expires_at: float | None = None     # when fetch_url stops working (relay's expires_at)
    last_progress: int | None = None    # as the relay sent it (None: it sent none)
    save_attempts: int = 0
    refusals: int = 0

    @property
    def owned(self) -> bool:
        """This process works on the row (its lease is ours to renew); a watched or
        borrowed row's lease belongs to the process that owns it."""
        return self.mode is not Mode.WATCH and not self.borrowed
