"""The catalogue as rows for people: ``sw.models()``, ``%sora models``, ``sora-widgets models``.

One function so the three say the same thing: what a style's models take (shapes,
lengths, resolutions, seed, audio, last frame, remix/extend), what they cost, and when
they retire (a model past its day is listed, marked, so the refusal is no surprise).
"""

from __future__ import annotations

from typing import Any

from sora_widgets.core.catalog import catalogue, style_rules
from sora_widgets.core.settings import api_style, settings

__all__ = ["model_rows", "model_table"]


def model_rows(style: str | None = None) -> list[dict[str, Any]]:
    """One dict per model of ``style`` (default: the style in force), catalogue order."""
    current = settings()
    chosen = (style or api_style(current)).strip().lower()
    style_rules(chosen)                       # an unknown style: the error names them
    book = catalogue(current)
    rows: list[dict[str, Any]] = []
    for name in book.models(chosen):
        entry = book.entry(chosen, name)
        rows.append({
            "style": chosen, "model": name, "shapes": list(entry.shapes),
            "seconds": list(entry.seconds), "default_seconds": entry.default_seconds,
            "resolutions": list(entry.resolutions), "seed": entry.seed, "audio": entry.audio,
            "last_frame": entry.last_frame, "remix": entry.remix, "extend": entry.extend,
            "price": entry.price.describe() if current.price_usd is None
            else f"${current.price_usd:.2f}/clip (SORA_PRICE_USD)",
            "retires": entry.retires.isoformat() if entry.retires else None,
            "successor": entry.successor, "retired": entry.retired(),
            "note": entry.retirement(),
        })
    return rows


def _yes(value: object) -> str:
    return "yes" if value else "-"


def model_table(style: str | None = None) -> str:
    """The rows as a plain-text table (the magic and the CLI print it)."""
    rows = model_rows(style)
    if not rows:
        return f"no models in the catalogue of the {style or api_style()} style"
    head = ("model", "sizes/ratios", "seconds", "resolution", "seed", "audio", "last frame",
            "remix/extend", "price", "retires")
    body = [(r["model"], " ".join(r["shapes"]), " ".join(map(str, r["seconds"])),
             " ".join(r["resolutions"]) or "-", _yes(r["seed"]), _yes(r["audio"]),
             _yes(r["last_frame"]),
             "/".join(n for n in ("remix", "extend") if r[n]) or "-", r["price"],
             (("RETIRED " if r["retired"] else "") + r["retires"]
              + (f" → {r['successor']}" if r["successor"] else "")) if r["retires"] else "-")
            for r in rows]
    widths = [max(len(str(line[i])) for line in (head, *body)) for i in range(len(head))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True))
             .rstrip() for line in (head, *body)]
    notes = [r["note"] for r in rows if r["note"]]
    style_name = rows[0]["style"]
    return "\n".join([f"models of the {style_name} style ({catalogue().source}):", *lines,
                      *(f"⚠ {note}" for note in notes)])
