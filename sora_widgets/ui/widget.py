"""``SoraWidget``: a form and a gallery of job cards, built from stock ipywidgets 8 controls.

Like tqdm's ``notebook.py``, the UI only wraps the plain core: ``Studio.generate``
does the work and the one poller thread drives every ``Job``. Cards observe their
job and only *set widget traits* from that thread; nothing is displayed or printed
there (such output lands in whatever cell runs now).

The finished video goes into an ``Output`` widget's ``outputs``: JupyterLab renders
those with the notebook's rendermime, which turns the relative ``src`` that
``media.publish_video`` returns into ``/files/...``. An ``HTML`` widget would not
(a relative src there resolves to ``/lab/tree/...`` and 404s).

No widget holds the API key: labels and spend are derived from ``settings()`` at
each refresh, so saved widget state cannot leak it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import ipywidgets as widgets
from traitlets import All

from sora_widgets.core.catalog import catalogue, price_of
from sora_widgets.core.errors import ConfirmationRequired, SoraError
from sora_widgets.core.lifecycle import TERMINAL_ERROR_STATUSES, Status
from sora_widgets.core.models import ASPECT_RATIOS, VideoRequest
from sora_widgets.core.settings import (
    Settings,
    api_style,
    missing_key_problem,
    preferences,
    settings,
)
from sora_widgets.engine.job import Job
from sora_widgets.media.posters import poster_data_uri
from sora_widgets.media.publish import publish_video
from sora_widgets.studio.studio import Studio, default_studio
from sora_widgets.studio.sweeps import variants
from sora_widgets.ui.cards import (
    card_details_html,
    card_header_html,
    card_placeholder_html,
    card_status_html,
    card_video_html,
    image_preview_html,
    notice_html,
    panel_snapshot_html,
    panel_spend_html,
    panel_title_html,
    restart_html,
    snapshot_tile_html,
)
from sora_widgets.ui.display import Slot, display
from sora_widgets.ui.history import PanelHistory
from sora_widgets.ui.render import bar_style
from sora_widgets.ui.safe import http_url
from sora_widgets.ui.throttle import Throttle

__all__ = ["JobCard", "SoraWidget"]

log = logging.getLogger("sora_widgets.ui.widget")

CARD_WIDTH = "344px"
#: How often the elapsed time of running jobs is refreshed (a daemon thread, traits only).
TICK_SECONDS = 1.0
#: A card redraws for progress (and the ETA) at most this often; other changes at once.
PROGRESS_SECONDS = 1.0
_THROTTLED = frozenset({"progress", "eta_seconds"})
_RATIO_OPTIONS = [("16:9 landscape", "16:9"), ("9:16 portrait", "9:16")]


def _price(current: Settings, request: VideoRequest | None = None) -> float | None:
    """The catalogue's price of ``request`` (default: the model's default clip)."""
    try:
        return price_of(request or VideoRequest.create(
            "price", model=preferences.model_or(current)), current)
    except SoraError:
        return None


def _price_label(verb: str, current: Settings, request: VideoRequest | None = None) -> str:
    """'Generate ($0.90)' with a key, 'Generate (emulator, free)' without."""
    if current.uses_emulator:
        return f"{verb} (emulator, free)"
    price = _price(current, request)
    return verb if price is None else f"{verb} (${price:.2f})"


def _display_data(html: str) -> dict[str, Any]:
    """One ``text/html`` output for an ``Output`` widget's ``outputs`` trait."""
    return {"output_type": "display_data", "data": {"text/html": html, "text/plain": ""},
            "metadata": {}}


def _first_http_image(request: VideoRequest) -> str:
    """The image URL to put back in the form (a local file's data URI is too big for it)."""
    return next((url for url in request.images if http_url(url)), "")


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


