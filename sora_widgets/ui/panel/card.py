"""One take in the panel: its job's state as the front end's item, kept up to date.

A card observes its job and turns each change into one plain dict (``item``) that
``static/panel.js`` draws: progress, status words, the player and poster (relative paths
published next to the notebook), the money line, what it was made from. Nothing here is a
widget and nothing is displayed: the panel puts the items into its take traits. Progress
redraws at most once per second; other changes at once. Only job fields go in: never a key.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from traitlets import All

from sora_widgets.core.catalog import catalogue
from sora_widgets.core.errors import SoraError
from sora_widgets.core.lifecycle import TERMINAL_ERROR_STATUSES, Status
from sora_widgets.core.settings import Settings, api_style, preferences, settings
from sora_widgets.engine.job import Job
from sora_widgets.studio.lineage import provenance
from sora_widgets.ui import render
from sora_widgets.ui.panel.labels import joined_words, price_label, started_at
from sora_widgets.ui.publish import publish
from sora_widgets.ui.safe import http_url, safe_url
from sora_widgets.ui.throttle import Throttle

__all__ = ["PROGRESS_SECONDS", "JobCard"]

log = logging.getLogger("sora_widgets.ui.panel.card")

#: A card redraws for progress (and the ETA) at most this often; other changes at once.
PROGRESS_SECONDS = 1.0
_THROTTLED = frozenset({"progress", "eta_seconds"})


class JobCard:
    """One job's card: ``item`` is what the browser draws; ``on_update`` hears each change.

    ``cached``: this take was in the journal before the click that showed it ("reused —
    no new charge"). ``joined``: the click joined this take while it ran (one take, its
    charge said once: never "reused")."""

    def __init__(self, job: Job, *, root: Path,
                 on_update: Callable[[JobCard], None] | None = None) -> None:
        self.job = job
        self.cached = False
        self.joined = False
        self.item: dict[str, Any] = {}
        self._on_update = on_update
        self._root = root
        self._src: str | None = None
        self._poster: str | None = None
        self._lock = threading.RLock()
        self._throttle = Throttle(self._redraw, PROGRESS_SECONDS)
        job.observe(self._on_change, names=All)
        self.refresh(notify=False)

    def _on_change(self, change: Any) -> None:
        # Progress moves many times a second: one redraw per second at most (the last
        # value always lands); any other change redraws at once.
        if change.get("name") in _THROTTLED:
            self._throttle()
        else:
            self._throttle.run_now()

    def _redraw(self) -> None:
        self.refresh()

    def refresh(self, *, notify: bool = True) -> bool:
        """Bring ``item`` up to date with the job; whether it changed. Never raises (it runs
        on the engine's thread); ``notify``: tell the panel."""
        try:
            with self._lock:
                item = self._item()
                changed = item != self.item
                self.item = item
        except Exception:  # an observer error would surface as a polling error of the job
            log.exception("could not refresh the card of job %s", self.job.local_id)
            return False
        if changed and notify and self._on_update is not None:
            self._on_update(self)
        return changed

    def tick(self) -> None:
        """The panel's one-second tick: the elapsed time and the latest progress, counted
        as this card's progress redraw (so one take's progress moves at most once a second,
        tick and throttle together); the panel sends every ticked card at once."""
        self._throttle.ran()
        self.refresh(notify=False)

    @property
    def src(self) -> str | None:
        """The relative src of the video published next to the notebook (once saved)."""
        return self._src

    @property
    def money(self) -> str:
        """The card's money line as text (what the take cost, and a reuse)."""
        return str(self.item.get("money", ""))

    def _publish(self) -> None:
        job = self.job
        if job.status != Status.COMPLETED or job.local_path is None:
            return
        if self._src is None:
            self._src = publish(job.local_path, preferences.media_dir, root=self._root)
        if self._poster is None:
            self._poster = publish(job.poster_path, preferences.media_dir, root=self._root)

    def _item(self) -> dict[str, Any]:
        job = self.job
        self._publish()
        current = settings()
        # "local emulator — no charge" is said once, by the spend line, when the panel
        # itself runs on the emulator; a card says it only when the panel does not.
        badge = job.emulator and not current.uses_emulator
        money = render.money_line(job, reused=False, badge=badge)
        if job.billed_usd is not None:
            money = job.billing
        failed = job.status in TERMINAL_ERROR_STATUSES
        title, advice = render.error_words(job) if failed else ("", "")
        trouble = job.poll_error or job.notice or (
            f"saving the video: {job.download_error}"
            if job.download_error and not job.local_path else "")
        images = job.request.images
        return {
            "id": job.local_id, "task": job.id or "", "prompt": job.prompt or "(image only)",
            "ratio": job.aspect_ratio, "model": job.request.model, "when": started_at(job),
            "status": str(job.status), "done": job.done, "tracking": job.tracking,
            "progress": int(job.progress), "phase": render.phase_words(job),
            "tone": render.bar_style(job), "trouble": "" if failed else (trouble or ""),
            "src": safe_url(self._src) or "", "poster": safe_url(self._poster) or "",
            "money": money, "reused": self.cached and not self.joined,
            "reused_words": render.REUSED_WORDS,
            "joined": joined_words(job) if self.joined else "",
            "error_title": title, "error": (job.error or "no message from the relay")
            if failed else "", "advice": advice,
            "image": (http_url(images[0]) or "") if images else "",
            "image_count": len(images), "provenance": provenance(job.request),
            "starred": bool(job.starred), "note": job.note or "",
            "can_continue": job.status == Status.COMPLETED,
            "can_remix": job.status == Status.COMPLETED and _remixes(current, job),
            "regenerate_label": price_label("regenerate anyway", current, job.request),
            "continue_label": price_label("continue", current),
        }

    def detach(self) -> None:
        """Stop observing the job (the panel is closing); safe to call twice."""
        self._throttle.cancel()
        with contextlib.suppress(ValueError):
            self.job.unobserve(self._on_change, names=All)


def _remixes(current: Settings, job: Job) -> bool:
    """Whether the current style's catalogue offers a remix of this take's model."""
    try:
        return catalogue(current).entry(api_style(current), job.request.model).remix
    except SoraError:
        return False
