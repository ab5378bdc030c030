"""The Generate button's state: its label with the studio's quote, whether it can be
pressed and why not (in words beside it), the Confirm offer, and the spend line.

The studio answers every money question (``Studio.quote``); these put its answer on the
panel's traits. Mixed into ``SoraWidget``; any thread (the spend and the label follow the
takes as they settle, on the engine's thread).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sora_widgets.core.errors import ConfirmationRequired, SoraError
from sora_widgets.core.models import VideoRequest
from sora_widgets.core.settings import Settings, missing_key_problem, settings
from sora_widgets.core.words import EMULATOR_BADGE, money
from sora_widgets.engine.job import Job
from sora_widgets.studio.sweeps import variants
from sora_widgets.ui import render
from sora_widgets.ui.panel.form import PanelForm
from sora_widgets.ui.panel.labels import (
    EARLIER_LABEL,
    EMPTY_HINT,
    RUNNING_LABEL,
    price,
    price_label,
)
from sora_widgets.ui.safe import http_url

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sora_widgets.studio.studio import Studio
    from sora_widgets.ui.panel.card import JobCard

__all__ = ["GenerateButton"]

log = logging.getLogger("sora_widgets.ui.panel")

#: How many of the newest journal jobs of the same prompt are looked at for a running twin.
TWIN_SEARCH = 20


class GenerateButton(PanelForm):
    """Generate's label, state and reason; the Confirm offer; the spend line."""

    cards: list[JobCard]
    generate_label: str
    generate_disabled: bool
    generate_tooltip: str
    reason: str
    reason_tone: str
    hint: str
    confirm_label: str
    confirm_tooltip: str
    image_preview: str
    spend: str
    _busy: bool
    _news: tuple[str | None, str]
    _pending: list[VideoRequest] | None

    if TYPE_CHECKING:
        @property
        def studio(self) -> Studio: ...

        def hold_trait_notifications(self) -> AbstractContextManager[None]: ...

    def _problem(self, current: Settings) -> tuple[str | None, str]:
        """Why Generate cannot be pressed now (or None), and the button's label: the
        studio's quote decides both (price, reuse, budget), never a rule of the panel's."""
        self.offer_choices(current)
        label = price_label("Generate", current)
        if self.empty():
            return "", label     # guidance (the hint), not an error, until the user acts
        try:
            request = self.form_request(current)
            label = price_label("Generate", current, request)
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
        """Label with the price, enabled state and the reason; re-reads settings each time.
        ``message``: what the last click did (kept until the form changes)."""
        self._news = (message, tone)
        try:
            current = settings()
        except SoraError as exc:
            self.generate_disabled = True
            self.reason, self.reason_tone = str(exc), "error"
            return
        problem, label = self._problem(current)
        with self.hold_trait_notifications():
            self.generate_label = label
            self.generate_disabled = self._busy or problem is not None
            self.generate_tooltip = problem or (
                "Describe the video first" if self.empty() else "Submit this request")
            self.reason = message or problem or ""
            self.reason_tone = tone if message else "error"
            # Disabled for want of a prompt: said in words beside the button, as guidance.
            self.hint = EMPTY_HINT if self.empty() and not message else ""
            self.image_preview = http_url(self.image.strip()) or ""

    def _offer_confirm(self, requests: list[VideoRequest] | None,
                       asked: ConfirmationRequired | None = None) -> str | None:
        """Show the Confirm button for a call the studio asked to confirm (None: hide it);
        the line to show beside Generate."""
        self._pending = requests if asked is not None else None
        if asked is None:
            self.confirm_label = self.confirm_tooltip = ""
            return None
        quote = asked.quote
        usd = getattr(quote, "new_usd", None)
        self.confirm_tooltip = getattr(quote, "text", "")
        self.confirm_label = f"Confirm: pay ${usd:.2f}" if usd is not None else "Confirm"
        return (f"{getattr(quote, 'text', 'this call')}: more than SORA_CONFIRM_USD for one "
                "call, so nothing was sent. Press Confirm to pay it, or change the prompt.")

    def _refresh_spend(self) -> None:
        """Session spend and budget (journal totals); may run on the poller thread."""
        try:
            current = settings()
            if current.uses_emulator:
                self.spend = (f"{EMULATOR_BADGE} · set SORA_API_KEY to use the relay "
                              f"({money(price(current) or 0.0)} per video)")
                return
            spend = self.studio.spend()
            self.spend = render.spend_text(spend["session"], spend["all_time"],
                                           current.budget_usd)
        except Exception:  # the spend line must never break a poll or a click
            log.exception("could not refresh the spend line")

    def _running_twin(self, request: VideoRequest, *,
                      journal: bool = False) -> Job | None:
        """A take of this very request still running: one of this panel's cards, or (with
        ``journal``: the studio quoted it as reused) one started elsewhere in the kernel."""
        fingerprint = request.fingerprint()
        for card in list(self.cards):
            if not card.job.done and card.job.request.fingerprint() == fingerprint:
                return card.job
        if journal:
            try:
                recent = self.studio.jobs(TWIN_SEARCH, search=request.prompt or None)
                return next((job for job in recent if not job.done
                             and job.request.fingerprint() == fingerprint), None)
            except SoraError:
                return None
        return None
