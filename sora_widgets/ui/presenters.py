"""The UI's presenters for jobs, sweeps and storyboards, registered with the core at load.

Each function imports its renderer on first use, so registering costs nothing at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sora_widgets.core import presenters

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job
    from sora_widgets.studio.storyboard import Storyboard
    from sora_widgets.studio.sweeps import Sweep

__all__ = ["register_all"]


def _job_html(job: Job) -> str:
    from sora_widgets.ui.render import job_html

    return job_html(job)


def _sweep_html(sweep: Sweep) -> str:
    from sora_widgets.ui.sweep_grid import sweep_grid_html

    return sweep_grid_html(sweep)


def _sweep_display(sweep: Sweep, **options: Any) -> None:
    from sora_widgets.ui.magic.sweep import show

    show(sweep, **options)


def _storyboard_html(board: Storyboard) -> str:
    from sora_widgets.ui.magic.board_html import storyboard_html

    return storyboard_html(board)


def _storyboard_display(board: Storyboard, **options: Any) -> None:
    from sora_widgets.ui.magic.storyboard import display_board

    display_board(board, **options)


def register_all() -> None:
    """Tell the core how to draw its objects (idempotent)."""
    presenters.register("job", html=_job_html)
    presenters.register("sweep", html=_sweep_html, display=_sweep_display)
    presenters.register("storyboard", html=_storyboard_html, display=_storyboard_display)

