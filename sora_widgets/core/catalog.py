"""The model catalogue, as data: per wire style and model, what may be asked, its price, and
when the vendor stops serving it.

Relays disagree on what a model can do and on how it is billed, so none of that is code:

* ``artifex`` (the seed's relay): ``sora-2``, aspect ratio 16:9 or 9:16, 12 s only, $0.90
  per clip, charged at submit; it keeps selling ``sora-2`` (no retirement recorded);
* ``openai`` (OpenAI-shaped gateways): ``sora-2`` at 1280x720 / 720x1280, ``sora-2-pro`` also
  at 1792x1024 / 1024x1792, 4, 8 or 12 s, billed per second of video ($0.10/s for sora-2,
  $0.30/s for sora-2-pro at 720p, $0.50/s at 1792x1024); remix and extension endpoints.
  OpenAI shut its Videos API and every ``sora-2*`` model down on 2026-09-24 (announced
  2026-03-24, no successor named): recorded as ``retires``;
* ``router`` (OpenRouter's video API): vendor-prefixed models with a ``resolution``, a
  ``seed`` and ``generate_audio`` where the model takes them, a last-frame image for
  interpolation (Veo 3.1), billed cost read back from ``usage.cost``.

A user file overrides or extends it: ``SORA_CATALOG`` (a path), else
``$SORA_WIDGETS_HOME/catalog.json`` or ``catalog.toml``, in the shape of :data:`BUILTIN`::

    {"openai": {"sora-2": {"price": {"per": "second", "usd": 0.12}, "retires": null},
                "veo-3": {"sizes": ["1280x720"], "seconds": [8],
                          "price": {"per": "clip", "usd": 3.20},
                          "retires": "2027-01-31", "successor": "veo-4"}}}

An entry named there replaces the fields it gives, a new one must give them all.
``SORA_PRICE_USD`` replaces every price with one flat price per clip. Within 30 days of a
``retires`` day every quote says so; from that day a paid relay is never sent the model
(:meth:`ModelEntry.check_alive`; ``force`` does not change it, the file does).

A request outside the catalogue is refused before anything is sent, the allowed values
named (:meth:`Catalogue.resolve`, :meth:`Catalogue.options`). The price of a request has one
rule, :func:`price_of`: quotes, budgets and the spend recorded in the journal all use it.
"""

from __future__ import annotations

import importlib
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sora_widgets.core.catalog_build import entries_from
from sora_widgets.core.catalog_entry import (
    ModelEntry,
    Price,
    Resolved,
    StyleRules,
    ratio_of,
    style_rules,
    today,
    use_today,
)
from sora_widgets.core.errors import ValidationError
from sora_widgets.core.settings import Settings, settings

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
    "shape_of",
    "style_rules",
    "today",
    "use_today",
]

_SORA_RETIRED = "2026-09-24"   # OpenAI's shutdown of the Videos API (announced 2026-03-24)

#: The catalogue shipped with the package (the user file has the same shape).
#: Sources: artifex and openai as before (the seed's price list; OpenAI's video pricing
#: page: $0.10/s sora-2, $0.30/s sora-2-pro 720p, $0.50/s at 1792x1024). router: OpenRouter's
#: model pages (openrouter.ai/openai/sora-2-pro: "from $0.30 per second", released
#: 2026-03-23); sora-2 on the router at $0.10/s is an assumption (OpenAI's own price passed
#: through); its 1080p (= 1792x1024 class) price of $0.50/s is carried over from OpenAI's
#: table (assumption). Sora takes no seed and no generate_audio switch (it always makes
#: sound): both false. google/veo-3.1: 4, 6 or 8 s, 720p/1080p, 16:9/9:16, seed, audio
#: switch and first+last frame from Google's Veo 3.1 documentation; $0.40/s is Google's
#: Gemini API price for Veo 3.1 with audio (assumed passed through by the router).
BUILTIN: dict[str, dict[str, dict[str, Any]]] = {
    "artifex": {
        "sora-2": {"ratios": ["16:9", "9:16"], "seconds": [12],
                   "price": {"per": "clip", "usd": 0.90}},
    },
    "openai": {
        "sora-2": {"sizes": ["1280x720", "720x1280"], "seconds": [4, 8, 12],
                   "default_seconds": 4, "price": {"per": "second", "usd": 0.10},
                   "remix": True, "extend": True, "retires": _SORA_RETIRED},
        "sora-2-pro": {"sizes": ["1280x720", "720x1280", "1792x1024", "1024x1792"],
                       "seconds": [4, 8, 12], "default_seconds": 4,
                       "price": {"per": "second", "usd": 0.30,
                                 "by_size": {"1792x1024": 0.50, "1024x1792": 0.50}},
                       "remix": True, "extend": True, "retires": _SORA_RETIRED},
    },
    "router": {
        "openai/sora-2": {"ratios": ["16:9", "9:16"], "seconds": [4, 8, 12],
                          "default_seconds": 4, "resolutions": ["720p"],
                          "price": {"per": "second", "usd": 0.10}},
        "openai/sora-2-pro": {"ratios": ["16:9", "9:16"], "seconds": [4, 8, 12],
                              "default_seconds": 4, "resolutions": ["720p", "1080p"],
                              "price": {"per": "second", "usd": 0.30,
                                        "by_size": {"1080p": 0.50}}},
        "google/veo-3.1": {"ratios": ["16:9", "9:16"], "seconds": [4, 6, 8],
                           "default_seconds": 8, "resolutions": ["720p", "1080p"],
                           "seed": True, "audio": True, "last_frame": True,
                           "price": {"per": "second", "usd": 0.40}},
    },
}

