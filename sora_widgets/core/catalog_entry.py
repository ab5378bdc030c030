"""The catalogue's pieces: what a wire style can carry, one model's entry, its price rule,
its retirement, and the calendar day retirements are judged on.

Split from :mod:`sora_widgets.core.catalog` (which builds and loads the catalogue) so each
file keeps one job. Everything here is pure data and arithmetic.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from sora_widgets.core.errors import ValidationError
from sora_widgets.core.money import cents
from sora_widgets.core.settings import API_STYLES

__all__ = ["CATALOGUE_STYLES", "RETIREMENT_WARNING_DAYS", "ModelEntry", "Price", "Resolved",
           "StyleRules", "ratio_of", "style_rules", "today", "use_today"]

#: Within this many days of a model's retirement every quote says so.
RETIREMENT_WARNING_DAYS = 30
SIZE = re.compile(r"([1-9][0-9]{1,4})x([1-9][0-9]{1,4})")


@dataclass(frozen=True)
class StyleRules:
    """What a wire style's request can carry at all (whatever the model)."""

    #: The style has a ``size`` field (otherwise the shape is the aspect ratio).
    sizes: bool
    #: A prompt is required (an image alone is not enough).
    needs_prompt: bool
    #: How many first-frame images one request can carry (None: no limit of the style).
    max_images: int | None
    #: The name of the length field on the wire.
    seconds_field: str


_RULES = {
    "artifex": StyleRules(sizes=False, needs_prompt=False, max_images=None,
                          seconds_field="duration"),
    "openai": StyleRules(sizes=True, needs_prompt=True, max_images=1,
                         seconds_field="seconds"),
    "router": StyleRules(sizes=False, needs_prompt=True, max_images=1,
                         seconds_field="duration"),
}


#: The styles the catalogue describes: the wire styles (``API_STYLES``) and ``router``,
#: whose models are listed and checked even where its wire is not built in yet.
CATALOGUE_STYLES = tuple(dict.fromkeys((*API_STYLES, *_RULES)))


def style_rules(style: str) -> StyleRules:
    """The rules of ``style``; a ValidationError names the styles there are."""
    rules = _RULES.get(style)
    if rules is None:
        raise ValidationError(f"style: must be one of {', '.join(CATALOGUE_STYLES)}, not "
                              f"{str(style)[:40]!r}", field="style")
    return rules


def ratio_of(size: str) -> str:
    """The aspect ratio a ``WxH`` size stands for (landscape 16:9, portrait 9:16)."""
    match = SIZE.fullmatch(size)
    if match is None:
        raise ValidationError(f"size: must look like 1280x720, not {size[:20]!r}", field="size")
    width, height = int(match.group(1)), int(match.group(2))
    return "16:9" if width >= height else "9:16"


# -- the day retirements are judged on (injectable: tests move it) ---------------------------

_today_lock = threading.Lock()
_fixed_today: list[date] = []


def today() -> date:
    """Today in UTC, or the day :func:`use_today` set (tests)."""
    with _today_lock:
        if _fixed_today:
            return _fixed_today[-1]
    return datetime.now(timezone.utc).date()


@contextmanager
def use_today(day: date) -> Iterator[date]:
    """Judge retirements as if it were ``day`` inside the block (for tests and demos)."""
    with _today_lock:
        _fixed_today.append(day)
    try:
        yield day
    finally:
        with _today_lock:
            _fixed_today.remove(day)


@dataclass(frozen=True)
class Price:
    """A price rule: ``usd`` per clip or per second of video, ``by_size`` overriding it
    for a size (``WxH``) or a resolution (``1080p``)."""

    per: str
    usd: float
    by_size: Mapping[str, float] = field(default_factory=dict)

    def of(self, shape: str | None, seconds: int) -> float:
        unit = self.by_size.get(shape or "", self.usd)
        return cents(unit * (seconds if self.per == "second" else 1))   # never down to $0

    def describe(self) -> str:
        unit = "clip" if self.per == "clip" else "s"
        text = f"${self.usd:.2f}/{unit}"
        extra = ", ".join(f"${usd:.2f}/{unit} at {size}" for size, usd in self.by_size.items())
        return f"{text} ({extra})" if extra else text


@dataclass(frozen=True)
class ModelEntry:
    """One model of one style: its shapes, lengths, options, price rule and retirement."""

    style: str
    model: str
    #: Sizes (``WxH``) for a style with sizes, aspect ratios otherwise.
    shapes: tuple[str, ...]
    seconds: tuple[int, ...]
    default_seconds: int
    price: Price
    #: ``resolution`` values the model takes (empty: the field is not sent at all).
    resolutions: tuple[str, ...] = ()
    #: The model takes a ``seed`` / ``generate_audio`` / a last-frame image.
    seed: bool = False
    audio: bool = False
    last_frame: bool = False
    #: The style has a remix / an extension endpoint for this model.
    remix: bool = False
    extend: bool = False
    #: The day the vendor stops serving it (None: not announced), and what it named instead.
    retires: date | None = None
    successor: str | None = None

    @property
    def ratios(self) -> tuple[str, ...]:
        if not style_rules(self.style).sizes:
            return self.shapes
        return tuple(dict.fromkeys(ratio_of(s) for s in self.shapes))

    def sizes_for(self, ratio: str) -> tuple[str, ...]:
        """The sizes of one aspect ratio, in catalogue order (empty for a ratio style)."""
        if not style_rules(self.style).sizes:
            return ()
        return tuple(s for s in self.shapes if ratio_of(s) == ratio)

    def retired(self, day: date | None = None) -> bool:
        """Past its retirement day (on that day it is gone)."""
        return self.retires is not None and (day or today()) >= self.retires

    def _instead(self) -> str:
        return (f"successor: {self.successor}" if self.successor
                else "no successor was named; pick another model (sw.models())")

    def retirement(self, day: date | None = None) -> str | None:
        """What a quote says about the retirement: within 30 days or after it; else None."""
        if self.retires is None:
            return None
        left = (self.retires - (day or today())).days
        if left <= 0:
            return (f"{self.model} on the {self.style} style was retired on "
                    f"{self.retires.isoformat()} ({self._instead()})")
        if left <= RETIREMENT_WARNING_DAYS:
            return (f"{self.model} on the {self.style} style retires on "
                    f"{self.retires.isoformat()}, in {left} day{'s' if left != 1 else ''} "
                    f"({self._instead()})")
        return None

    def check_alive(self, day: date | None = None) -> ModelEntry:
        """This entry, or a ValidationError naming the successor once it is retired: a
        dead model is never paid (``force`` does not change that; a catalogue file that
        moves or clears ``retires`` does)."""
        if self.retired(day):
            raise ValidationError(
                f"model: {self.retirement(day)}; nothing was sent (a catalogue file "
                "(SORA_CATALOG) that sets a later \"retires\" for it lets it be sent)",
                field="model")
        return self


@dataclass(frozen=True)
class Resolved:
    """A request's shape checked against the catalogue, its defaults filled in."""

    entry: ModelEntry
    aspect_ratio: str
    size: str | None
    seconds: int

    @property
    def price_usd(self) -> float:
        return self.entry.price.of(self.size or self.aspect_ratio, self.seconds)
