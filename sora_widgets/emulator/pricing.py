"""What a task is billed: the price table of the config (``EmulatorConfig.prices``).

The artifex style bills per clip (the seed's page: $0.90 at submit), the others per second
of video; a ``model@shape`` key (an openai size, a router resolution) overrides the model's
price for that shape. A model the table does not list has no known price (None): its
answers then carry no ``usage.cost`` rather than a made-up one.
"""

from __future__ import annotations

import re

from .config import EmulatorConfig
from .tasks import VideoRequest

__all__ = ["cost_of"]

#: A dated snapshot (``sora-2-2025-10-06``) is priced as its model.
_SNAPSHOT = re.compile(r"(?P<family>.+)-\d{4}-\d{2}-\d{2}")


def cost_of(request: VideoRequest, config: EmulatorConfig) -> float | None:
    """The USD a task made from ``request`` is billed now, or None."""
    table = config.prices.get(request.style, {})
    shape = request.resolution if request.style == "router" else request.size
    match = _SNAPSHOT.fullmatch(request.model)
    price = None
    for model in (request.model, match.group("family") if match else None):
        if model is not None and price is None:
            price = table.get(f"{model}@{shape}") if shape else None
            price = price if price is not None else table.get(model)
    if price is None:
        return None
    if request.style == "artifex":
        return round(price, 6)
    return round(price * request.duration, 6)
