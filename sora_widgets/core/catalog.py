"""The model catalogue, as data: per wire style and model, what may be asked and its price.

Relays disagree on what a model can do and on how it is billed, so none of that is code:

* ``artifex`` (the seed's relay): ``sora-2``, aspect ratio 16:9 or 9:16, 12 s only, $0.90
  per clip, charged at submit;
* ``openai`` (OpenAI-shaped gateways): ``sora-2`` at 1280x720 / 720x1280, ``sora-2-pro`` also
  at 1792x1024 / 1024x1792, 4, 8 or 12 s, billed per second of video ($0.10/s for sora-2,
  $0.30/s for sora-2-pro at 720p, $0.50/s at 1792x1024).

A user file overrides or extends it: ``SORA_CATALOG`` (a path), else
``$SORA_WIDGETS_HOME/catalog.json`` or ``catalog.toml``, in the shape of :data:`BUILTIN`::

    {"openai": {"sora-2": {"price": {"per": "second", "usd": 0.12}},
                "veo-3": {"sizes": ["1280x720"], "seconds": [8],
                          "price": {"per": "clip", "usd": 3.20}}}}

An entry named there replaces the fields it gives, a new one must give them all.
``SORA_PRICE_USD`` replaces every price with one flat price per clip.

A request outside the catalogue is refused before anything is sent, the allowed values
named (:meth:`Catalogue.resolve`). The price of a request has one rule, :func:`price_of`:
quotes, budgets and the spend recorded in the journal all use it.
"""

from __future__ import annotations

import importlib
import json
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sora_widgets.core.errors import ValidationError
from sora_widgets.core.money import cents
from sora_widgets.core.settings import API_STYLES, Settings, settings

if TYPE_CHECKING:
    from sora_widgets.core.models import VideoRequest

__all__ = [
    "BUILTIN",
    "Catalogue",
    "ModelEntry",
    "Price",
    "Resolved",
    "StyleRules",
    "catalogue",
    "price_of",
    "ratio_of",
    "style_rules",
]

#: The catalogue shipped with the package (the user file has the same shape).
BUILTIN: dict[str, dict[str, dict[str, Any]]] = {
    "artifex": {
        "sora-2": {"ratios": ["16:9", "9:16"], "seconds": [12],
                   "price": {"per": "clip", "usd": 0.90}},
    },
    "openai": {
        "sora-2": {"sizes": ["1280x720", "720x1280"], "seconds": [4, 8, 12],
                   "default_seconds": 4, "price": {"per": "second", "usd": 0.10}},
        "sora-2-pro": {"sizes": ["1280x720", "720x1280", "1792x1024", "1024x1792"],
                       "seconds": [4, 8, 12], "default_seconds": 4,
                       "price": {"per": "second", "usd": 0.30,
                                 "by_size": {"1792x1024": 0.50, "1024x1792": 0.50}}},
    },
}

_SIZE = re.compile(r"([1-9][0-9]{1,4})x([1-9][0-9]{1,4})")
#: A dated snapshot of a model (``sora-2-2025-10-06``) is priced and checked as the model.
_SNAPSHOT = re.compile(r"(?P<family>.+)-\d{4}-\d{2}-\d{2}")
_FILE_NAMES = ("catalog.json", "catalog.toml")


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
}


def style_rules(style: str) -> StyleRules:
    """The rules of ``style``; a ValidationError names the styles there are."""
    rules = _RULES.get(style)
    if rules is None:
        raise ValidationError(f"style: must be one of {', '.join(API_STYLES)}, not "
                              f"{str(style)[:40]!r}", field="style")
    return rules


def ratio_of(size: str) -> str:
    """The aspect ratio a ``WxH`` size stands for (landscape 16:9, portrait 9:16)."""
    match = _SIZE.fullmatch(size)
    if match is None:
        raise ValidationError(f"size: must look like 1280x720, not {size[:20]!r}", field="size")
    width, height = int(match.group(1)), int(match.group(2))
    return "16:9" if width >= height else "9:16"


@dataclass(frozen=True)
class Price:
    """A price rule: ``usd`` per clip or per second of video, ``by_size`` overriding it."""

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
    """One model of one style: its shapes, its lengths, its price rule."""

    style: str
    model: str
    #: Sizes (``WxH``) for a style with sizes, aspect ratios otherwise.
    shapes: tuple[str, ...]
    seconds: tuple[int, ...]
    default_seconds: int
    price: Price

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


def _listing(values: tuple[object, ...]) -> str:
    return ", ".join(str(v) for v in values)


