"""The panel's form: prompt, ratio, the style's length and size choices, first-frame image.

Only what the catalogue allows is offered (a 12-s-only relay shows no length, a model with
one size per ratio no size); the form turns into a validated ``VideoRequest`` or raises
the ``ValidationError`` that names the field. No money here: the panel asks the studio.
"""

from __future__ import annotations

import ipywidgets as widgets

from sora_widgets.core.catalog import catalogue
from sora_widgets.core.errors import SoraError
from sora_widgets.core.models import VideoRequest
from sora_widgets.core.settings import Settings, api_style, preferences, settings
from sora_widgets.engine.job import Job
from sora_widgets.ui.panel.labels import first_http_image as _first_http_image

__all__ = ["PanelForm"]

_RATIO_OPTIONS = [("16:9 landscape", "16:9"), ("9:16 portrait", "9:16")]


class PanelForm:
    """The form's controls and their reading; mixed into ``SoraWidget``."""

    prompt_input: widgets.Textarea
    ratio_input: widgets.ToggleButtons
    image_input: widgets.Text
    image_preview: widgets.HTML
    seconds_input: widgets.Dropdown
    size_input: widgets.Dropdown
    generate_button: widgets.Button
    confirm_button: widgets.Button
    notice: widgets.HTML
    hint: widgets.HTML
    spend_line: widgets.HTML
    _pending: list[VideoRequest] | None

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
        self.notice = widgets.HTML()      # beside Generate: why it is disabled, or news
        self.hint = widgets.HTML()        # beside Generate: what to do first (muted)
        self.hint.add_class("sora-generate-hint")
        self.notice.add_class("sora-generate-reason")
        self.spend_line = widgets.HTML()
        self.prompt_input.add_class("sora-prompt-input")
        self.image_input.add_class("sora-image-input")
        self.ratio_input.add_class("sora-ratio-input")
        self.generate_button.add_class("sora-generate")
        # Shown when the studio asks to confirm a call (new charges > SORA_CONFIRM_USD).
        self.confirm_button = widgets.Button(
            button_style="danger", icon="check",
            layout=widgets.Layout(width="auto", display="none"))
        self.confirm_button.add_class("sora-confirm")
        self._pending: list[VideoRequest] | None = None

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
