"""Remix and extend: a new paid job made from a finished one on the relay that made it.

Where the catalogue says the parent's style and model have the endpoint (the ``openai``
style: ``POST /v1/videos/{id}/remix``, ``POST /v1/videos/extensions``), the follow-up is a
request like any other (:meth:`VideoRequest.follow_up`): quoted, budgeted, confirmed and
claimed in ``Studio.submit``'s one journal transaction, its parent recorded for lineage,
priced by the catalogue (an extension at its own length). Where there is none, the error
says so before anything is sent and names ``continue_with`` (the last frame), which works
on every relay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sora_widgets.core.catalog import catalogue
from sora_widgets.core.errors import SoraError, ValidationError
from sora_widgets.core.lifecycle import Status
from sora_widgets.core.models import EXTEND, REMIX, VideoRequest
from sora_widgets.core.settings import settings

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job
    from sora_widgets.studio.studio import Studio

__all__ = ["follow_up_request"]


def follow_up_request(studio: Studio, parent: Job, operation: str, prompt: str,
                      seconds: int | None = None) -> VideoRequest:
    """The request of a remix / an extension of ``parent``, or an error before anything
    is sent: no such endpoint for its style and model, a parent not finished, another relay."""
    if operation not in (REMIX, EXTEND):
        raise ValidationError(f"operation: {REMIX} or {EXTEND}", field="operation")
    request = parent.request
    entry = catalogue().entry(request.style, request.model)
    if not getattr(entry, operation):
        raise ValidationError(
            f"{operation}: {request.model} on the {request.style} style has no {operation} "
            f"endpoint; job.continue_with(\"…\") (a new clip from the last frame) is the way "
            "on this relay; nothing was sent", field=operation)
    if parent.status != Status.COMPLETED or parent.id is None:
        raise SoraError(f"job {parent.id or parent.local_id} is {parent.status}: only a "
                        f"completed clip can be {operation}ed; nothing was sent")
    backend = studio.backend(settings())
    if parent.backend.base_url != backend.base_url or parent.emulator != backend.emulator:
        raise ValidationError(f"{operation}: job {parent.id} was made on another relay than "
                              "the one in force now; switch back to it (SORA_BASE_URL, "
                              "SORA_API_KEY); nothing was sent", field=operation)
    if operation == EXTEND:
        if seconds is None:
            raise ValidationError("seconds: an extension needs seconds=…", field="seconds")
        if seconds not in entry.seconds:
            raise ValidationError(f"seconds: {request.model} on the {request.style} style "
                                  f"extends by {', '.join(map(str, entry.seconds))} s, not "
                                  f"{seconds}; nothing was sent", field="seconds")
    return request.follow_up(operation, parent.id, prompt,
                             seconds if operation == EXTEND else None)
