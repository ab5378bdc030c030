"""The pure step from one relay answer to the next job state (no I/O, no clock but a default).

Kept beside :mod:`sora_widgets.core.lifecycle` because it is the other half of it: the
lifecycle says what a state *means*, this says which state a relay answer *leads to*. The
engine's poller calls it for every submit answer and every poll; the hypothesis state
machine calls it directly.
"""

from __future__ import annotations

import time
from typing import Any

from sora_widgets.core.lifecycle import RELAY_FAILED, JobState, Phase, RelayStatus
from sora_widgets.core.models import TaskSnapshot

__all__ = ["RELAY_WORDS", "apply_snapshot", "unrecognised_notice"]

#: The words of the notice for a relay status this package does not know (UIs match it).
RELAY_WORDS = "not a status this package knows"


def apply_snapshot(state: JobState, snapshot: TaskSnapshot) -> JobState:
    """The state after a relay answer. An unrecognised word is kept raw, never mapped."""
    relay = snapshot.relay_status
    changes: dict[str, Any] = {"relay_word": snapshot.status}
    if snapshot.progress is not None:
        changes["progress"] = snapshot.progress
    if snapshot.video_url:
        changes["video_url"] = snapshot.video_url
    if snapshot.error is not None:
        changes["error_message"] = snapshot.error.message
        changes["error_code"] = snapshot.error.code
    if relay is not None:
        changes["relay_status"] = relay
    if relay in (RelayStatus.COMPLETED, RelayStatus.FAILED) and state.completed_at is None:
        changes["completed_at"] = snapshot.completed_at or time.time()
    if relay is RelayStatus.COMPLETED:
        changes["phase"] = Phase.SETTLED if state.local_path else Phase.SAVING
        changes["progress"] = 100
    elif relay is RelayStatus.FAILED:
        changes["phase"] = Phase.SETTLED
        changes["error_type"] = RELAY_FAILED
        changes.setdefault("error_message", "the relay reported a failure without a message")
    return state.evolve(**changes)


def unrecognised_notice(snapshot: TaskSnapshot) -> str | None:
    """What to tell the user about an answer whose status word is not one we know."""
    if snapshot.relay_status is None:
        word = snapshot.status or "(no status)"
        return f"the relay says {word[:40]!r}, {RELAY_WORDS}; still polling"
    return None
