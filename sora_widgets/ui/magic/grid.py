"""``sw.grid(jobs)``: jobs side by side, as ``%sora -n`` shows them, from any cell."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sora_widgets.ui.magic.kernel import live_widgets
from sora_widgets.ui.magic.live import show_live
from sora_widgets.ui.magic.wait import install_wait_hook, preferred_look

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job

__all__ = ["JobGrid", "grid"]


class JobGrid:
    """Jobs side by side, as ``%sora -n`` shows them: live progress, then the players
    (playing the copies published next to the notebook, so saved notebooks and exports
    keep them); a job that came from the cache says "reused — no new charge". Made by
    :func:`grid`; display it (the last line of a cell)."""

    def __init__(self, jobs: Iterable[Job], *, wait: bool = False) -> None:
        self.jobs = list(jobs)
        self.wait = wait
        if not self.jobs:
            raise ValueError("sw.grid() needs at least one job")

    def __repr__(self) -> str:
        return f"<JobGrid of {len(self.jobs)} jobs>"

    def __len__(self) -> int:
        return len(self.jobs)

    def _ipython_display_(self) -> None:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:   # pragma: no cover - IPython calls this only from a shell
            return
        install_wait_hook()
        show_live(shell, self.jobs, preferred_look(), widgets=live_widgets(shell),
                  wait=self.wait)

    def _repr_html_(self) -> str:
        """The grid as it is now (finished players published next to the notebook)."""
        return preferred_look().bundle(self.jobs)["text/html"]


def grid(jobs: Iterable[Job], *, wait: bool = False) -> JobGrid:
    """``sw.grid(jobs)``: the jobs side by side (3 in a row, 4 as 2 × 2), live progress
    first, then the players; ``wait=True`` blocks the cell until all are finished."""
    return JobGrid(jobs, wait=wait)
