"""``SoraWidget``: the panel — one anywidget: the form, the queue, the takes, History.

One widget, drawn entirely in the browser by ``static/panel.js`` (which also draws the
History page and the comparison with their own front ends), so it runs wherever anywidget
does: JupyterLab, Notebook 7, marimo. The Python side is a thin view over the studio: every
money question is ``Studio.quote`` / ``Studio.submit``; the one poller thread drives every
``Job``, and cards only set traits from it.

The form's values are traits the browser sets; what the kernel says back (the Generate
label with its quote, why it is disabled, the spend) are traits too; clicks arrive as
messages. No trait ever holds the API key: labels and spend are derived from
``settings()`` at each refresh.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from sora_widgets.core.errors import ConfirmationRequired, SoraError
from sora_widgets.core.models import ASPECT_RATIOS, VideoRequest
from sora_widgets.core.settings import settings
from sora_widgets.engine.job import Job
from sora_widgets.studio.studio import Studio, default_studio
from sora_widgets.studio.sweeps import variants
from sora_widgets.ui.panel.button import GenerateButton
from sora_widgets.ui.panel.card import JobCard
from sora_widgets.ui.panel.front_end import PANEL_CSS, PANEL_ESM
from sora_widgets.ui.panel.history import PanelHistory
from sora_widgets.ui.panel.labels import (
    joined_words,
)
from sora_widgets.ui.panel.messages import TAKE_ACTIONS, PanelMessages
from sora_widgets.ui.panel.queue import queue_items
from sora_widgets.ui.panel.saved import SavedView
from sora_widgets.ui.panel.ticker import Ticking

__all__ = ["SoraWidget"]

log = logging.getLogger("sora_widgets.ui.panel")



class SoraWidget(Ticking, SavedView, GenerateButton, PanelMessages,
                 anywidget.AnyWidget):
    """The panel: prompt, ratio, length/size/seed, image URL, Generate; the running takes
    under it, then one card per take (newest first), then History.

    ``SoraWidget(prompt=..., aspect_ratio=..., image=...)`` pre-fills the form;
    ``SoraWidget(jobs=[...])`` or :meth:`from_job` shows past jobs (after a restart).
    """

    _esm = PANEL_ESM
    _css = PANEL_CSS

    # -- the form (the browser sets these) -------------------------------------------------
    prompt = traitlets.Unicode("").tag(sync=True)
    aspect_ratio = traitlets.Unicode("16:9").tag(sync=True)
    image = traitlets.Unicode("").tag(sync=True)
    seconds = traitlets.Int(0).tag(sync=True)
    size = traitlets.Unicode("").tag(sync=True)
    seed = traitlets.Unicode("").tag(sync=True)
    # -- what the kernel says ----------------------------------------------------------------
    choices = traitlets.Dict().tag(sync=True)
    generate_label = traitlets.Unicode("Generate").tag(sync=True)
    generate_disabled = traitlets.Bool(True).tag(sync=True)
    generate_tooltip = traitlets.Unicode("").tag(sync=True)
    #: Beside Generate: why it is disabled, or what the last click did (``reason_tone``).
    reason = traitlets.Unicode("").tag(sync=True)
    reason_tone = traitlets.Unicode("error").tag(sync=True)
    #: Beside Generate: what to do first (muted guidance, not an error).
    hint = traitlets.Unicode("").tag(sync=True)
    #: "Confirm: pay $6.30" while the studio asks to confirm a call ("" otherwise).
    confirm_label = traitlets.Unicode("").tag(sync=True)
    confirm_tooltip = traitlets.Unicode("").tag(sync=True)
    #: The first-frame image as a thumbnail (an http(s) URL only, else "").
    image_preview = traitlets.Unicode("").tag(sync=True)
    spend = traitlets.Unicode("").tag(sync=True)
    #: The prompt the next Generate is a variation of ("vary"; "" when none).
    vary_line = traitlets.Unicode("").tag(sync=True)
    queue = traitlets.List(traitlets.Dict()).tag(sync=True)
    #: The takes, newest first (local ids), and their items: the running apart from the
    #: settled, so the one-second tick re-sends only the running takes' items.
    take_order = traitlets.List(traitlets.Unicode()).tag(sync=True)
    live_takes = traitlets.Dict().tag(sync=True)
    settled_takes = traitlets.Dict().tag(sync=True)
    #: Takes checked for comparison (local ids).
    selected = traitlets.List(traitlets.Unicode()).tag(sync=True)
    history_open = traitlets.Bool(False).tag(sync=True)
    history_view = traitlets.Dict().tag(sync=True)
    compare_view = traitlets.Dict().tag(sync=True)
    #: Ties the live panel to its saved snapshot (the class ``sora-live-<uid>``).
    uid = traitlets.Unicode("").tag(sync=True)

    def __init__(self, prompt: str = "", aspect_ratio: str = "16:9", image: str = "", *,
                 jobs: Iterable[Job | str] = (), studio: Studio | None = None,
                 **kwargs: Any) -> None:
        self._stop = threading.Event()   # first: close() (also from __del__) relies on it
        self.cards: list[JobCard] = []
        if aspect_ratio not in ASPECT_RATIOS:
            raise ValueError(f"aspect_ratio must be 16:9 or 9:16, not {aspect_ratio!r}")
        self._studio = studio
        self._root = Path.cwd()   # the notebook's folder: videos are published next to it
        self._busy = False
        self._notice_job: Job | None = None
        self._pending: list[VideoRequest] | None = None
        self._news: tuple[str | None, str] = (None, "error")
        self._lock = threading.RLock()
        self._ticker: threading.Thread | None = None
        self._snapshots = []
        super().__init__(prompt=prompt or "", aspect_ratio=aspect_ratio, image=image or "",
                         uid=uuid.uuid4().hex[:12], **kwargs)
        self._uid = self.uid
        self.add_class("sora-live")
        self.add_class(f"sora-live-{self._uid}")
        self.history = PanelHistory(self, self.studio, self._root)
        self.observe(self._on_form_change,
                     names=["prompt", "aspect_ratio", "image", "seconds", "size", "seed"])
        self.on_msg(self._on_msg)
        for job in self._resolve(jobs):
            self._show(job)
        self._refresh_spend()
        self._refresh_form()

    @classmethod
    def from_job(cls, job: Job | str, **kwargs: Any) -> SoraWidget:
        """A panel linked to a past job (a ``Job`` or its id), its settings in the form."""
        panel = cls(jobs=[job], **kwargs)
        if panel.cards and not {"prompt", "aspect_ratio", "image"} & kwargs.keys():
            panel.load(panel.cards[0].job)
        return panel

    # -- public ---------------------------------------------------------------------------

    @property
    def jobs(self) -> list[Job]:
        """The panel's jobs, newest first."""
        return [card.job for card in self.cards]

    @property
    def studio(self) -> Studio:
        return self._studio or default_studio()

    @property
    def takes(self) -> list[dict[str, Any]]:
        """Every take's item (what the browser draws), newest first."""
        return [card.item for card in list(self.cards)]

    def generate(self) -> None:
        """What a click on Generate does (nothing while it is disabled or busy)."""
        if self._busy or self.generate_disabled:
            return   # a second click that was queued before the button went disabled
        try:
            requests = variants(self.form_request(settings()))
        except SoraError as exc:
            self._refresh_form(str(exc))
            return
        self._submit(requests, force=False)

    def confirm(self) -> None:
        """The Confirm button: pay for the call the studio asked to confirm."""
        pending = self._pending
        if self._busy or not pending:
            return
        self._offer_confirm(None)
        self._submit(pending, force=False, confirm=True)

    def dismiss(self) -> None:
        """Escape: the confirmation goes (nothing was sent)."""
        if self._pending is not None:
            self._offer_confirm(None)
            self._refresh_form()

    def press(self, action: str, job: Job | str, value: Any = None) -> None:
        """A take's button: ``reuse``, ``vary``, ``regenerate``, ``continue``, ``remix``,
        ``star`` (``value``: on), ``note`` (``value``: text) or ``select`` (for compare)."""
        local_id = job.local_id if isinstance(job, Job) else str(job)
        card = next((c for c in self.cards if c.job.local_id == local_id), None)
        if card is None or action not in TAKE_ACTIONS:
            return
        if action == "reuse":
            self.load(card.job)
        elif action == "vary":
            self.load(card.job)
            self.history.remember(card.job)
        elif action == "regenerate":
            self._regenerate(card)
        elif action in ("continue", "remix"):
            self._follow_up(card, action)
        elif action == "star":
            card.job.star(bool(value))
            card.refresh()
        elif action == "note":
            card.job.note = str(value or "")[:2000]
            card.refresh()
        elif action == "select":
            chosen = [i for i in self.selected if i != local_id]
            self.selected = [*chosen, local_id] if value else chosen

    def compare_selected(self) -> None:
        """Compare the checked takes side by side, in the panel."""
        jobs = [c.job for c in self.cards if c.job.local_id in self.selected]
        if len(jobs) < 2:
            self._refresh_form("check two or more finished takes to compare", "info")
            return
        try:
            self.history.show_compare(jobs)
        except SoraError as exc:
            self._refresh_form(str(exc))

    def close(self) -> None:
        """Stop the ticker and the job observers; close History and the widget."""
        self._stop.set()
        for card in self.cards:
            card.detach()
            with contextlib.suppress(ValueError):
                card.job.unobserve(self._on_money, names=["charge", "status"])
        history: PanelHistory | None = getattr(self, "history", None)
        if history is not None:      # None: __init__ raised (``Widget.__del__`` closes too)
            history.close()
        super().close()

    # -- the form -------------------------------------------------------------------------

    def _on_form_change(self, _change: Any) -> None:
        self._offer_confirm(None)      # what was to be confirmed is not the form any more
        self._refresh_form()

    # -- submitting -----------------------------------------------------------------------

    def _while_busy(self, work: Callable[[], tuple[str | None, str]]) -> None:
        """One click's paid work: Generate disabled meanwhile (a second click does nothing),
        then the spend, the label and what the click did (``work``'s words, or its error)."""
        self._busy = True
        self.generate_disabled = True
        message, tone = None, "error"
        try:
            message, tone = work()
        except SoraError as exc:
            message, tone = str(exc), "error"
        finally:
            self._busy = False
            self._refresh_spend()
            self._refresh_form(message, tone)

    def _submit(self, requests: list[VideoRequest], *, force: bool,
                confirm: bool = False) -> None:
        self._while_busy(lambda: self._submitted(requests, force=force, confirm=confirm))

    def _submitted(self, requests: list[VideoRequest], *, force: bool,
                   confirm: bool) -> tuple[str | None, str]:
        parent = self.history.parent_id      # "vary": the next submit records its parent
        twin = None if force or len(requests) > 1 else self._running_twin(requests[0])
        if twin is not None and not self.studio.quote(requests[0]).reused:
            twin = None     # the studio would not reuse it (another relay now): submit
        if twin is not None:
            # A double-click, or the same request again while its take runs: the one
            # paid take, joined here (the studio would reuse it; nothing new is asked).
            jobs = [twin]
        else:
            try:
                jobs = (self.studio.submit(requests[0], 1, force=force, confirm=confirm,
                                           parent_id=parent) if len(requests) == 1 else
                        self.studio.submit_many(requests, force=force, confirm=confirm,
                                                parent_id=parent))
            except ConfirmationRequired as exc:
                return self._offer_confirm(requests, exc), "warning"
        return self._shown(jobs, twin, force)

    def _shown(self, jobs: list[Job], twin: Job | None, force: bool) -> tuple[str | None, str]:
        """Show a submit's takes (its first one first); what to say about it."""
        # "reused" only for a take finished before this click; one still running was
        # joined: its card keeps its own charge line (one take, charged once).
        joined = {j.local_id for j in jobs
                  if j is twin or (j.reused and not force and not j.done)}
        if twin is None:
            self.history.submitted()
        for job in reversed(jobs):    # a sweep: its first job ends up first
            self._show(job, cached=job.reused and not force and job.local_id not in joined,
                       joined=job.local_id in joined)
        job = jobs[0]
        if len(jobs) > 1:
            reused = sum(1 for j in jobs if j.reused and not force)
            return (f"{len(jobs)} jobs: {len(jobs) - reused} new, {reused} reused — no new "
                    "charge for those" + (f" ({len(joined)} still running: joined)"
                                          if joined else ""), "info")
        if job.local_id in joined:
            self._notice_job = job   # the notice goes once that job settles
            return joined_words(job), "info"
        if job.reused and not force:
            return ("reused — no new charge: the same request was made before; its card "
                    "is first"), "info"
        return None, "error"

    def _regenerate(self, card: JobCard) -> None:
        """'regenerate anyway': the user chose to pay again for an identical request."""
        if self._busy or not card.cached or card.joined:
            return
        card.cached = False   # one click, one new job
        card.refresh()
        self._submit([card.job.request], force=True)

    def _follow_up(self, card: JobCard, action: str) -> None:
        """'continue' (a new clip from the card's last frame) or 'remix' (the relay's remix
        of it), with the form's prompt; the studio quotes, budgets, records the parent."""
        if self._busy:
            return
        prompt = self.prompt.strip()
        if not prompt:
            self._refresh_form(f"write the new prompt in the box above, then press "
                               f"'{action}' on the card again", "info")
            return
        self._while_busy(lambda: self._followed(card, action, prompt))

    def _followed(self, card: JobCard, action: str, prompt: str) -> tuple[str | None, str]:
        job = (self.studio.continue_from(card.job, prompt) if action == "continue"
               else card.job.remix(prompt))
        self._show(job, cached=job.reused)
        if job.reused:
            return (f"same {action} as before: its result is shown first (no new charge)",
                    "info")
        return None, "error"

    # -- the takes ------------------------------------------------------------------------

    def _resolve(self, jobs: Iterable[Job | str]) -> list[Job]:
        resolved = [job if isinstance(job, Job) else self.studio.get(job) for job in jobs]
        return sorted(resolved, key=lambda job: job.created_at)

    def _show(self, job: Job, *, cached: bool = False, joined: bool = False) -> None:
        """Put the job's card first (a new one, or the existing one for a cached result)."""
        card = next((c for c in self.cards if c.job is job), None)
        if card is None:
            card = JobCard(job, root=self._root, on_update=self._on_card_update)
            job.observe(self._on_money, names=["charge", "status"])
            self.studio.track(job)
        card.joined = card.joined or joined
        card.cached = (card.cached or cached) and not card.joined
        card.refresh(notify=False)
        with self._lock:
            self.cards = [card, *(c for c in self.cards if c is not card)]
        self._publish_takes()
        self._ensure_ticker()

    def _on_card_update(self, _card: JobCard) -> None:
        self._publish_takes()

    def _publish_takes(self) -> None:
        """The takes and the queue from the cards (any thread; unchanged lists send nothing)."""
        with self._lock:
            cards = list(self.cards)
            items = {card.job.local_id: card.item for card in cards}
            with self.hold_sync():      # one message (an unchanged trait is not in it)
                self.take_order = list(items)
                self.live_takes = {i: item for i, item in items.items() if not item["done"]}
                self.settled_takes = {i: item for i, item in items.items() if item["done"]}
                self.queue = queue_items([card.job for card in cards])
        self._refresh_snapshot()

    def _on_tick(self) -> None:
        """The ticker's second: every running card's elapsed time, then one message."""
        for card in self._running():
            card.tick()
        self._publish_takes()

    def _on_stop_tracking(self, local_id: str) -> None:
        """The queue's "stop tracking": ``Job.cancel`` (the relay keeps the paid job)."""
        card = next((c for c in self.cards if c.job.local_id == local_id), None)
        if card is not None:
            card.job.cancel()
            card.refresh()

    def _on_money(self, change: Any) -> None:
        """A take was charged or changed status: the spend, and the Generate label (a take
        that settles turns "Show the running take" into "Show the earlier take")."""
        self._refresh_spend()
        job = change["owner"]
        if change["name"] == "status" and job.done and not self._busy:
            if job is self._notice_job:
                self._notice_job = None
                self._news = (None, "error")   # "joined the take started…" is over
            self._refresh_form(*self._news)