#: A dated snapshot of a model (``sora-2-2025-10-06``) is priced and checked as the model.
_SNAPSHOT = re.compile(r"(?P<family>.+)-\d{4}-\d{2}-\d{2}")
_FILE_NAMES = ("catalog.json", "catalog.toml")


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


    def options(self, style: str, model: str, *, seed: int | None = None,
                last_frame: str | None = None, resolution: str | None = None,
                generate_audio: bool | None = None) -> None:
        """Refuse, before anything is sent, an option the model does not take (a seed on
        Sora 2, a last frame without interpolation, a resolution it does not render)."""
        entry = self.entry(style, model)
        where = f"{model} on the {style} style"
        if seed is not None and not entry.seed:
            raise ValidationError(f"seed: {where} takes no seed (models that do: "
                                  f"{_listing(self._with(style, 'seed')) or 'none'}); "
                                  "nothing was sent", field="seed")
        if last_frame is not None and not entry.last_frame:
            raise ValidationError(f"last_frame: {where} takes no last-frame image (models "
                                  f"that do: {_listing(self._with(style, 'last_frame')) or 'none'}"
                                  "); nothing was sent", field="last_frame")
        if generate_audio is not None and not entry.audio:
            raise ValidationError(f"generate_audio: {where} has no audio switch; nothing was "
                                  "sent", field="generate_audio")
        if resolution is not None and resolution not in entry.resolutions:
            allowed = (f"takes {_listing(entry.resolutions)}" if entry.resolutions
                       else "takes no resolution")
            raise ValidationError(f"resolution: {where} {allowed}, not {resolution[:20]!r}; "
                                  "nothing was sent", field="resolution")

    def _with(self, style: str, flag: str) -> tuple[str, ...]:
        return tuple(e.model for (s, _), e in self.entries.items()
                     if s == style and getattr(e, flag))


def build(data: Mapping[str, Any], base: Catalogue | None = None,
          source: str = "the built-in catalogue") -> Catalogue:
    """A catalogue from ``data`` (the shape of :data:`BUILTIN`), over ``base`` if given."""
    entries = entries_from(data, base.entries if base else {}, source)
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


def price_of(request: VideoRequest, current: Settings | None = None,
             book: Catalogue | None = None) -> float:
    """What one submit of ``request`` costs: the one price rule of quotes, budgets and spend.

    SORA_PRICE_USD (a flat price per clip) wins; otherwise the catalogue's rule for the
    request's style and model. A model the catalogue does not know is refused (nothing may
    be sent at an unknown price). ``book``: the catalogue the caller already read for this
    call (each read stats the user's file)."""
    current = current or settings()
    if current.price_usd is not None:
        return current.price_usd
    entry = (book or catalogue(current)).entry(request.style, request.model)
    return entry.price.of(shape_of(request), request.duration)


def shape_of(request: VideoRequest) -> str:
    """What a price's ``by_size`` is keyed by: the size, else the resolution, else the
    aspect ratio."""
    return request.size or request.resolution or request.aspect_ratio
