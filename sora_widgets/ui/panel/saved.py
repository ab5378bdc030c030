"""The panel's saved view: a plain ``text/html`` snapshot of its settled cards.

The snapshot is what survives: reopened without the kernel, or exported with nbconvert, a
notebook shows it (videos play from the copies published next to the notebook) where the
widget can only say "model not found". Only job fields go into it: never a key.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sora_widgets.core.errors import SoraError
from sora_widgets.core.lifecycle import TERMINAL_ERROR_STATUSES, Status
from sora_widgets.core.settings import settings
from sora_widgets.ui.cards import panel_snapshot_html, snapshot_tile_html
from sora_widgets.ui.display import Slot, display
from sora_widgets.ui.panel.card import JobCard

__all__ = ["SavedView"]

log = logging.getLogger("sora_widgets.ui.panel.saved")


class SavedView:
    """The snapshot beside the live view; mixed into ``SoraWidget`` (before the VBox)."""

    cards: list[JobCard]
    _lock: threading.RLock
    _uid: str
    _snapshots: list[Slot]

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The live view, with short fallbacks (nbconvert shows them where the widget state
        is not saved: no widget repr; the snapshot below says it all). anywidget answers
        ``(data, metadata)`` (Colab's widget manager rides in the metadata)."""
        bundle = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        if not bundle:
            return None
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        return {**data,
                "text/plain": "SoraWidget: the live panel (it needs its running kernel)",
                "text/html": "<div class='sora-panel-fallback'></div>"}, dict(metadata)

    def _ipython_display_(self) -> None:
        """The live panel, then a plain ``text/html`` snapshot of its settled cards.

        The snapshot is what survives: reopened without the kernel, or exported with
        nbconvert, a notebook shows it (videos play from the copies published next to the
        notebook) where the widget can only say "model not found". It is replaced (same
        display id, in this cell) whenever a card settles; while the live panel is on the
        page, CSS hides it. Only job fields go into it: never a key."""
        from IPython import get_ipython

        bundle = self._repr_mimebundle_()
        if bundle is not None:
            display(bundle[0], metadata=bundle[1], raw=True)
        shell = get_ipython()
        if shell is not None:
            slot = Slot(shell, self._snapshot_bundle())
            with self._lock:
                self._snapshots.append(slot)

    def snapshot_html(self) -> str:
        """The static HTML of the settled cards (what the saved notebook shows)."""
        return self._snapshot_bundle()["text/html"]

    def _snapshot_bundle(self) -> dict[str, str]:
        with self._lock:
            cards = list(self.cards)
        try:
            current_emulator = settings().uses_emulator
        except SoraError:
            current_emulator = False
        tiles, running = [], 0
        for card in cards:
            job = card.job
            failed = job.status in TERMINAL_ERROR_STATUSES
            if not failed and (job.status != Status.COMPLETED or card.src is None):
                running += not job.done or job.status == Status.COMPLETED
                continue
            tiles.append(snapshot_tile_html(job, card.src, reused=card.cached,
                                            badge=job.emulator and not current_emulator))
        emulator = bool(cards) and current_emulator and all(c.job.emulator for c in cards)
        text = f"Sora panel: {len(tiles)} finished job{'s' if len(tiles) != 1 else ''}"
        return {"text/html": panel_snapshot_html(self._uid, tiles, running=running,
                                                 emulator=emulator),
                "text/plain": text}

    def _refresh_snapshot(self) -> None:
        """Re-send the snapshot if it changed (any thread; never raises)."""
        with self._lock:
            slots = list(self._snapshots)
        if not slots:
            return
        try:
            bundle = self._snapshot_bundle()
            for slot in slots:
                slot.update(bundle)
        except Exception:
            log.exception("could not update the panel's saved view")
