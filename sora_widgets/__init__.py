"""sora-widgets: Sora 2 video generation in Jupyter.

``%load_ext sora_widgets`` registers the ``%sora`` magics; ``sw.SoraWidget()`` is the
panel; ``sw.generate()`` the engine both use. Importing this package imports
neither IPython nor ipywidgets: the UI modules load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sora_widgets.core.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    ConfirmationRequired,
    JobFailed,
    JournalError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    SoraError,
    SubmissionUnknown,
    ValidationError,
)
from sora_widgets.core.version import __version__
from sora_widgets.ui.presenters import register_all as _register_presenters

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sora_widgets.core.models import Quote, TaskSnapshot, VideoRequest
    from sora_widgets.engine.job import Job
    from sora_widgets.relay.client import SoraClient
    from sora_widgets.studio.storyboard import Storyboard
    from sora_widgets.studio.studio import Studio
    from sora_widgets.studio.sweeps import Sweep
    from sora_widgets.ui.compare import Compare
    from sora_widgets.ui.history import History
    from sora_widgets.ui.magic.magics import JobGrid
    from sora_widgets.ui.widget import SoraWidget

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "Compare",
    "ConfirmationRequired",
    "History",
    "Job",
    "JobFailed",
    "JournalError",
    "MalformedResponseError",
    "NotFoundError",
    "PermissionDeniedError",
    "Quote",
    "RateLimitError",
    "ServerError",
    "SoraClient",
    "SoraError",
    "SoraWidget",
    "Storyboard",
    "Studio",
    "SubmissionUnknown",
    "Sweep",
    "TaskSnapshot",
    "ValidationError",
    "VideoRequest",
    "__version__",
    "compare",
    "generate",
    "grid",
    "jobs",
    "load_ipython_extension",
    "resume",
    "spend",
    "stitch",
    "storyboard",
    "sweep",
]

_register_presenters()   # jobs, sweeps and storyboards are drawn by the UI (lazily)

_LAZY = {
    "SoraClient": "relay.client",
    "Job": "engine.job",
    "Quote": "core.models",
    "Studio": "studio.studio",
    "TaskSnapshot": "core.models",
    "VideoRequest": "core.models",
    "SoraWidget": "ui.widget",
    "Sweep": "studio.sweeps",
    "Compare": "ui.compare",
    "History": "ui.history",
    "Storyboard": "studio.storyboard",
    "stitch": "studio.storyboard",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sora_widgets' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)


def generate(prompt: str | None = None, **kwargs: Any) -> Job:
    """Submit a Sora 2 job; returns a :class:`Job` at once. See ``Studio.generate``."""
    from sora_widgets.studio.studio import default_studio

    _notebook_hooks()
    return default_studio().generate(prompt, **kwargs)


def jobs(limit: int | None = None, *, starred: bool | None = None,
         search: str | None = None, team: bool = False) -> list[Job]:
    """Job history from the journal, newest first; filter by star or prompt words;
    ``team=True``: everyone's jobs on a shared journal (SORA_JOURNAL_URL)."""
    from sora_widgets.studio.studio import default_studio

    _notebook_hooks()
    return default_studio().jobs(limit, starred=starred, search=search, team=team)


def resume() -> list[Job]:
    """Re-attach every journal job not yet final (after a kernel restart); never resubmits."""
    from sora_widgets.studio.studio import default_studio

    _notebook_hooks()
    return default_studio().resume()


def spend() -> dict[str, Any]:
    """Spend totals from the journal: ``{"session": Spend, "all_time": Spend}``."""
    from sora_widgets.studio.studio import default_studio

    return dict(default_studio().spend())


def storyboard(shots: Any, **kwargs: Any) -> Storyboard:
    """A film made shot by shot, each continuing from the last frame of the one before;
    returns a :class:`Storyboard` at once. See ``sora_widgets.studio.storyboard.storyboard``."""
    from sora_widgets.studio.storyboard import storyboard as make

    return make(shots, **kwargs)


def sweep(prompt: str | None, **kwargs: Any) -> Sweep:
    """Every combination of ``{a|b}`` alternatives (× each ratio of a list) in one call:
    quoted, budgeted and confirmed as a whole. See ``sora_widgets.studio.sweeps.sweep``."""
    from sora_widgets.studio.sweeps import sweep as make

    return make(prompt, **kwargs)


def compare(*jobs: Any, **kwargs: Any) -> Compare:
    """Completed jobs side by side, playing, pausing and seeking together (a widget)."""
    from sora_widgets.ui.compare import compare as make

    return make(*jobs, **kwargs)


def _notebook_hooks() -> None:
    """In a Jupyter kernel, ``job.wait()`` shows its progress (the magic's hook, set on the
    engine: the core itself never imports a UI)."""
    import sys

    if "ipykernel" in sys.modules:
        from sora_widgets.ui.magic.magics import (
            install_wait_hook,  # the studio loaded the engine already
        )

        install_wait_hook()


def grid(jobs: Iterable[Job], *, wait: bool = False) -> JobGrid:
    """Jobs side by side in a notebook (live progress, then the players); display it.
    ``wait=True`` blocks the cell until every job is finished. See ``_magic.grid``."""
    from sora_widgets.ui.magic.magics import grid as make

    return make(jobs, wait=wait)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext sora_widgets``: register the magics (imported only now)."""
    from sora_widgets.ui.magic.magics import load_ipython_extension as load

    load(ipython)
