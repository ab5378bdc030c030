"""Catalogue entries from data (the built-in table or a user's file), every field checked:
a typo in a catalogue file must be refused with its place named, never guessed at, since
prices and retirements decide what is paid."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from typing import Any

from sora_widgets.core.catalog_entry import (
    CATALOGUE_STYLES,
    SIZE,
    ModelEntry,
    Price,
    style_rules,
)
from sora_widgets.core.errors import ValidationError

__all__ = ["entries_from"]

_SHAPE_KEYS = ("ratios", "sizes")
_FLAGS = ("seed", "audio", "last_frame", "remix", "extend")
_FIELDS = frozenset({*_SHAPE_KEYS, *_FLAGS, "seconds", "default_seconds", "price",
                     "resolutions", "retires", "successor"})


def _problem(source: str, where: str, what: str) -> ValidationError:
    return ValidationError(f"catalogue {source}: {where}: {what}", field="catalog")


def _listing(values: tuple[object, ...]) -> str:
    return ", ".join(str(v) for v in values)


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


def _day(value: object, source: str, where: str) -> date | None:
    """``"YYYY-MM-DD"``, or None (JSON null: an override that clears a retirement)."""
    if value is None:
        return None
    if isinstance(value, date):          # TOML has dates of its own
        return value
    try:
        return date.fromisoformat(str(value)) if isinstance(value, str) else None
    except ValueError:
        pass
    raise _problem(source, where, "must be a date \"YYYY-MM-DD\" (or null to clear it)")


def _flag(value: object, source: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise _problem(source, where, "must be true or false")
    return value


def _shapes(data: Mapping[str, Any], style: str, base: ModelEntry | None, source: str,
            where: str) -> tuple[str, ...] | None:
    rules = style_rules(style)
    shape_key, other_key = ("sizes", "ratios") if rules.sizes else ("ratios", "sizes")
    if other_key in data:
        raise _problem(source, where, f"the {style} style takes {shape_key!r}, not {other_key!r}")
    if shape_key not in data:
        return base.shapes if base is not None else None
    shapes = _strings(data[shape_key], source, f"{where}.{shape_key}")
    for shape in shapes:
        if rules.sizes and SIZE.fullmatch(shape) is None:
            raise _problem(source, where, f"size {shape[:20]!r} is not WxH")
        if not rules.sizes and shape not in ("16:9", "9:16"):
            raise _problem(source, where, f"ratio {shape[:20]!r} is not 16:9 or 9:16")
    return shapes


def _entry(style: str, model: str, data: Mapping[str, Any], base: ModelEntry | None,
           source: str) -> ModelEntry:
    where = f"{style}.{model}"
    if not isinstance(data, Mapping):
        raise _problem(source, where, "must be a table/object")
    unknown = set(data) - _FIELDS
    if unknown:
        raise _problem(source, where, f"unknown field(s) {', '.join(sorted(unknown))}")
    shapes = _shapes(data, style, base, source, where)
    seconds = _ints(data["seconds"], source, f"{where}.seconds") if "seconds" in data \
        else (base.seconds if base is not None else None)
    price = _price(data["price"], source, f"{where}.price") if "price" in data \
        else (base.price if base is not None else None)
    if shapes is None or seconds is None or price is None:
        shape_key = "sizes" if style_rules(style).sizes else "ratios"
        raise _problem(source, where, f"a new model needs {shape_key!r}, 'seconds' and 'price'")
    default = data.get("default_seconds")
    if default is None:
        default = base.default_seconds if base is not None and base.default_seconds in seconds \
            else seconds[0]
    if isinstance(default, bool) or not isinstance(default, int) or default not in seconds:
        raise _problem(source, where, f"default_seconds must be one of {_listing(seconds)}")
    resolutions = base.resolutions if base is not None else ()
    if "resolutions" in data:
        resolutions = () if data["resolutions"] == [] else _strings(
            data["resolutions"], source, f"{where}.resolutions")
    flags = {name: (_flag(data[name], source, f"{where}.{name}") if name in data
                    else bool(getattr(base, name, False))) for name in _FLAGS}
    retires = _day(data["retires"], source, f"{where}.retires") if "retires" in data \
        else (base.retires if base is not None else None)
    successor = base.successor if base is not None else None
    if "successor" in data:
        named = data["successor"]
        if named is not None and (not isinstance(named, str) or not named.strip()):
            raise _problem(source, where, "successor must be a model name (or null)")
        successor = named.strip() if isinstance(named, str) else None
    return ModelEntry(style, model, shapes, seconds, default, price, resolutions,
                      retires=retires, successor=successor, **flags)


def entries_from(data: Mapping[str, Any], base: Mapping[tuple[str, str], ModelEntry],
                 source: str) -> dict[tuple[str, str], ModelEntry]:
    """``base``'s entries with ``data`` (the shape of ``BUILTIN``) over them: a model named
    again replaces the fields it gives, a new one must give them all."""
    entries = dict(base)
    if not isinstance(data, Mapping):
        raise _problem(source, "top level", "must map a style to its models")
    for style, models in data.items():
        if style not in CATALOGUE_STYLES:
            raise _problem(source, str(style)[:40],
                           f"not a style (styles: {', '.join(CATALOGUE_STYLES)})")
        if not isinstance(models, Mapping):
            raise _problem(source, style, "must map a model name to its entry")
        for model, spec in models.items():
            if not isinstance(model, str) or not model.strip():
                raise _problem(source, style, "a model name must be a non-blank string")
            entries[(style, model)] = _entry(style, model, spec, entries.get((style, model)),
                                             source)
    return entries
