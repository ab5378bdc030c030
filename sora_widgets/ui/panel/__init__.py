"""The ``SoraWidget`` panel: form, takes and History in one live surface.

The names load on first use: importing the package (as ``pkgutil.walk_packages`` does to
find its modules) must not import ipywidgets.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sora_widgets.ui.panel.card import JobCard
    from sora_widgets.ui.panel.panel import SoraWidget

__all__ = ["JobCard", "SoraWidget"]

_WHERE = {"JobCard": "card", "SoraWidget": "panel"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
