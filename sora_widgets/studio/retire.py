"""Model retirement at the money gate: a paid relay is never sent a model past the day its
vendor stops serving it, and every quote within 30 days of that day says so.

Checked in the studio (not the request) because the emulator still plays a retired model
(nothing is paid; its quote says a paid relay would refuse), and because the day moves: a
request made yesterday may be refused today. ``force`` never reaches here: re-paying a dead
model is not a cache question. The catalogue file is the one way to send it again.
"""

from __future__ import annotations

from collections.abc import Sequence

from sora_widgets.core.catalog import Catalogue, catalogue
from sora_widgets.core.models import VideoRequest
from sora_widgets.core.settings import Settings

__all__ = ["retirement_notes"]


def retirement_notes(requests: Sequence[VideoRequest], current: Settings, *,
                     emulator: bool, book: Catalogue | None = None) -> tuple[str, ...]:
    """What the quote of ``requests`` says about retirements (one note per model), or a
    ValidationError, before anything is sent, when a paid relay would get a retired one
    (``book``: the catalogue this call already read)."""
    notes: dict[str, str] = {}
    book = book or catalogue(current)
    for request in requests:
        entry = book.entry(request.style, request.model)
        if not emulator:
            entry.check_alive()
        note = entry.retirement()
        if note is not None:
            if emulator and entry.retired():
                note += "; the local emulator still plays it, a paid relay is refused"
            notes.setdefault(entry.model, note)
    return tuple(notes.values())
