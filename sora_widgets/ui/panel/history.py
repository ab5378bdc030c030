"""The panel's History and comparison (parts of its one widget), and what "vary" remembers.

History is read on first open, so a panel that never opens it reads nothing; once open it
follows the studio's job changes by itself (``HistoryPage``: a take that finishes anywhere
in the kernel appears without a click). Checked takes open a comparison in the panel.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sora_widgets.engine.job import Job
from sora_widgets.studio.studio import Studio
from sora_widgets.ui.compare import Compare
from sora_widgets.ui.history import HistoryPage, HistoryState
from sora_widgets.ui.panel.parts import Part

__all__ = ["PanelHistory"]

log = logging.getLogger("sora_widgets.ui.panel.history")

#: The comparison's traits the panel carries (not the widget's own: layout, model names).
COMPARE_TRAITS = ("items", "starred", "box")


class PanelHistory:
    """History, comparison and the "vary" parent of a panel (``owner``: the widget whose
    ``history_view`` / ``compare_view`` traits carry them; ``vary_line`` says the parent)."""

    def __init__(self, owner: Any, studio: Studio, root: Path) -> None:
        self.owner = owner
        self._studio = studio
        self._root = root
        self.parent: Job | None = None
        self.page: HistoryPage | None = None
        self._history_part: Part | None = None
        self.compare_view: Compare | None = None
        self._compare_part: Part | None = None

    @property
    def parent_id(self) -> str | None:
        """The job the next submit records as its parent ("vary"), if any."""
        return self.parent.local_id if self.parent is not None else None

    @property
    def is_open(self) -> bool:
        return bool(self.owner.history_open)

    def open(self, on: bool = True) -> HistoryPage | None:
        """Show (read on first open, then live) or hide History; the page when shown."""
        if on:
            if self.page is None:
                state = HistoryState()
                self.page = HistoryPage(state, studio=self._studio, on_load=self._load,
                                        root=self._root, show_compare=self.show_compare)
                self._history_part = Part(self.owner, "history_view", state,
                                          editable=HistoryState.EDITABLE,
                                          on_message=self.page.handle)
            else:
                self.page.refresh()
        self.owner.history_open = bool(on)
        return self.page if on else None

    def receive(self, target: str, content: dict[str, Any]) -> None:
        """A message from the History or the comparison front end."""
        part = self._history_part if target == "history" else self._compare_part
        if part is not None:
            part.receive(content)

    def _load(self, job: Job, vary: bool) -> None:
        self.owner.load(job)
        self.remember(job if vary else None)

    def remember(self, job: Job | None) -> None:
        """The job the next Generate is a variation of (None: forget it)."""
        self.parent = job
        if job is None:
            self.owner.vary_line = ""
            return
        prompt = job.prompt or "(image only)"
        self.owner.vary_line = prompt if len(prompt) <= 80 else prompt[:79] + "…"

    def submitted(self) -> None:
        """A submit went through: it recorded the parent (if any); show it in History."""
        self.remember(None)
        if self.page is not None and self.is_open:
            self.page.refresh()

    # -- the comparison ---------------------------------------------------------------------

    def show_compare(self, jobs: list[Job]) -> Compare:
        """Compare ``jobs`` side by side in the panel (the checked takes of History or of
        the panel's own cards)."""
        view = Compare(jobs, root=self._root)
        self.close_compare()
        self.compare_view = view
        self._compare_part = Part(self.owner, "compare_view", view, names=COMPARE_TRAITS,
                                  on_message=self._on_compare_message)
        return view

    def _on_compare_message(self, content: dict[str, Any]) -> None:
        view = self.compare_view
        if view is None:
            return
        if content.get("action") == "close":
            self.close_compare()
        elif content.get("action") == "star":
            job = next((j for j in view.jobs if j.local_id == content.get("id")), None)
            if job is not None:
                job.star(bool(content.get("on")))
                view.starred = {j.local_id: bool(j.starred) for j in view.jobs}

    def close_compare(self) -> None:
        part, view = self._compare_part, self.compare_view
        self._compare_part = self.compare_view = None
        if part is not None:
            part.close()
        if view is not None:
            view.close()

    def close(self) -> None:
        self.close_compare()
        if self._history_part is not None:
            self._history_part.close()
        if self.page is not None:
            self.page.close()

