"""``SoraWidget``: the panel — the form, the takes (newest first) and History.

Like tqdm's ``notebook.py``, the UI only wraps the plain core: the studio does the work
(every money question is its ``quote`` / ``submit``) and the one poller thread drives every
``Job``. Cards observe their job and only set widget traits from that thread.

The takes sit right under the form, so a new take's card (its progress, then its video)
lands next to the Generate button; History comes after them. No widget holds the API
key: labels and spend are derived from ``settings()`` at each refresh.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from sora_widgets.core.errors import ConfirmationRequired, SoraError
from sora_widgets.core.models import ASPECT_RATIOS, VideoRequest
from sora_widgets.core.settings import Settings, missing_key_problem, settings
from sora_widgets.engine.job import Job
from sora_widgets.studio.studio import Studio, default_studio
from sora_widgets.studio.sweeps import variants
from sora_widgets.ui.cards import (
    image_preview_html,
    notice_html,
    panel_spend_html,
    panel_title_html,
    restart_html,
)
from sora_widgets.ui.display import Slot
from sora_widgets.ui.panel.card import CARD_WIDTH, JobCard
from sora_widgets.ui.panel.form import PanelForm
from sora_widgets.ui.panel.history import PanelHistory
from sora_widgets.ui.panel.labels import (
    EARLIER_LABEL,
    EMPTY_HINT,
    RUNNING_LABEL,
    hint_html,
    joined_words,
)
from sora_widgets.ui.panel.labels import price as _price
from sora_widgets.ui.panel.labels import price_label as _price_label
from sora_widgets.ui.panel.queue import QueueView, queue_items
from sora_widgets.ui.panel.saved import SavedView
from sora_widgets.ui.panel.ticker import Ticking

__all__ = ["SoraWidget"]

log = logging.getLogger("sora_widgets.ui.panel")

#: How many of the newest journal jobs of the same prompt are looked at for a running twin.
_TWIN_SEARCH = 20


class SoraWidget(Ticking, SavedView, PanelForm, widgets.VBox):  # type: ignore[misc]
    """The panel: prompt, aspect ratio, image URL, Generate; one card per job, newest first.

    ``SoraWidget(prompt=..., aspect_ratio=..., image=...)`` pre-fills the form;
    ``SoraWidget(jobs=[...])`` or :meth:`from_job` shows past jobs (after a restart).
    """

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
        self._lock = threading.RLock()
        self._ticker: threading.Thread | None = None
        #: Ties the live panel to its static snapshot output (see ``_ipython_display_``).
        self._uid = uuid.uuid4().hex[:12]
        self._snapshots: list[Slot] = []
        self._build_form(prompt or "", aspect_ratio, image or "")
        self.gallery = widgets.GridBox(layout=widgets.Layout(
            grid_template_columns=f"repeat(auto-fill, {CARD_WIDTH})", grid_gap="12px",
            align_items="flex-start", margin="10px 0 0 0"))
        self.gallery.add_class("sora-gallery")
        form = widgets.VBox(
            [widgets.HTML(panel_title_html()), self.prompt_input, widgets.HBox(
                [self.ratio_input, self.size_input, self.seconds_input, self.image_input,
                 self.image_preview],
                layout=widgets.Layout(align_items="center", flex_flow="row wrap")),
             widgets.HBox([self.generate_button, self.confirm_button, self.hint,
                           self.notice],
                          layout=widgets.Layout(align_items="center")),
             self.spend_line],
            layout=widgets.Layout(max_width="760px"))
        form.add_class("sora-form")
        # Hidden by CSS until the kernel restarts; then it is all this dead panel can say.
        self.restart_notice = widgets.HTML(restart_html("panel"))
        self.restart_notice.add_class("sora-restart")
        kwargs.setdefault("layout", widgets.Layout(width="100%", max_width="1100px"))
        self.gallery.add_class("sora-takes")
        # Right under the form: the running takes, and the keyboard (Ctrl/Cmd+Enter, Esc).
        self.queue = QueueView(on_generate=self._on_key_generate,
                               on_dismiss=self._on_dismiss, on_cancel=self._on_stop_tracking)
        super().__init__([self.restart_notice, form, self.queue, self.gallery], **kwargs)
        self.add_class("sora-widget")
        self.add_class("sora-panel")
        self.add_class("sora-live")
        self.add_class(f"sora-live-{self._uid}")
        self.history = PanelHistory(self)     # the "History" toggle, below the takes
        for control in (self.prompt_input, self.ratio_input, self.image_input,
                        self.size_input, self.seconds_input):
            control.observe(self._on_form_change, names="value")
        self.generate_button.on_click(self._on_generate)
        self.confirm_button.on_click(self._on_confirm)
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

    def close(self) -> None:
        """Stop the ticker and the job observers, then close every child widget."""
        self._stop.set()
        for card in self.cards:
            card.detach()
            with contextlib.suppress(ValueError):
                card.job.unobserve(self._on_money, names=["charge", "status"])
        for child in self.children:
            _close_tree(child)
        super().close()

    def _problem(self, current: Settings) -> tuple[str | None, str]:
        """Why Generate cannot be pressed now (or None), and the button's label: the
        studio's quote decides both (price, reuse, budget), never a rule of the panel's."""
        self._offer_choices(current)
        label = _price_label("Generate", current)
        if self._empty():
            return "", label     # guidance (the placeholder), not an error, until the user acts
        try:
            request = self._request(current)
            label = _price_label("Generate", current, request)
            problem = missing_key_problem(current)
            if problem:
                return problem, label
            requests = variants(request)      # a {a|b} sweep: one quote for the whole call
            # (confirm=True: a budget disables the button; a confirmation is asked on click)
            quote = (self.studio.quote(request) if len(requests) == 1
                     else self.studio.quote_many(requests, confirm=True))
        except SoraError as exc:
            return str(exc), label
        if len(requests) > 1:
            label = f"Generate {len(requests)} · {quote.text}"
        elif quote.reused:
            label = RUNNING_LABEL if self._running_twin(request, journal=True) else EARLIER_LABEL
        return quote.blocked, label

    def _refresh_form(self, message: str | None = None, tone: str = "error") -> None:
        """Label with the price, enabled state and the reason; re-reads settings each time."""
        try:
            current = settings()
        except SoraError as exc:
            self.generate_button.disabled = True
            self.notice.value = notice_html(str(exc))
            return
        problem, label = self._problem(current)
        self.generate_button.description = label
        self.generate_button.disabled = self._busy or problem is not None
        self.generate_button.tooltip = problem or (
            "Describe the video first" if self._empty() else "Submit this request")
        self.notice.value = notice_html(message or problem, tone if message else "error")
        # Disabled for want of a prompt: said in words beside the button, as guidance.
        self.hint.value = (hint_html(EMPTY_HINT) if self._empty() and not message else "")
        self.image_preview.value = image_preview_html(self.image_input.value)

    def _on_form_change(self, _change: Any) -> None:
        self._offer_confirm(None)      # what was to be confirmed is not the form any more
        self._refresh_form()

    # -- submitting -----------------------------------------------------------------------

    def _on_generate(self, _button: Any) -> None:
        if self._busy or self.generate_button.disabled:
            return   # a second click that was queued before the button went disabled
        try:
            current = settings()
            request = self._request(current)
        except SoraError as exc:
            self._refresh_form(str(exc))
            return
        try:
            requests = variants(request)
        except SoraError as exc:
            self._refresh_form(str(exc))
            return
        self._submit(requests, force=False)

    def _submit(self, request: VideoRequest | list[VideoRequest], *, force: bool,
                confirm: bool = False) -> None:
        self._busy = True
        self.generate_button.disabled = True
        message, tone = None, "error"
        requests = request if isinstance(request, list) else [request]
        parent = self.history.parent_id      # "vary": the next submit records its parent
        twin = None if force or len(requests) > 1 else self._running_twin(requests[0])
        try:
            if twin is not None and not self.studio.quote(requests[0]).reused:
                twin = None     # the studio would not reuse it (another relay now): submit
            if twin is not None:
                # A double-click, or the same request again while its take runs: the one
                # paid take, joined here (the studio would reuse it; nothing new is asked).
                jobs = [twin]
            else:
                jobs = (self.studio.submit(requests[0], 1, force=force, confirm=confirm,
                                           parent_id=parent) if len(requests) == 1 else
                        self.studio.submit_many(requests, force=force, confirm=confirm,
                                                parent_id=parent))
        except ConfirmationRequired as exc:
            message, tone = self._offer_confirm(requests, exc), "warning"
        except SoraError as exc:
            message = str(exc)
        else:
            # "reused" only for a take finished before this click; one still running was
            # joined: its card keeps its own charge line (one take, charged once).
            joined = {j.local_id for j in jobs
                      if j is twin or (j.reused and not force and not j.done)}
            if twin is None:
                self.history.submitted()
            for other in reversed(jobs[1:]):    # a sweep: its first job ends up first
                self._show(other, cached=other.reused and not force
                           and other.local_id not in joined)
            job = jobs[0]
            cached = job.reused and not force and job.local_id not in joined
            self._show(job, cached=cached)
            if len(jobs) > 1:
                # The quote's words ("2 reused free"); the running ones among them joined.
                reused = sum(1 for j in jobs if j.reused and not force)
                message, tone = (f"{len(jobs)} jobs: {len(jobs) - reused} new, {reused} "
                                 "reused — no new charge for those"
                                 + (f" ({len(joined)} still running: joined)"
                                    if joined else ""), "info")
            elif job.local_id in joined:
                message, tone = joined_words(job), "info"
                self._notice_job = job   # the notice goes once that job settles
            elif cached:
                message, tone = ("reused — no new charge: the same request was made "
                                 "before; its card is first", "info")
        finally:
            self._busy = False
            self._refresh_spend()
            self._refresh_form(message, tone)

    def _running_twin(self, request: VideoRequest, *, journal: bool = False) -> Job | None:
        """A take of this very request still running: one of this panel's cards, or (with
        ``journal``: the studio quoted it as reused) one started elsewhere in the kernel."""
        fingerprint = request.fingerprint()
        for card in list(self.cards):
            if not card.job.done and card.job.request.fingerprint() == fingerprint:
                return card.job
        if journal:
            try:
                recent = self.studio.jobs(_TWIN_SEARCH, search=request.prompt or None)
                return next((job for job in recent if not job.done
                             and job.request.fingerprint() == fingerprint), None)
            except SoraError:
                return None
        return None

    def _offer_confirm(self, requests: list[VideoRequest] | None,
                       asked: ConfirmationRequired | None = None) -> str | None:
        """Show the Confirm button for a call the studio asked to confirm (None: hide it);
        the line to show under the form."""
        self._pending = requests if asked is not None else None
        self.queue.confirming = asked is not None
        if asked is None:
            self.confirm_button.layout.display = "none"
            return None
        quote = asked.quote
        usd = getattr(quote, "new_usd", None)
        self.confirm_button.description = (f"Confirm: pay ${usd:.2f}" if usd is not None
                                           else "Confirm")
        self.confirm_button.tooltip = getattr(quote, "text", "")
        self.confirm_button.layout.display = None
        return (f"{getattr(quote, 'text', 'this call')}: more than SORA_CONFIRM_USD for one "
                "call, so nothing was sent. Press Confirm to pay it, or change the prompt.")

    def _on_confirm(self, _button: Any) -> None:
        pending = self._pending
        if self._busy or not pending:
            return
        self._offer_confirm(None)
        self._submit(pending, force=False, confirm=True)

    def _on_regenerate(self, card: JobCard) -> None:
        """'regenerate anyway': the user chose to pay again for an identical request."""
        if self._busy or not card.cached:
            return
        card.cached = False   # one click, one new job
        card.refresh()
        self._submit(card.job.request, force=True)

    def _on_reuse(self, card: JobCard) -> None:
        self.load(card.job)

    def _on_continue(self, card: JobCard) -> None:
        """'continue': a new clip from the card's last frame, with the form's prompt (the
        studio quotes, checks the budget and records the parent)."""
        if self._busy:
            return
        prompt = self.prompt_input.value.strip()
        if not prompt:
            self._refresh_form("write what happens next in the prompt box, then press "
                               "'continue' on the card again", "info")
            return
        self._busy = True
        self.generate_button.disabled = True
        message, tone = None, "error"
        try:
            job = self.studio.continue_from(card.job, prompt)
        except SoraError as exc:
            message = str(exc)
        else:
            self._show(job, cached=job.reused)
            if job.reused:
                message, tone = ("same continuation as before: its result is shown first "
                                 "(no new charge)", "info")
        finally:
            self._busy = False
            self._refresh_spend()
            self._refresh_form(message, tone)

    # -- the gallery ----------------------------------------------------------------------

    def _resolve(self, jobs: Iterable[Job | str]) -> list[Job]:
        resolved = [job if isinstance(job, Job) else self.studio.get(job) for job in jobs]
        return sorted(resolved, key=lambda job: job.created_at)

    def _show(self, job: Job, *, cached: bool = False) -> None:
        """Put the job's card first (a new one, or the existing one for a cached result)."""
        card = next((c for c in self.cards if c.job is job), None)
        if card is None:
            card = JobCard(job, root=self._root, on_reuse=self._on_reuse,
                           on_regenerate=self._on_regenerate, on_continue=self._on_continue,
                           on_update=self._on_card_update)
            job.observe(self._on_money, names=["charge", "status"])
            self.studio.track(job)
        card.cached = card.cached or cached
        card.refresh()
        self._bring_to_front(card)
        self._ensure_ticker()

    def _bring_to_front(self, card: JobCard) -> None:
        with self._lock:
            self.cards = [card, *(c for c in self.cards if c is not card)]
            self.gallery.children = tuple(self.cards)
        self._refresh_snapshot()
        self._refresh_queue()

    def _on_card_update(self, _card: JobCard) -> None:
        self._refresh_snapshot()
        self._refresh_queue()

    def _refresh_queue(self) -> None:
        """The queue's items from the cards (any thread; an unchanged list sends nothing)."""
        with self._lock:
            jobs = [card.job for card in self.cards]
        self.queue.items = queue_items(jobs)

    # -- the keyboard and the queue's buttons ------------------------------------------------

    def _on_key_generate(self, prompt: str | None) -> None:
        """Ctrl/Cmd+Enter in the prompt: what the prompt shows, then Generate's own click."""
        if prompt is not None and prompt != self.prompt_input.value:
            self.prompt_input.value = prompt
        self._on_generate(None)

    def _on_dismiss(self) -> None:
        """Escape: the confirmation goes (nothing was sent)."""
        if self._pending is not None:
            self._offer_confirm(None)
            self._refresh_form()

    def _on_stop_tracking(self, local_id: str) -> None:
        """The queue's "stop tracking": ``Job.cancel`` (the relay keeps the paid job)."""
        card = next((c for c in self.cards if c.job.local_id == local_id), None)
        if card is not None:
            card.job.cancel()
            card.refresh()
            self._refresh_queue()

    def _on_money(self, change: Any) -> None:
        self._refresh_spend()
        job = self._notice_job
        if job is not None and change["owner"] is job and job.done:
            self._notice_job = None
            self._refresh_form()

    def _refresh_spend(self) -> None:
        """Session spend and budget (journal totals); may run on the poller thread."""
        try:
            current = settings()
            price = _price(current) or 0.0
            session = all_time = None
            if not current.uses_emulator:
                spend = self.studio.spend()
                session, all_time = spend["session"], spend["all_time"]
            self.spend_line.value = panel_spend_html(session, all_time, current.budget_usd,
                                                     current.uses_emulator, price)
        except Exception:  # the spend line must never break a poll or a click
            log.exception("could not refresh the spend line")


def _close_tree(widget: Any) -> None:
    """Close a widget and everything inside it (its comm and its entry in the registry)."""
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()
