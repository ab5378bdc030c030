"""Fault injection: what can go wrong between a client and a relay, on demand.

Two sources, both consulted by the request handler:

* scripted one-shot faults (``inject``), consumed in order by the next matching requests;
* per-request probabilities on task GETs (``EmulatorConfig.get_fault_rates``), drawn from
  a seeded RNG so a benchmark run can be repeated.

This module only decides *which* fault hits a request and builds the bodies of the
answering ones; the socket-level acts (drop, reset, hang) live in the handler.

Faults: ``"500" "502" "503" "504" "429"`` (an error answer; 429/503 carry Retry-After),
``"drop"`` (read the request, close without an answer), ``"reset"`` (TCP RST),
``"slow"`` (answer normally after ``delay`` s, default 1), ``"timeout"`` (the same after
``slow_seconds``), ``"malformed"`` (200 with an HTML page or truncated JSON), and for POST
only ``"accept_then_drop"`` / ``"accept_then_hang"`` (the task is created — charged — and
the answer is lost). On a POST, faults apply to valid, authorised requests only; the task
is created unless the fault is an error status, "drop" or "reset" (for "malformed",
"slow" and "timeout" only the answer is lost or late, not the request).
"""

from __future__ import annotations

import email.utils
import json
import math
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import GET_FAULT_NAMES, RETRY_AFTER_FORMS

__all__ = [
    "ERROR_FAULTS",
    "FAULT_NAMES",
    "Fault",
    "FaultPlan",
    "error_answer",
    "malformed_answer",
    "retry_after_header",
]

#: Faults answered with an HTTP error status.
ERROR_FAULTS = ("500", "502", "503", "504", "429")
FAULT_NAMES = (
    *ERROR_FAULTS,
    "drop",
    "reset",
    "slow",
    "timeout",
    "malformed",
    "accept_then_drop",
    "accept_then_hang",
)
POST_ONLY = ("accept_then_drop", "accept_then_hang")
METHODS = ("POST", "GET")
MALFORMED_KINDS = ("html", "truncated")
_PARAMS = ("retry_after", "retry_after_form", "delay", "hang_seconds", "kind")


@dataclass(frozen=True)
class Fault:
    """A fault chosen for one request; ``params`` override the config's defaults."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class _Scripted:
    fault: Fault
    method: str
    remaining: int


class FaultPlan:
    """The queue of scripted faults and the RNG of the random ones (thread-safe)."""

    def __init__(self, seed: int | None) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Scripted] = []
        self._rng = random.Random(None if seed is None else f"faults:{seed}")

    def inject(self, name: str, *, method: str, times: int, params: Mapping[str, Any]) -> None:
        """Queue ``name`` for the next ``times`` requests of ``method`` (ValueError if invalid)."""
        method = method.upper()
        if name not in FAULT_NAMES:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}")
        if name in POST_ONLY and method != "POST":
            raise ValueError(f"{name} applies to POST only")
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError("times must be a positive int")
        _check_params(params)
        with self._lock:
            self._queue.append(_Scripted(Fault(name, dict(params)), method, times))

    def take(self, method: str) -> Fault | None:
        """Consume the next scripted fault for ``method``, if any."""
        with self._lock:
            for entry in self._queue:
                if entry.method == method:
                    entry.remaining -= 1
                    if entry.remaining <= 0:
                        self._queue.remove(entry)
                    return entry.fault
        return None

    def draw(self, rates: Mapping[str, float]) -> Fault | None:
        """Pick at most one fault with the given per-request probabilities."""
        if not rates:
            return None
        with self._lock:
            r = self._rng.random()
        for name in GET_FAULT_NAMES:  # fixed order: same seed, same faults
            r -= rates.get(name, 0.0)
            if r < 0:
                return Fault(name)
        return None

    def malformed_kind(self, fault: Fault) -> str:
        kind = fault.params.get("kind")
        if isinstance(kind, str):
            return kind
        with self._lock:
            return self._rng.choice(MALFORMED_KINDS)

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"fault": e.fault.name, "method": e.method, "times": e.remaining, **e.fault.params}
                for e in self._queue
            ]

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()


def _check_params(params: Mapping[str, Any]) -> None:
    for key, value in params.items():
        if key not in _PARAMS:
            raise ValueError(f"unknown fault parameter {key!r}; known: {', '.join(_PARAMS)}")
        if key == "retry_after_form":
            if value not in RETRY_AFTER_FORMS:
                raise ValueError(f"retry_after_form must be one of {RETRY_AFTER_FORMS}")
        elif key == "kind":
            if value not in MALFORMED_KINDS:
                raise ValueError(f"kind must be one of {MALFORMED_KINDS}")
        elif (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(f"{key} must be a non-negative number")


def retry_after_header(seconds: float, form: str) -> str:
    """A Retry-After value: delta-seconds, or an HTTP-date rounded up to whole seconds."""
    if form == "http-date":
        return email.utils.formatdate(math.ceil(time.time() + seconds), usegmt=True)
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


_REASONS = {
    "500": ("internal server error", "server_error"),
    "503": ("service temporarily unavailable, please retry later", "service_unavailable"),
    "429": ("rate limit exceeded, please retry later", "rate_limit_exceeded"),
}
_GATEWAY_PAGE = (
    "<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n"
    "<center><h1>{status}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def error_answer(name: str) -> tuple[int, str, bytes]:
    """(status, content type, body) of an error fault; gateway errors come as nginx HTML."""
    status = int(name)
    if name in _REASONS:
        message, code = _REASONS[name]
        body = json.dumps({"error": {"message": message, "code": code}}).encode()
        return status, "application/json", body
    text = {"502": "502 Bad Gateway", "504": "504 Gateway Time-out"}[name]
    return status, "text/html", _GATEWAY_PAGE.format(status=text).encode()


def malformed_answer(kind: str) -> tuple[str, bytes]:
    """(content type, body) of a 200 answer that is not the JSON it claims to be."""
    if kind == "html":
        page = _GATEWAY_PAGE.format(status="Service is restarting")
        return "text/html; charset=utf-8", page.encode()
    return "application/json", b'{"object": "video", "status": "in_progress", "progr'
