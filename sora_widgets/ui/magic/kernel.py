"""The one kernel check: does this shell draw live ipywidgets views?

Live progress is ipywidgets, which render only in a Jupyter kernel (a plain IPython
terminal shows the plain-text status instead). The magic's ``live_widgets`` setting
(``None``: decide by the kernel) overrides it; every part of the UI that shows a live
view — the magic, ``job.wait()``'s progress, ``sw.grid``, sweeps, storyboards — asks here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["in_kernel", "live_widgets"]


def in_kernel(shell: Any) -> bool:
    """True in a Jupyter kernel (ipykernel sets ``shell.kernel``), not in plain IPython."""
    return getattr(shell, "kernel", None) is not None


def live_widgets(shell: Any, setting: bool | None = None) -> bool:
    """Live views as ipywidgets in ``shell``: ``setting`` if given, else the setting of the
    ``%sora`` magics registered there (their ``live_widgets``), else only in a kernel."""
    if setting is None:
        for configurable in getattr(shell, "configurables", ()):
            found = getattr(configurable, "live_widgets", None)
            if isinstance(found, bool):
                setting = found
                break
    return in_kernel(shell) if setting is None else setting
