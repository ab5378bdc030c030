"""The panel's words about money: the Generate button's quote and what a click did.

The studio answers every money question (``Studio.quote``, ``Studio.submit``); these only
put its answer into words. One distinction matters and the journal alone cannot make it:
a take that was *finished* before this click is "reused — no new charge"; one still
*running* (a double-click, or an identical request made in another cell a moment ago) is
the same paid take, joined: its card shows its charge once and never says "reused".
"""

from __future__ import annotations

import time

from sora_widgets.core.catalog import price_of
from sora_widgets.core.errors import SoraError
from sora_widgets.core.models import VideoRequest
from sora_widgets.core.settings import Settings, preferences
from sora_widgets.engine.job import Job
from sora_widgets.ui.safe import http_url

__all__ = ["EARLIER_LABEL", "EMPTY_HINT", "RUNNING_LABEL", "first_http_image",
           "joined_words", "price", "price_label", "started_at"]

#: The button when the form's request is a finished take in the journal (free to show).
EARLIER_LABEL = "Show the earlier take — free"
#: The button when the form's request is running now (a click joins it: free).
RUNNING_LABEL = "Show the running take — free"
#: Beside a Generate disabled because the form is empty: guidance, not an error.
EMPTY_HINT = "describe the video first (or give a first-frame image)"


def price(current: Settings, request: VideoRequest | None = None) -> float | None:
    """The catalogue's price of ``request`` (default: the model's default clip)."""
    try:
        return price_of(request or VideoRequest.create(
            "price", model=preferences.model_or(current)), current)
    except SoraError:
        return None


def price_label(verb: str, current: Settings, request: VideoRequest | None = None) -> str:
    """'Generate · $0.90' with a key, 'Generate · free (emulator)' without."""
    if current.uses_emulator:
        return f"{verb} · free (emulator)"
    amount = price(current, request)
    return verb if amount is None else f"{verb} · ${amount:.2f}"


def started_at(job: Job) -> str:
    """'14:55': when the take was asked for (local time)."""
    return time.strftime("%H:%M", time.localtime(job.created_at)) if job.created_at else "?"


def joined_words(job: Job) -> str:
    """What a click that joined a running identical take says (never "reused")."""
    return (f"joined the take started {started_at(job)}: this request is already running "
            "— one take, charged once; see its card")


def first_http_image(request: VideoRequest) -> str:
    """The image URL to put back in the form (a local file's data URI is too big for it)."""
    return next((url for url in request.images if http_url(url)), "")