@dataclass(frozen=True)
class Catalogue:
    """Every known (style, model); where a value came from is kept for error messages."""

    entries: Mapping[tuple[str, str], ModelEntry]
    source: str = "the built-in catalogue"

    def models(self, style: str) -> tuple[str, ...]:
        return tuple(model for (s, model) in self.entries if s == style)

    def entry(self, style: str, model: str) -> ModelEntry:
        """The entry of ``model`` in ``style`` (a dated snapshot as its family), or a
        ValidationError naming the models there are."""
        style_rules(style)
        found = self.entries.get((style, model))
        if found is None:
            snapshot = _SNAPSHOT.fullmatch(model)
            if snapshot is not None:
                found = self.entries.get((style, snapshot.group("family")))
        if found is None:
            known = self.models(style)
            raise ValidationError(
                f"model: {model[:60]!r} is not in the catalogue of the {style} style; allowed: "
                f"{_listing(known) or 'none'} (add it to {_user_file_hint()}); nothing was sent",
                field="model")
        return found

    def resolve(self, style: str, model: str, *, aspect_ratio: str | None, size: str | None,
                seconds: int | None, seconds_name: str = "seconds") -> Resolved:
        """Check a request's shape and length for ``model``; fill in the defaults (the
        size of a ratio, the style's default length). Errors name the allowed values."""
        entry = self.entry(style, model)
        where = f"{model} on the {style} style"
        if seconds is None:
            seconds = entry.default_seconds
        elif seconds not in entry.seconds:
            only = (f"makes {entry.seconds[0]} s videos only" if len(entry.seconds) == 1
                    else f"takes {_listing(entry.seconds)} s")
            raise ValidationError(f"{seconds_name}: {where} {only}, not {seconds}; nothing "
                                  "was sent", field=seconds_name)
        if not style_rules(style).sizes:
            if size is not None:
                raise ValidationError(
                    f"size: the {style} style has no size; give aspect_ratio "
                    f"({_listing(entry.shapes)}) instead; nothing was sent", field="size")
            ratio = aspect_ratio or entry.shapes[0]
            if ratio not in entry.shapes:
                raise ValidationError(f"aspect_ratio: {where} takes {_listing(entry.shapes)}, "
                                      f"not {ratio[:20]!r}; nothing was sent",
                                      field="aspect_ratio")
            return Resolved(entry, ratio, None, seconds)
        if size is None:
            ratio = aspect_ratio or "16:9"
            choices = entry.sizes_for(ratio)
            if not choices:
                raise ValidationError(f"aspect_ratio: {where} has no {ratio} size (sizes: "
                                      f"{_listing(entry.shapes)}); nothing was sent",
                                      field="aspect_ratio")
            return Resolved(entry, ratio, choices[0], seconds)
        if size not in entry.shapes:
            raise ValidationError(f"size: {where} takes {_listing(entry.shapes)}, not "
                                  f"{size[:20]!r}; nothing was sent", field="size")
        ratio = ratio_of(size)
        if aspect_ratio is not None and aspect_ratio != ratio:
            raise ValidationError(f"aspect_ratio: {aspect_ratio} does not match size {size} "
                                  f"({ratio}); give one of them; nothing was sent",
                                  field="aspect_ratio")
        return Resolved(entry, ratio, size, seconds)


# -- building a catalogue from data -----------------------------------------------------------


def _problem(source: str, where: str, what: str) -> ValidationError:
    return ValidationError(f"catalogue {source}: {where}: {what}", field="catalog")


def _entry(style: str, model: str, data: Mapping[str, Any], base: ModelEntry | None,
           source: str) -> ModelEntry:
    where = f"{style}.{model}"
    if not isinstance(data, Mapping):
        raise _problem(source, where, "must be a table/object")
    unknown = set(data) - {"ratios", "sizes", "seconds", "default_seconds", "price"}
    if unknown:
        raise _problem(source, where, f"unknown field(s) {', '.join(sorted(unknown))}")
    rules = style_rules(style)
    shape_key, other_key = ("sizes", "ratios") if rules.sizes else ("ratios", "sizes")
    if other_key in data:
        raise _problem(source, where, f"the {style} style takes {shape_key!r}, not {other_key!r}")
    shapes = base.shapes if base is not None else None
    if shape_key in data:
        shapes = _strings(data[shape_key], source, f"{where}.{shape_key}")
        for shape in shapes:
            if rules.sizes and _SIZE.fullmatch(shape) is None:
                raise _problem(source, where, f"size {shape[:20]!r} is not WxH")
            if not rules.sizes and shape not in ("16:9", "9:16"):
                raise _problem(source, where, f"ratio {shape[:20]!r} is not 16:9 or 9:16")
    seconds = base.seconds if base is not None else None
    if "seconds" in data:
        seconds = _ints(data["seconds"], source, f"{where}.seconds")
    price = base.price if base is not None else None
    if "price" in data:
        price = _price(data["price"], source, f"{where}.price")
    if shapes is None or seconds is None or price is None:
        raise _problem(source, where, f"a new model needs {shape_key!r}, 'seconds' and 'price'")
    default = data.get("default_seconds")
    if default is None:
        default = base.default_seconds if base is not None and base.default_seconds in seconds \
            else seconds[0]
    if isinstance(default, bool) or not isinstance(default, int) or default not in seconds:
        raise _problem(source, where, f"default_seconds must be one of {_listing(seconds)}")
    return ModelEntry(style, model, shapes, seconds, default, price)


