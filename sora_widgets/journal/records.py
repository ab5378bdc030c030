"""What the journal holds and hands back: one row (:class:`JobRecord`), what a claim
decided (:class:`Claim`), money totals (:class:`Spend`).

Rows read back are data, not input: a teammate (everyone shares one database role) can
write anything into a shared journal, so a row is never re-validated into an exception
(its request is read leniently, see :meth:`VideoRequest.from_json`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from sora_widgets.core.errors import kind_named
from sora_widgets.core.lifecycle import Charge, JobState, Phase, RelayStatus
from sora_widgets.core.models import VideoRequest
from sora_widgets.core.money import billed_figure, charged_price

__all__ = ["COLUMNS", "INTERRUPTED", "NOT_SENT", "SCHEMA_VERSION", "Claim", "Cursor",
           "JobRecord", "Spend", "request_body"]

#: 3: ``error_type`` holds an error kind (``ErrorKind``), not a class name; 4: ``billed_usd``.
SCHEMA_VERSION = 4
#: Every column of ``jobs`` (a backend's DDL must create exactly these).
COLUMNS = (
    "local_id", "task_id", "fingerprint", "request", "backend", "emulator", "status",
    "phase", "relay_status", "relay_word", "progress", "video_url", "error_message",
    "error_code", "error_type", "price_usd", "charge", "local_path", "session", "owner",
    "pid", "heartbeat_at", "created_at", "updated_at", "completed_at", "parent_id",
    "starred", "note", "user_name", "host", "billed_usd",
)
_PHASES = frozenset(p.value for p in Phase)
_CHARGES = frozenset(c.value for c in Charge)
_RELAY = frozenset(s.value for s in RelayStatus)
INTERRUPTED = ("the session ended while this job was being submitted: it may have been "
               "charged, but its task id was never received")
#: A row this process wrote but never sent (its claim's commit was not confirmed).
NOT_SENT = ("the journal did not confirm this submit's commit, so it was never sent: "
            "nothing was charged")


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...


def request_body(text: object) -> dict[str, Any]:
    """A row's request column as a JSON object ({} when it is not one: data, not input)."""
    try:
        body = json.loads(text) if isinstance(text, (str, bytes)) else None
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {}


@dataclass(frozen=True)
class JobRecord:
    """One journal row."""

    local_id: str
    task_id: str | None
    fingerprint: str
    request: str
    backend: str
    emulator: bool
    status: str
    phase: str
    relay_status: str | None
    relay_word: str | None
    progress: int
    video_url: str | None
    error_message: str | None
    error_code: str | None
    error_type: str | None
    price_usd: float
    charge: str
    local_path: str | None
    session: str
    owner: str
    pid: int
    heartbeat_at: float | None
    created_at: float
    updated_at: float
    completed_at: float | None
    parent_id: str | None
    starred: bool
    note: str | None
    user_name: str | None
    host: str | None
    #: What the relay says it charged (None until it says): the cost once known.
    billed_usd: float | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> JobRecord:
        values = {name: row[name] for name in COLUMNS}
        values["emulator"] = bool(values["emulator"])
        values["starred"] = bool(values["starred"])
        values["price_usd"] = float(values["price_usd"])
        values["billed_usd"] = billed_figure(values["billed_usd"])
        kind = kind_named(values["error_type"])     # 0.2 wrote class names (still may)
        values["error_type"] = kind.value if kind is not None else None
        # A word no version ever wrote (a hand-edited row) is read pessimistically: a phase
        # as settled (nothing is done with it), a charge as maybe (it counts as spent).
        if values["phase"] not in _PHASES:
            values["phase"] = Phase.SETTLED.value
        if values["charge"] not in _CHARGES:
            values["charge"] = Charge.MAYBE.value
        if values["relay_status"] is not None and values["relay_status"] not in _RELAY:
            values["relay_status"] = None
        if not isinstance(values["progress"], int):
            values["progress"] = 0
        return cls(**values)

    @property
    def state(self) -> JobState:
        return JobState.from_columns(self.__dict__)

    @property
    def video_request(self) -> VideoRequest:
        """The row's request, read as data (never refused: a hostile row still shows)."""
        return VideoRequest.from_json(request_body(self.request))

    @property
    def prompt(self) -> str:
        """The request's prompt as stored ('' when there is none)."""
        prompt = request_body(self.request).get("prompt")
        return prompt if isinstance(prompt, str) else ""

    @property
    def cost_usd(self) -> float:
        """The billed figure once the relay reported one, else the quote."""
        return self.state.cost(charged_price(self.price_usd, self.billed_usd))


@dataclass(frozen=True)
class Spend:
    """Money: charged (accepted by the relay), maybe (outcome unknown), pending (submitting)."""

    charged_usd: float
    maybe_usd: float
    pending_usd: float
    jobs: int

    @property
    def worst_case_usd(self) -> float:
        return round(self.charged_usd + self.maybe_usd + self.pending_usd, 2)


@dataclass(frozen=True)
class Claim:
    """What :meth:`Journal.claim` decided, atomically: reuse these, submit those."""

    reused: list[JobRecord] = field(default_factory=list)
    created: list[JobRecord] = field(default_factory=list)


assert tuple(f.name for f in fields(JobRecord)) == COLUMNS, (
    "JobRecord and COLUMNS must list the same columns in order")
