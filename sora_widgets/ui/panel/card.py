"""One take's card in the panel: progress, status, the player, its money line, actions.

Cards observe their job and only *set widget traits* from the engine's thread; nothing is
displayed or printed there (such output lands in whatever cell runs now). The finished
video goes into an ``Output`` widget's ``outputs``: JupyterLab renders those with the
notebook's rendermime, which turns the relative ``src`` that ``media.publish_video``
returns into ``/files/...`` (an ``HTML`` widget would not: it would 404).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as widgets
from traitlets import All

from sora_widgets.core.lifecycle import TERMINAL_ERROR_STATUSES, Status
from sora_widgets.core.settings import preferences, settings
from sora_widgets.engine.job import Job
from sora_widgets.media.posters import poster_data_uri
from sora_widgets.media.publish import publish_video
from sora_widgets.ui.cards import (
    card_details_html,
    card_header_html,
    card_placeholder_html,
    card_status_html,
    card_video_html,
)
from sora_widgets.ui.panel.labels import display_data as _display_data
from sora_widgets.ui.panel.labels import price_label as _price_label
from sora_widgets.ui.render import bar_style
from sora_widgets.ui.throttle import Throttle

__all__ = ["CARD_WIDTH", "PROGRESS_SECONDS", "JobCard"]

log = logging.getLogger("sora_widgets.ui.panel.card")

CARD_WIDTH = "344px"
#: A card redraws for progress (and the ETA) at most this often; other changes at once.
PROGRESS_SECONDS = 1.0
_THROTTLED = frozenset({"progress", "eta_seconds"})


class JobCard(widgets.VBox):  # type: ignore[misc]
    """One job: progress, status, the player. Refreshed from the poller thread (traits only)."""

    def __init__(self, job: Job, *, root: Path,
                 on_reuse: Callable[[JobCard], None],
                 on_regenerate: Callable[[JobCard], None],
                 on_continue: Callable[[JobCard], None] | None = None,
                 on_update: Callable[[JobCard], None] | None = None) -> None:
        self.job = job
        self.cached = False
        self._on_update = on_update
        self._root = root
        self._src: str | None = None
        self._lock = threading.RLock()
        self.header = widgets.HTML(card_header_html(job))
        self.bar = widgets.IntProgress(min=0, max=100, layout=widgets.Layout(width="100%"))
        self.bar.add_class("sora-running")      # hidden once the kernel is gone (CSS)
        self.status = widgets.HTML()
        self.player = widgets.Output(layout=widgets.Layout(width="100%"))
        self.details = widgets.HTML()
        self.reuse_button = widgets.Button(
            description="reuse prompt", icon="pencil", tooltip="Load these settings into the form",
            layout=widgets.Layout(width="auto"))
        self.regenerate_button = widgets.Button(
            button_style="warning", icon="refresh", layout=widgets.Layout(width="auto"),
            tooltip="Submit this request again: a new job, charged again")
        self.reuse_button.on_click(lambda _b: on_reuse(self))
        self.regenerate_button.on_click(lambda _b: on_regenerate(self))
        self.continue_button = widgets.Button(
            icon="forward", layout=widgets.Layout(width="auto"),
            tooltip="A new clip that starts from this clip's last frame, with the prompt "
                    "in the box above (a new job, charged)")
        self.continue_button.add_class("sora-continue")
        self._on_continue = on_continue
        if on_continue is not None:
            self.continue_button.on_click(lambda _b: on_continue(self))
        buttons = widgets.HBox([self.reuse_button, self.regenerate_button,
                                self.continue_button],
                               layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__(
            [self.header, self.bar, self.status, self.player, self.details, buttons],
            layout=widgets.Layout(width=CARD_WIDTH, padding="8px",
                                  border="1px solid var(--jp-border-color2, #ddd)"))
        self.add_class("sora-card")
        # The DOM contract (static/panel.js turns these into data-job-id, data-status).
        self.add_class("sora-take")
        self.add_class(f"sora-take-{job.local_id}")
        self.details.add_class("sora-take-money")
        self._status_class: str | None = None
        self._throttle = Throttle(self.refresh, PROGRESS_SECONDS)
        job.observe(self._on_change, names=All)
        self.refresh()

    def _on_change(self, change: Any) -> None:
        # Progress moves many times a second: one redraw per second at most (the last
        # value always lands); any other change redraws at once.
        if change.get("name") in _THROTTLED:
            self._throttle()
        else:
            self._throttle.run_now()

    def refresh(self) -> None:
        """Bring every trait up to date with the job; never raises (it runs on the poller)."""
        try:
            with self._lock:
                self._update()
        except Exception:  # an observer error would surface as a polling error of the job
            log.exception("could not refresh the card of job %s", self.job.local_id)

    def refresh_status(self) -> None:
        """Only the status line (elapsed time), for the ticker."""
        try:
            with self._lock:
                self.status.value = card_status_html(self.job)
        except Exception:
            log.exception("could not refresh the status of job %s", self.job.local_id)

    def _update(self) -> None:
        job = self.job
        status_class = f"sora-status-{job.status}"
        if status_class != self._status_class:
            if self._status_class is not None:
                self.remove_class(self._status_class)
            self.add_class(status_class)
            self._status_class = status_class
        self.bar.value = int(job.progress)
        self.bar.bar_style = bar_style(job)
        self.status.value = card_status_html(job)
        self.player.outputs = self._player_outputs()
        # "local emulator — no charge" is said once, by the spend line, when the panel
        # itself runs on the emulator; a card says it only when the panel does not.
        badge = job.emulator and not settings().uses_emulator
        self.details.value = card_details_html(job, cached=self.cached, badge=badge)
        self.regenerate_button.description = _price_label("regenerate anyway", settings(),
                                                          self.job.request)
        self.regenerate_button.layout.display = None if self.cached else "none"
        self.continue_button.description = _price_label("continue", settings())
        self.continue_button.layout.display = (
            None if self._on_continue is not None and job.status == Status.COMPLETED
            else "none")
        if self._on_update is not None:
            self._on_update(self)

    @property
    def src(self) -> str | None:
        """The relative src of the video published next to the notebook (once saved)."""
        return self._src

    def _player_outputs(self) -> tuple[dict[str, Any], ...]:
        job = self.job
        if job.status in TERMINAL_ERROR_STATUSES:
            return ()
        if self._src is None and job.status == Status.COMPLETED and job.local_path is not None:
            self._src = publish_video(job.local_path, preferences.media_dir, root=self._root)
        html = (card_video_html(self._src, job.aspect_ratio, poster_data_uri(job.poster_path))
                if self._src
                else card_placeholder_html(job.aspect_ratio))
        return (_display_data(html),)

    def detach(self) -> None:
        """Stop observing the job (the widget is being closed); safe to call twice."""
        self._throttle.cancel()
        with contextlib.suppress(ValueError):
            self.job.unobserve(self._on_change, names=All)