def _strings(value: object, source: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(
            isinstance(v, str) and v.strip() for v in value):
        raise _problem(source, where, "must be a non-empty list of strings")
    return tuple(v.strip() for v in value)


def _ints(value: object, source: str, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 600 for v in value):
        raise _problem(source, where, "must be a non-empty list of whole seconds (1-600)")
    return tuple(value)


def _usd(value: object, source: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value) or value < 0:
        raise _problem(source, where, "must be a finite number of dollars >= 0")
    return float(value)


def _price(value: object, source: str, where: str) -> Price:
    if not isinstance(value, Mapping):
        raise _problem(source, where, "must be {per: clip|second, usd: N[, by_size: {...}]}")
    unknown = set(value) - {"per", "usd", "by_size"}
    if unknown:
        raise _problem(source, where, f"unknown field(s) {', '.join(sorted(unknown))}")
    per = value.get("per")
    if per not in ("clip", "second"):
        raise _problem(source, where, "'per' must be 'clip' or 'second'")
    by_size = value.get("by_size", {})
    if not isinstance(by_size, Mapping):
        raise _problem(source, where, "'by_size' must map a size to dollars")
    return Price(per, _usd(value.get("usd"), source, f"{where}.usd"),
                 {str(k): _usd(v, source, f"{where}.by_size.{k}") for k, v in by_size.items()})


def build(data: Mapping[str, Any], base: Catalogue | None = None,
          source: str = "the built-in catalogue") -> Catalogue:
    """A catalogue from ``data`` (the shape of :data:`BUILTIN`), over ``base`` if given."""
    entries: dict[tuple[str, str], ModelEntry] = dict(base.entries) if base else {}
    if not isinstance(data, Mapping):
        raise _problem(source, "top level", "must map a style to its models")
    for style, models in data.items():
        if style not in API_STYLES:
            raise _problem(source, str(style)[:40],
                           f"not a style (styles: {', '.join(API_STYLES)})")
        if not isinstance(models, Mapping):
            raise _problem(source, style, "must map a model name to its entry")
        for model, spec in models.items():
            if not isinstance(model, str) or not model.strip():
                raise _problem(source, style, "a model name must be a non-blank string")
            entries[(style, model)] = _entry(style, model, spec, entries.get((style, model)),
                                             source)
    return Catalogue(entries, source if base is None else f"{base.source} + {source}")


_BUILTIN = build(BUILTIN)
_cache_lock = threading.Lock()
_cache: dict[tuple[str, int, int], Catalogue] = {}


def _user_file(current: Settings) -> Path | None:
    explicit = current.catalog_file
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ValidationError(f"SORA_CATALOG: no such file {path}", field="SORA_CATALOG")
        return path
    for name in _FILE_NAMES:
        path = current.home / name
        if path.is_file():
            return path
    return None


def _user_file_hint() -> str:
    return "SORA_CATALOG or $SORA_WIDGETS_HOME/catalog.json"


def _load(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"catalogue {path}: cannot be read ({type(exc).__name__})",
                              field="catalog") from None
    try:
        if path.suffix.lower() == ".toml":
            return _toml_loads(raw.decode("utf-8"), path)
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"catalogue {path}: not valid {path.suffix[1:].upper()} "
                              f"({str(exc)[:120]})", field="catalog") from None


def _toml_loads(text: str, path: Path) -> Any:
    for name in ("tomllib", "tomli"):   # tomllib: Python 3.11+; tomli: the same on 3.10
        try:
            return importlib.import_module(name).loads(text)
        except ImportError:
            continue
    raise ValidationError(f"catalogue {path}: reading TOML needs Python 3.11 or the tomli "
                          "package; or write catalog.json", field="catalog")


def catalogue(current: Settings | None = None) -> Catalogue:
    """The catalogue in force now: the built-in one with the user file over it (re-read
    when the file changes)."""
    current = current or settings()
    path = _user_file(current)
    if path is None:
        return _BUILTIN
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        found = _cache.get(key)
    if found is None:
        found = build(_load(path), _BUILTIN, str(path))
        with _cache_lock:
            _cache.clear()
            _cache[key] = found
    return found


def price_of(request: VideoRequest, current: Settings | None = None) -> float:
    """What one submit of ``request`` costs: the one price rule of quotes, budgets and spend.

    SORA_PRICE_USD (a flat price per clip) wins; otherwise the catalogue's rule for the
    request's style and model. A model the catalogue does not know is refused (nothing may
    be sent at an unknown price)."""
    current = current or settings()
    if current.price_usd is not None:
        return current.price_usd
    entry = catalogue(current).entry(request.style, request.model)
    return entry.price.of(request.size or request.aspect_ratio, request.duration)
