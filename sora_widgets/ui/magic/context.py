"""What the ``%sora`` magic hands to each part it runs: the shell and its settings.

The parts (a plain generate, a sweep, a storyboard, the sub-commands) never reach into the
magics object: they read this small record, built once per call from the ``%config``
settings, and show their jobs through :meth:`MagicContext.present`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sora_widgets.ui.magic.live import show_live
from sora_widgets.ui.magic.look import Look

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job

__all__ = ["MagicContext"]


@dataclass(frozen=True)
class MagicContext:
    """One call's view of the magic: where to show, how finished jobs look, defaults."""

    shell: Any
    look: Look
    default_ratio: str
    base_url: str | None
    widgets: bool

    def looking(self, *, embed: bool = False) -> Look:
        """The call's look, with ``--embed`` if given."""
        return dataclasses.replace(self.look, embed=True) if embed else self.look

    def present(self, jobs: Sequence[Job], look: Look | None = None, *, wait: bool = False,
                reused: Mapping[str, bool] | None = None) -> None:
        """Show ``jobs`` in one live slot; ``reused``: which came from the cache in this
        call (default: the handles' ``cached`` flags)."""
        show_live(self.shell, jobs, look or self.look, widgets=self.widgets, wait=wait,
                  reused=reused)

    def store(self, name: str | None, value: object) -> None:
        """``-o NAME``: put the result in the notebook's namespace."""
        if name is not None and self.shell is not None:
            self.shell.user_ns[name] = value
