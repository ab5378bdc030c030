"""The job lifecycle, in one place: the relay's status, the local phase and the charge.

Three things are kept apart, because mixing them once lost money:

* the **relay status** (``RelayStatus``): what the relay last said about the task, one of
  queued / in_progress / completed / failed, mapped from the relay's word (gateways use
  synonyms). A word never seen before is *not* mapped: it is kept raw (``relay_word``), the
  job keeps polling, and the UIs surface it. It is never confused with our "unknown".
* the **local phase** (``Phase``): what this package still has to do: submitting (the POST
  is out, no task id yet), polling, saving (completed, video not on disk), settled
  (nothing left to do), and, for a handle only, detached (this process stopped tracking a
  job that still needs the relay; the journal keeps it for ``resume()``).
* the **charge** (``Charge``): none, charged (the relay accepted the submit) or maybe (the
  submit may have reached the relay but its answer was lost).

The public ``job.status`` words (``Status``) are *derived* from those by :func:`status_of`,
and so are "done", "needs the relay", "settled" and the cost. The journal stores the
derived status too (for queries), always written through :func:`status_of`; its SQL
predicates are built here from the same sets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from sora_widgets.core.errors import ErrorKind

__all__ = [
    "ACCEPTED_ERROR_TYPES",
    "DONE_STATUSES",
    "SQL_NEEDS_RELAY",
    "SQL_NOT_REJECTED",
    "SQL_PENDING",
    "TERMINAL_ERROR_STATUSES",
    "Charge",
    "JobState",
    "Phase",
    "RelayStatus",
    "Status",
    "relay_status_of",
    "sql_in",
    "status_of",
    "submit_charge",
]


class _Word(str, Enum):
    """An enum whose members are their own words (they compare equal to plain strings)."""

    def __str__(self) -> str:
        return str(self.value)


class RelayStatus(_Word):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"


class Phase(_Word):
    SUBMITTING = "submitting"
    POLLING = "polling"
    SAVING = "saving"
    SETTLED = "settled"
    DETACHED = "detached"   # a handle only: the journal keeps the phase the job needs


class Charge(_Word):
    NONE = "none"
    CHARGED = "charged"
    MAYBE = "maybe"


class Status(_Word):
    """The public ``job.status`` words (DESIGN's public API)."""

    SUBMITTING = "submitting"
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    UNKNOWN = "unknown"      # the *submit's* outcome is unknown: it may have been charged


#: Relay words and gateway synonyms. Anything else is unrecognised and kept raw.
_SYNONYMS: dict[str, RelayStatus] = {
    **dict.fromkeys(("queued", "pending", "submitted", "waiting", "not_start"),
                    RelayStatus.QUEUED),
    **dict.fromkeys(("in_progress", "processing", "running", "generating", "in-progress"),
                    RelayStatus.IN_PROGRESS),
    **dict.fromkeys(("completed", "succeeded", "success", "finished", "done"),
                    RelayStatus.COMPLETED),
    **dict.fromkeys(("failed", "failure", "error", "cancelled", "canceled", "expired"),
                    RelayStatus.FAILED),
}

#: The error kind recorded for a submit whose answer was lost (the only "unknown" outcome).
UNKNOWN_OUTCOME = ErrorKind.UNKNOWN_OUTCOME.value
#: The error kind of a job the relay ran and failed.
RELAY_FAILED = ErrorKind.RELAY_FAILED.value
#: Error types that come with an accepted submit (the others are rejections: nothing paid).
ACCEPTED_ERROR_TYPES = frozenset({RELAY_FAILED, UNKNOWN_OUTCOME})

NEEDS_RELAY_PHASES = (Phase.POLLING, Phase.SAVING)
DONE_STATUSES = (Status.COMPLETED, Status.FAILED, Status.UNKNOWN)
TERMINAL_ERROR_STATUSES = (Status.FAILED, Status.UNKNOWN)


def relay_status_of(word: object) -> RelayStatus | None:
    """The status a relay word means, or None for a word never seen before (or none)."""
    if not isinstance(word, str):
        return None
    return _SYNONYMS.get(word.strip().lower())


@dataclass(frozen=True)
class JobState:
    """The durable part of a job: what the journal stores and a handle mirrors.

    Every change is a new ``JobState`` (``evolve``), written to the journal first and then
    applied to the handle, so the two can only differ by the journal being ahead.
    """

    phase: Phase = Phase.SUBMITTING
    task_id: str | None = None
    relay_status: RelayStatus | None = None
    relay_word: str | None = None
    charge: Charge = Charge.NONE
    progress: int = 0
    video_url: str | None = None
    error_message: str | None = None
    error_code: str | None = None
    error_type: str | None = None
    local_path: str | None = None
    completed_at: float | None = None

    def evolve(self, **changes: Any) -> JobState:
        return replace(self, **changes)

    @property
    def status(self) -> Status:
        return status_of(self.phase, self.relay_status, self.error_type)

    @property
    def done(self) -> bool:
        """The relay will do nothing more (completed, failed, rejected or outcome unknown)."""
        return self.status in DONE_STATUSES

    @property
    def needs_relay(self) -> bool:
        """Polling still to do, or a completed video still to save."""
        return self.task_id is not None and self.phase in NEEDS_RELAY_PHASES

    @property
    def settled(self) -> bool:
        return self.phase is Phase.SETTLED

    def cost(self, price_usd: float) -> float:
        """What this job cost, or may have cost ('maybe' counts: money rules are pessimistic)."""
        return price_usd if self.charge in (Charge.CHARGED, Charge.MAYBE) else 0.0

    def changes_from(self, other: JobState) -> dict[str, Any]:
        """The fields that differ from ``other`` (what a journal update must write)."""
        return {name: value for name, value in self.as_columns().items()
                if getattr(other, name) != value}

    def as_columns(self) -> dict[str, Any]:
        return {
            "phase": self.phase.value, "task_id": self.task_id,
            "relay_status": self.relay_status.value if self.relay_status else None,
            "relay_word": self.relay_word, "charge": self.charge.value,
            "progress": self.progress, "video_url": self.video_url,
            "error_message": self.error_message, "error_code": self.error_code,
            "error_type": self.error_type, "local_path": self.local_path,
            "completed_at": self.completed_at,
        }

    @classmethod
    def from_columns(cls, row: Any) -> JobState:
        relay = row["relay_status"]
        return cls(
            phase=Phase(row["phase"]), task_id=row["task_id"],
            relay_status=RelayStatus(relay) if relay else None, relay_word=row["relay_word"],
            charge=Charge(row["charge"]), progress=int(row["progress"] or 0),
            video_url=row["video_url"], error_message=row["error_message"],
            error_code=row["error_code"], error_type=row["error_type"],
            local_path=row["local_path"], completed_at=row["completed_at"])


def status_of(phase: Phase, relay_status: RelayStatus | None, error_type: str | None) -> Status:
    """The public status word: the one derivation every UI and the journal share."""
    if phase is Phase.SUBMITTING:
        return Status.SUBMITTING
    if error_type == UNKNOWN_OUTCOME:
        return Status.UNKNOWN
    if relay_status is not None:
        return Status(relay_status.value)
    if error_type is not None:      # rejected at submit (or refused locally): nothing paid
        return Status.FAILED
    return Status.QUEUED            # accepted; the relay has not said a word we know yet


def submit_charge(*, emulator: bool, answered: bool) -> Charge:
    """What a POST that may have left costs: charged once the relay accepted it, maybe when
    its answer was lost (money rules are pessimistic); the emulator never charges."""
    if emulator:
        return Charge.NONE
    return Charge.CHARGED if answered else Charge.MAYBE


#: The error codes of a rejected submit, and the error kind of each one.
REJECTED_BY_CODE = {"400": ErrorKind.BAD_REQUEST.value, "401": ErrorKind.AUTHENTICATION.value,
                    "403": ErrorKind.PERMISSION_DENIED.value, "404": ErrorKind.NOT_FOUND.value,
                    "429": ErrorKind.RATE_LIMITED.value}


def state_for_status(status: str, *, task_id: str | None = None,
                     local_path: str | None = None, error_code: str | None = None,
                     **fields: Any) -> JobState:
    """The state a public status word stands for (a journal of 0.1, which kept only that
    word, and handles built for display). The inverse of :func:`status_of`."""
    phase, relay, error_type = Phase.POLLING, None, None
    if status == Status.SUBMITTING:
        phase = Phase.SUBMITTING
    elif status == Status.UNKNOWN:
        phase, error_type = Phase.SETTLED, UNKNOWN_OUTCOME
    elif status == Status.FAILED and task_id is None:
        phase, error_type = Phase.SETTLED, REJECTED_BY_CODE.get(str(error_code),
                                                               ErrorKind.API.value)
    elif status == Status.FAILED:
        phase, relay, error_type = Phase.SETTLED, RelayStatus.FAILED, RELAY_FAILED
    elif status == Status.COMPLETED:
        phase = Phase.SETTLED if local_path else Phase.SAVING
        relay = RelayStatus.COMPLETED
    else:
        relay = {s.value: s for s in RelayStatus}.get(status)
    return JobState(phase=phase, task_id=task_id, relay_status=relay, relay_word=status,
                    error_type=error_type, local_path=local_path, error_code=error_code,
                    **fields)


def sql_in(column: str, values: tuple[Enum, ...]) -> str:
    """``column IN ('a', 'b')`` from enum members (constants only: no user input)."""
    return f"{column} IN ({', '.join(repr(str(v.value)) for v in values)})"


#: Journal rows that still need the relay (the resume() / unfinished() predicate).
SQL_NEEDS_RELAY = f"task_id IS NOT NULL AND {sql_in('phase', NEEDS_RELAY_PHASES)}"
#: Rows a re-run may reuse: all but submits refused before any charge (re-sending is free).
SQL_NOT_REJECTED = (f"NOT (task_id IS NULL AND charge = '{Charge.NONE.value}'"
                    f" AND phase = '{Phase.SETTLED.value}')")
#: Rows whose POST may be in flight right now (money reserved, outcome not known yet).
SQL_PENDING = f"phase = '{Phase.SUBMITTING.value}'"
