"""The panel's form: prompt, ratio, the style's length, size and seed, first-frame image.

The values are the panel's synced traits (the browser sets them as the user types). Only
what the catalogue allows is offered (a 12-s-only relay shows no length, a model with one
size per ratio no size, a model without seeds no seed field); the form turns into a
validated ``VideoRequest`` or raises the ``ValidationError`` that names the field. No
money here: the panel asks the studio.
"""

from __future__ import annotations

from typing import Any

from sora_widgets.core.catalog import catalogue
from sora_widgets.core.errors import SoraError, ValidationError
from sora_widgets.core.models import VideoRequest
from sora_widgets.core.settings import Settings, api_style, preferences, settings
from sora_widgets.engine.job import Job
from sora_widgets.ui.panel.labels import first_http_image

__all__ = ["RATIO_CHOICES", "PanelForm"]

RATIO_CHOICES = [["16:9", "16:9 landscape"], ["9:16", "9:16 portrait"]]


class PanelForm:
    """The form's reading and its choices; mixed into ``SoraWidget`` (its traits)."""

    prompt: str
    aspect_ratio: str
    image: str
    seconds: int
    size: str
    seed: str
    choices: dict[str, Any]

    def load(self, job: Job) -> None:
        """Put a job's settings back into the form (the "reuse prompt" button)."""
        request = job.request
        self.prompt = job.prompt or ""
        self.aspect_ratio = job.aspect_ratio
        self.image = first_http_image(request)
        self.offer_choices(settings())
        if request.size in {value for value, _ in self.choices.get("sizes", [])}:
            self.size = request.size or ""
        if request.duration in {value for value, _ in self.choices.get("seconds", [])}:
            self.seconds = request.duration
        self.seed = "" if request.seed is None else str(request.seed)

    def offer_choices(self, current: Settings) -> None:
        """Length, size and seed of the current style and model (hidden where single)."""
        try:
            entry = catalogue(current).entry(api_style(current), preferences.model_or(current))
        except SoraError:
            seconds: tuple[int, ...] = ()
            sizes: tuple[str, ...] = ()
            default, seed = 0, False
        else:
            seconds, sizes = entry.seconds, entry.sizes_for(self.aspect_ratio)
            default, seed = entry.default_seconds, entry.seed
        choices = {
            "ratios": RATIO_CHOICES,
            "seconds": [[n, f"{n} s"] for n in seconds] if len(seconds) > 1 else [],
            "sizes": [["", "auto"], *([s, s] for s in sizes)] if len(sizes) > 1 else [],
            "seed": seed,
        }
        if choices != self.choices:
            self.choices = choices
        if seconds and self.seconds not in seconds:
            self.seconds = default
        if self.size and self.size not in sizes:
            self.size = ""

    def form_request(self, current: Settings) -> VideoRequest:
        """The form as a validated request; raises ``ValidationError`` naming the field."""
        self.offer_choices(current)
        return VideoRequest.create(
            self.prompt, aspect_ratio=self.aspect_ratio, image=self.image.strip() or None,
            model=preferences.model_or(current),
            seconds=self.seconds if self.choices["seconds"] else None,
            size=self.size or None, seed=self._seed())

    def _seed(self) -> int | None:
        text = self.seed.strip()
        if not text or not self.choices.get("seed"):
            return None
        try:
            return int(text)
        except ValueError:
            raise ValidationError(f"seed must be a whole number, not {text[:20]!r}") from None

    def empty(self) -> bool:
        """Nothing to generate from yet (no prompt, no image)."""
        return not self.prompt.strip() and not self.image.strip()
