"""A part of the panel's one widget: a sub-view's state mirrored into one of its traits.

The History page and the comparison have their own front ends (``static/history.js``,
``static/compare.js``) and their own kernel sides, written against a model's traits. In the
panel they are not widgets of their own (marimo, like most hosts of anywidget, shows one
widget, never a tree of them): their state goes into one ``Dict`` trait of the panel, and
``static/panel.js`` hands each front end a model-like view of that dict. What the browser
sets comes back as a ``set`` message (only the names the part allows); its other messages go
to the part's handler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import traitlets

__all__ = ["Part"]

log = logging.getLogger("sora_widgets.ui.panel.parts")


class Part:
    """Mirror ``state``'s synced traits into ``owner.<trait>`` (a ``Dict``), and back."""

    def __init__(self, owner: traitlets.HasTraits, trait: str, state: traitlets.HasTraits, *,
                 names: Iterable[str] | None = None, editable: Iterable[str] = (),
                 on_message: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.owner, self.trait, self.state = owner, trait, state
        # A widget's own traits (layout, model names) are not the part's: name them.
        self._names = sorted(names if names is not None else state.traits(sync=True))
        self._editable = frozenset(editable) & set(self._names)
        self._on_message = on_message
        self._closed = False
        state.observe(self._mirror, names=self._names)
        self._mirror()

    def _mirror(self, _change: Any = None) -> None:
        # An unchanged dict sends nothing (traitlets compares); inside a held block the
        # first notification already carries the final state.
        setattr(self.owner, self.trait, {name: getattr(self.state, name) for name in self._names})

    def receive(self, content: dict[str, Any]) -> None:
        """A message from this part's front end: a ``set`` of editable names, or an action."""
        if content.get("action") == "set":
            values = content.get("values")
            if isinstance(values, dict):
                with self.state.hold_trait_notifications():
                    for name, value in values.items():
                        if name in self._editable:
                            try:
                                setattr(self.state, name, value)
                            except traitlets.TraitError:
                                log.warning("%s: refused a bad value for %s", self.trait, name)
            return
        if self._on_message is not None:
            self._on_message(content)

    def close(self) -> None:
        """Stop mirroring; once (a closed panel is closed again by ``Widget.__del__``)."""
        if self._closed:
            return
        self._closed = True
        self.state.unobserve(self._mirror, names=self._names)
        setattr(self.owner, self.trait, {})
