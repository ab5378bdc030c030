"""What a handle's state means outside the engine: the exception ``wait()`` raises for a
rejected submit, and the state that display-only traits (``Job(..., status="failed")``)
stand for. Pure functions, apart from the handle so that it stays about observing a job.
"""

from __future__ import annotations

from typing import Any

from sora_widgets.core import errors
from sora_widgets.core.errors import SoraError
from sora_widgets.core.lifecycle import Charge, JobState, state_for_status

__all__ = ["rejection", "state_from_traits"]

_STATE_TRAITS = {"id": "task_id", "progress": "progress", "video_url": "video_url",
                 "error": "error_message", "error_code": "error_code",
                 "completed_at": "completed_at"}


def state_from_traits(traits: dict[str, Any]) -> JobState:
    """The state that a handle's status traits describe (``Job(..., status="failed")``)."""
    fields = {name: traits[trait] for trait, name in _STATE_TRAITS.items() if trait in traits}
    state = state_for_status(str(traits["status"]), task_id=fields.pop("task_id", None),
                             error_code=fields.pop("error_code", None),
                             local_path=str(traits["local_path"]) if traits.get(
                                 "local_path") else None, **fields)
    return state.evolve(charge=Charge(traits.get("charge", Charge.NONE)))


def rejection(state: JobState) -> SoraError:
    """The exception a rejected submit raises from ``wait()``: the class of its kind."""
    return errors.error_of(state.error_type, state.error_message or
                           "the relay rejected the submit", code=state.error_code)