class SoraWidget(widgets.VBox):  # type: ignore[misc]
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
             widgets.HBox([self.generate_button, self.confirm_button, self.notice],
                          layout=widgets.Layout(align_items="center")),
             self.spend_line],
            layout=widgets.Layout(max_width="760px"))
        form.add_class("sora-form")
        # Hidden by CSS until the kernel restarts; then it is all this dead panel can say.
        self.restart_notice = widgets.HTML(restart_html("panel"))
        self.restart_notice.add_class("sora-restart")
        kwargs.setdefault("layout", widgets.Layout(width="100%", max_width="1100px"))
        super().__init__([self.restart_notice, form, self.gallery], **kwargs)
        self.add_class("sora-widget")
        self.add_class("sora-live")
        self.add_class(f"sora-live-{self._uid}")
        self.history = PanelHistory(self)     # the "History" toggle, above the gallery
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

    def load(self, job: Job) -> None:
        """Put a job's settings back into the form (the "reuse prompt" button)."""
        self.prompt_input.value = job.prompt or ""
        self.ratio_input.value = job.aspect_ratio
        self.image_input.value = _first_http_image(job.request)
        self._offer_choices(settings())
        if job.request.size in [v for _, v in self.size_input.options]:
            self.size_input.value = job.request.size
        if job.request.duration in [v for _, v in self.seconds_input.options]:
            self.seconds_input.value = job.request.duration

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

    # -- the form -------------------------------------------------------------------------

    def _build_form(self, prompt: str, aspect_ratio: str, image: str) -> None:
        self.prompt_input = widgets.Textarea(
            value=prompt, rows=3, layout=widgets.Layout(width="100%"),
            placeholder="Describe the video: your prompt (or give a first-frame image below)")
        self.ratio_input = widgets.ToggleButtons(
            options=_RATIO_OPTIONS, value=aspect_ratio, style={"button_width": "120px"},
            tooltips=["landscape video", "portrait video"])
        self.image_input = widgets.Text(
            value=image, continuous_update=False, layout=widgets.Layout(flex="1 1 240px"),
            placeholder="image URL for the first frame (optional, https://…)")
        self.image_preview = widgets.HTML()
        # The style's choices (the catalogue's): shown only where there is a choice, so a
        # 12-s-only relay shows no length and a one-size-per-ratio model no size.
        self.seconds_input = widgets.Dropdown(options=[], description="length",
                                              layout=widgets.Layout(width="150px"))
        self.size_input = widgets.Dropdown(options=[("auto", "")], value="", description="size",
                                           layout=widgets.Layout(width="190px"))
        self.generate_button = widgets.Button(
            button_style="primary", icon="play", layout=widgets.Layout(width="auto"))
        self.notice = widgets.HTML()
        self.spend_line = widgets.HTML()
        self.prompt_input.add_class("sora-prompt-input")
        self.image_input.add_class("sora-image-input")
        self.generate_button.add_class("sora-generate")
        # Shown when the studio asks to confirm a call (new charges > SORA_CONFIRM_USD).
        self.confirm_button = widgets.Button(
            button_style="danger", icon="check",
            layout=widgets.Layout(width="auto", display="none"))
        self.confirm_button.add_class("sora-confirm")
        self._pending: list[VideoRequest] | None = None

    def _on_form_change(self, _change: Any) -> None:
        self._offer_confirm(None)      # what was to be confirmed is not the form any more
        self._refresh_form()

    def _offer_choices(self, current: Settings) -> None:
        """Length and size choices of the current style and model (hidden when single)."""
        try:
            entry = catalogue(current).entry(api_style(current), preferences.model_or(current))
        except SoraError:
            seconds: tuple[int, ...] = ()
            sizes: tuple[str, ...] = ()
            default = 0
        else:
            seconds, sizes = entry.seconds, entry.sizes_for(self.ratio_input.value)
            default = entry.default_seconds
        length = [(f"{n} s", n) for n in seconds]
        if list(self.seconds_input.options) != length:
            keep = self.seconds_input.value
            self.seconds_input.options = length
            if length:
                self.seconds_input.value = keep if keep in seconds else default
        shapes = [("auto", ""), *((size, size) for size in sizes)]
        if list(self.size_input.options) != shapes:
            keep = self.size_input.value
            self.size_input.options = shapes
            self.size_input.value = keep if keep in sizes else ""
        self.seconds_input.layout.display = None if len(seconds) > 1 else "none"
        self.size_input.layout.display = None if len(sizes) > 1 else "none"

    def _request(self, current: Settings) -> VideoRequest:
        """The form as a validated request; raises ``ValidationError`` naming the field."""
        image = self.image_input.value.strip() or None
        self._offer_choices(current)
        seconds = self.seconds_input.value if self.seconds_input.layout.display is None else None
        return VideoRequest.create(self.prompt_input.value, aspect_ratio=self.ratio_input.value,
                                   image=image, model=preferences.model_or(current),
                                   seconds=seconds, size=self.size_input.value or None)

    def _empty(self) -> bool:
        return not self.prompt_input.value.strip() and not self.image_input.value.strip()

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
            label = "Show the earlier result (no charge)"
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
        self.image_preview.value = image_preview_html(self.image_input.value)

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
        try:
            jobs = (self.studio.submit(requests[0], 1, force=force, confirm=confirm,
                                       parent_id=parent) if len(requests) == 1 else
                    self.studio.submit_many(requests, force=force, confirm=confirm,
                                            parent_id=parent))
        except ConfirmationRequired as exc:
            message, tone = self._offer_confirm(requests, exc), "warning"
        except SoraError as exc:
            message = str(exc)
        else:
            self.history.submitted()
            for other in reversed(jobs[1:]):    # a sweep: its first job ends up first
                self._show(other, cached=other.reused and not force)
            job = jobs[0]
            cached = job.reused and not force
            self._show(job, cached=cached)
            if len(jobs) > 1:
                reused = sum(1 for j in jobs if j.reused)
                message, tone = (f"{len(jobs)} jobs: {len(jobs) - reused} new, {reused} "
                                 "reused — no new charge for those", "info")
            elif cached and not job.done:
                message, tone = ("reused — no new charge: this request is already "
                                 "running; see its card", "info")
                self._notice_job = job   # the notice goes once that job settles
            elif cached:
                message, tone = ("reused — no new charge: the same request was made "
                                 "before; its card is first", "info")
        finally:
            self._busy = False
            self._refresh_spend()
            self._refresh_form(message, tone)

    def _offer_confirm(self, requests: list[VideoRequest] | None,
                       asked: ConfirmationRequired | None = None) -> str | None:
        """Show the Confirm button for a call the studio asked to confirm (None: hide it);
        the line to show under the form."""
        self._pending = requests if asked is not None else None
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

    # -- the saved view -------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """The live view, with short fallbacks (nbconvert shows them where the widget state
        is not saved: no ``SoraWidget(children=...`` repr; the snapshot below says it all)."""
        data: dict[str, Any] | None = super()._repr_mimebundle_(**kwargs)
        if data:
            data["text/plain"] = "SoraWidget: the live panel (it needs its running kernel)"
            data["text/html"] = "<div class='sora-panel-fallback'></div>"
        return data

    def _ipython_display_(self) -> None:
        """The live panel, then a plain ``text/html`` snapshot of its settled cards.

        The snapshot is what survives: reopened without the kernel, or exported with
        nbconvert, a notebook shows it (videos play from the copies published next to the
        notebook) where the widget can only say "model not found". It is replaced (same
        display id, in this cell) whenever a card settles; while the live panel is on the
        page, CSS hides it. Only job fields go into it: never a key."""
        from IPython import get_ipython

        display(self._repr_mimebundle_(), raw=True)
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

    def _on_card_update(self, _card: JobCard) -> None:
        self._refresh_snapshot()

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

    # -- elapsed time ---------------------------------------------------------------------

    def _ensure_ticker(self) -> None:
        with self._lock:
            if self._ticker is None and self._running() and not self._stop.is_set():
                self._ticker = threading.Thread(target=self._tick, daemon=True,
                                                name="sora-widgets-ticker")
                self._ticker.start()

    def _running(self) -> list[JobCard]:
        return [c for c in self.cards if not c.job.done and c.job.tracking]

    def _tick(self) -> None:
        """Refresh elapsed time once a second; stop when every job is done (or on close)."""
        while not self._stop.wait(TICK_SECONDS):
            with self._lock:
                running = self._running()
                if not running:
                    self._ticker = None
                    return
            for card in running:
                card.refresh_status()
        with self._lock:
            self._ticker = None


def _close_tree(widget: Any) -> None:
    """Close a widget and everything inside it (its comm and its entry in the registry)."""
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()
