"""What every wire adapter provides, and the pieces they share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sora_widgets.core.models import TaskSnapshot, VideoRequest

__all__ = ["WireAdapter", "poll_hint_seconds"]

#: The header a relay uses to say how long to wait before the next GET.
POLL_HINT_HEADER = "openai-poll-after-ms"
#: A hint longer than this is not believed (a broken header must not stall a paid job).
MAX_POLL_HINT_SECONDS = 600.0


class WireAdapter(Protocol):
    """One relay style: request bodies out, snapshots in. Pure: it never sends anything."""

    style: str

    def submit_body(self, request: VideoRequest) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client.build_request``: ``json=`` or
        ``data=`` + ``files=`` (multipart)."""
        ...

    def snapshot(self, payload: object, *, base_url: str) -> TaskSnapshot:
        """An answer (decoded JSON) as a snapshot; ``extra`` holds ``fetch_url`` (where
        the video is, once completed) and ``expires_at`` when the relay gives them.
        Raises ``MalformedResponseError`` for an answer without a task id."""
        ...

    def poll_hint(self, headers: Mapping[str, str]) -> float | None:
        """Seconds the relay asks us to wait before the next GET, or None."""
        ...


def poll_hint_seconds(headers: Mapping[str, str]) -> float | None:
    """``openai-poll-after-ms`` in seconds (bounded), or None when absent or garbled."""
    raw = headers.get(POLL_HINT_HEADER)
    if not raw:
        return None
    try:
        value = float(raw) / 1000.0
    except ValueError:
        return None
    if value != value or value < 0:
        return None
    return min(value, MAX_POLL_HINT_SECONDS)
