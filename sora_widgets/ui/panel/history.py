"""The panel's "History" toggle and view, and what "vary" remembers.

The view (:class:`sora_widgets.ui.history.History`) is made on first open, so a panel that
never opens it reads nothing; once open it follows the studio's job changes by itself.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from sora_widgets.engine.job import Job
from sora_widgets.ui import render
from sora_widgets.ui.history import History

__all__ = ["PanelHistory"]


class PanelHistory:
    """The panel's "History" toggle and view, and what "vary" remembers.

    Made by ``SoraWidget``: a bar (the toggle, and the job the next submit will record as
    its parent) and a box, put just below the panel's takes. The view is made on first
    open (a panel that never opens it reads nothing), refreshed on each open and after
    each submit. ``load`` puts a job in the form; ``vary`` does too and remembers it:
    the panel passes :attr:`parent_id` to its next submit, then calls :meth:`submitted`.
    """

    def __init__(self, panel: Any) -> None:
        self.panel = panel
        self.parent: Job | None = None
        self.view: History | None = None
        self.toggle = widgets.ToggleButton(
            value=False, description="History", icon="history",
            tooltip="every job in the journal: search, star, note, load, vary, compare",
            layout=widgets.Layout(width="auto"))
        self.toggle.add_class("sora-history-toggle")
        self.parent_line = widgets.HTML()
        self.forget_button = widgets.Button(
            description="forget", icon="times", layout=widgets.Layout(width="auto",
                                                                      display="none"),
            tooltip="the next submit is not recorded as a variation")
        self.forget_button.on_click(lambda _b: self._remember(None))
        self.bar = widgets.HBox([self.toggle, self.parent_line, self.forget_button],
                                layout=widgets.Layout(align_items="center",
                                                      margin="6px 0 0 0"))
        self.box = widgets.VBox(layout=widgets.Layout(display="none", width="100%"))
        self.toggle.observe(self._on_toggle, names="value")
        # After the takes: a new take's card lands right under the form, never below History.
        children = list(panel.children)
        at = children.index(panel.gallery) + 1 if panel.gallery in children else len(children)
        panel.children = (*children[:at], self.bar, self.box, *children[at:])

    @property
    def parent_id(self) -> str | None:
        return self.parent.local_id if self.parent is not None else None

    def open(self, on: bool = True) -> History | None:
        self.toggle.value = bool(on)    # observed
        return self.view

    def _on_toggle(self, change: dict[str, Any]) -> None:
        if change["new"]:
            if self.view is None:
                self.view = History(studio=self.panel.studio, on_load=self._load)
                self.box.children = (self.view,)
            else:
                self.view.refresh()
            self.box.layout.display = None
        else:
            self.box.layout.display = "none"

    def _load(self, job: Job, vary: bool) -> None:
        self.panel.load(job)
        self._remember(job if vary else None)

    def _remember(self, job: Job | None) -> None:
        self.parent = job
        if job is None:
            self.parent_line.value = ""
            self.forget_button.layout.display = "none"
            return
        prompt = job.prompt or "(image only)"
        short = prompt if len(prompt) <= 60 else prompt[:59] + "…"
        self.parent_line.value = (
            "<span class='sora-vary' style='font-size: 12px; color: "
            "var(--jp-ui-font-color2, #666)'>the next Generate is a variation of: "
            f"<b>{render.escape(short)}</b></span>")
        self.forget_button.layout.display = None

    def submitted(self) -> None:
        """A submit went through: it recorded the parent (if any); show it in the view."""
        self._remember(None)
        if self.view is not None and self.toggle.value:
            self.view.refresh()

    def close(self) -> None:
        if self.view is not None:
            self.view.close()
