"""How objects of the lower layers show themselves in a notebook without importing a UI.

A job, a sweep and a storyboard have an HTML repr and a notebook display, but drawing is the
UI's business and imports only go down. So ``sora_widgets.ui`` registers its presenters here
when the package loads (as the magic registers the engine's wait hook); until then an object
has only its plain ``repr`` (``html`` answers ``None``, which IPython takes as "no HTML").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

__all__ = ["Kind", "display", "html", "register"]

Kind = Literal["job", "sweep", "storyboard"]

_html: dict[str, Callable[[Any], str]] = {}
_display: dict[str, Callable[..., None]] = {}


def register(kind: Kind, *, html: Callable[[Any], str],
             display: Callable[..., None] | None = None) -> None:
    """Called by the UI at load time: how objects of ``kind`` render and display."""
    _html[kind] = html
    if display is not None:
        _display[kind] = display


def html(kind: Kind, obj: object) -> str | None:
    """The object's HTML, or ``None`` when no UI is loaded."""
    render = _html.get(kind)
    return render(obj) if render is not None else None


def display(kind: Kind, obj: object, **options: Any) -> None:
    """Show the object in the running notebook (its plain repr when no UI is loaded)."""
    show = _display.get(kind)
    if show is None:
        print(repr(obj))
        return
    show(obj, **options)
