"""Display slots for the UIs: an output a background thread may update, in its own cell.

JupyterLab routes an output message by its parent header: an ``update_display_data``
sent from the engine's events thread (or from a button's comm handler) would carry the
header of whatever ran last and never reach the cell that displayed the slot. A
:class:`Slot` remembers the parent of the cell that displayed it and borrows it for each
update (ipykernel >= 7 ``set_thread_parent``: per thread, so the main thread's cell is
untouched). In plain IPython (no such API) the update is simply published.

UI layer: the magic and the panel use it; the core never imports it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

from IPython.display import display as _display

__all__ = ["Bundle", "Slot", "in_cell"]

log = logging.getLogger("sora_widgets.display")

#: A display bundle: mime type -> data (what a slot shows).
Bundle = dict[str, str]
#: IPython leaves ``display`` untyped.
display = cast("Callable[..., object]", _display)

def _parent_of(shell: Any) -> Any:
    get_parent = getattr(shell, "get_parent", None)
    return get_parent() if callable(get_parent) else None


@contextlib.contextmanager
def in_cell(shell: Any, parent: Any) -> Iterator[None]:
    """Output sent inside goes to the cell of ``parent`` (from any thread)."""
    set_parent = getattr(shell, "set_thread_parent", None)
    reset_parent = getattr(shell, "reset_thread_parent", None)
    tokens = None
    if parent is not None and callable(set_parent) and callable(reset_parent):
        tokens = set_parent(parent)
    try:
        yield
    finally:
        if tokens is not None and callable(reset_parent):
            reset_parent(tokens)


class Slot:
    """One output with a ``display_id``, displayed now (main thread, in the running cell)
    and updatable later from any thread; updates with unchanged data are not sent."""

    def __init__(self, shell: Any, bundle: dict[str, Any]) -> None:
        self.shell = shell
        self.parent = _parent_of(shell)
        self._lock = threading.Lock()
        self._last = dict(bundle)
        self.handle: Any = display(bundle, raw=True, display_id=True)

    @property
    def display_id(self) -> str:
        return str(self.handle.display_id)

    def update(self, bundle: dict[str, Any]) -> bool:
        """Replace the slot's content (in its own cell); False when nothing changed."""
        with self._lock:
            if bundle == self._last:
                return False
            self._last = dict(bundle)
            with in_cell(self.shell, self.parent):
                self.handle.update(bundle, raw=True)
        return True
