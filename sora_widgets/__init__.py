"""sora-widgets: Sora 2 video generation in Jupyter.

``%load_ext sora_widgets`` registers the ``%sora`` magics; ``sw.SoraWidget()`` is the
panel; ``sw.generate()`` the engine both use. Importing this package imports
neither IPython nor ipywidgets: the UI modules load on first use.

The public face is small and typed: the functions below take the same keyword
parameters as the layer functions they call (so ``help(sw.generate)`` and an IDE show
them), the classes are lazy names (``dir(sw)`` lists them), and the version is read from
the package metadata (``core/version.py``, the one place).
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
from sora_widgets.ui.presenters import register_all as _register_presenters

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from sora_widgets.core.models import Quote, TaskSnapshot, VideoRequest
    from sora_widgets.engine.job import Job
    from sora_widgets.journal.base import Spend
    from sora_widgets.relay.client import SoraClient
    from sora_widgets.studio.storyboard import Storyboard
    from sora_widgets.studio.studio import Studio
    from sora_widgets.studio.sweeps import Sweep
    from sora_widgets.ui.compare import Compare
    from sora_widgets.ui.history import History
    from sora_widgets.ui.magic.magics import JobGrid
    from sora_widgets.ui.panel.panel import SoraWidget

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
    "JobGrid",
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
    "Spend",
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
    "models",
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
    "SoraWidget": "ui.panel.panel",
    "Sweep": "studio.sweeps",
    "Compare": "ui.compare",
    "History": "ui.history",
    "Storyboard": "studio.storyboard",
    "stitch": "studio.storyboard",
    "Spend": "journal.base",
    "JobGrid": "ui.magic.magics",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":     # reading the metadata costs ~10 ms: not at %load_ext
        from sora_widgets.core.version import __version__

        return __version__
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sora_widgets' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    """The module's names and the lazy ones (``Job``, ``SoraWidget``, ...), which exist
    as soon as they are asked for."""
    return sorted({*globals(), *_LAZY, "__version__"})


def generate(
    prompt: str | None = None,
    *,
    aspect_ratio: str | None = None,
    image: str | Path | Iterable[str | Path] | None = None,
    model: str | None = None,
    duration: int | None = None,
    seconds: int | str | None = None,
    size: str | None = None,
    seed: int | None = None,
    last_frame: str | Path | None = None,
    resolution: str | None = None,
    generate_audio: bool | None = None,
    wait: bool = False,
    force: bool = False,
    timeout: float | None = None,
    base_url: str | None = None,
) -> Job:
    """Submit one Sora video job; returns its :class:`Job` at once (the POST runs in the
    background). Bad input is refused before anything is sent or charged.

    - ``prompt``: what to film (at least one of ``prompt`` and ``image``).
    - ``aspect_ratio``: ``"16:9"`` or ``"9:16"`` (default: the style's first); on a style
      with sizes it picks the size when ``size`` is not given.
    - ``image``: a first-frame image: an http(s) URL, a local file, or several URLs.
    - ``model``: default ``SORA_MODEL`` / ``%config`` / ``"sora-2"``.
    - ``seconds`` (``duration`` is the same): the clip's length where the style and model
      allow a choice (the catalogue says which; the seed's relay makes 12 s).
    - ``size``: ``"WxH"`` on a style with sizes (``openai``).
    - ``seed``, ``last_frame`` (an image like ``image``: the last frame, interpolation),
      ``resolution`` (``"1080p"``), ``generate_audio``: where the model takes them
      (``sw.models()`` says; refused before sending otherwise). A seed is part of the
      request: the same seed again is reused, another seed is a new job.
    - ``wait``: block until the job is finished (``timeout`` seconds at most: then
      ``TimeoutError``, the job keeps running).
    - ``force``: pay for a new take although an identical earlier request exists (it is
      otherwise reused: no POST, no charge).
    - ``base_url``: a relay other than ``SORA_BASE_URL`` for this job.

    See :meth:`sora_widgets.studio.studio.Studio.generate`."""
    from sora_widgets.studio.studio import default_studio

    _notebook_hooks()
    return default_studio().generate(
        prompt, aspect_ratio=aspect_ratio, image=image, model=model, duration=duration,
        seconds=seconds, size=size, seed=seed, last_frame=last_frame, resolution=resolution,
        generate_audio=generate_audio, wait=wait, force=force, timeout=timeout,
        base_url=base_url)


def models(style: str | None = None) -> list[dict[str, Any]]:
    """The models of the relay style in force (or ``style``): shapes, lengths, seed, audio,
    last frame, remix/extend, price and retirement, one dict per model (the catalogue,
    with the user's file over it). See :func:`sora_widgets.studio.listing.model_rows`."""
    from sora_widgets.studio.listing import model_rows

    return model_rows(style)


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


def spend() -> dict[str, Spend]:
    """Spend totals from the journal: ``{"session": Spend, "all_time": Spend}``
    (:class:`Spend`: charged, maybe charged and pending dollars, and the job count)."""
    from sora_widgets.studio.studio import default_studio

    return dict(default_studio().spend())


def storyboard(
    shots: Sequence[str],
    *,
    aspect_ratio: str = "16:9",
    image: str | Path | Sequence[str | Path] | None = None,
    model: str | None = None,
    force: bool = False,
    confirm: bool = False,
    film: str | Path | None = None,
) -> Storyboard:
    """A film made shot by shot, each continuing from the last frame of the one before;
    returns a :class:`Storyboard` at once. The whole storyboard is quoted first.

    - ``shots``: one prompt per shot.
    - ``aspect_ratio``, ``model``: as for :func:`generate`, for every shot.
    - ``image``: the first shot's first-frame image.
    - ``force``: pay for a new take of every shot (finished shots are otherwise reused).
    - ``confirm``: go ahead although the new charges pass ``SORA_CONFIRM_USD`` (else
      ``ConfirmationRequired``, nothing sent).
    - ``film``: where the joined film is written (default: the videos folder).

    See :func:`sora_widgets.studio.storyboard.storyboard`."""
    from sora_widgets.studio.storyboard import storyboard as make

    return make(shots, aspect_ratio=aspect_ratio, image=image, model=model, force=force,
                confirm=confirm, film=film)


def sweep(
    prompt: str | None,
    *,
    aspect_ratio: str | Sequence[str] | None = "16:9",
    image: str | Path | Iterable[str | Path] | None = None,
    model: str | None = None,
    force: bool = False,
    confirm: bool = False,
    studio: Studio | None = None,
    seed: int | Sequence[int] | None = None,
    seconds: int | None = None,
) -> Sweep:
    """Every combination of ``prompt``'s ``{a|b}`` alternatives (× each ratio of a list)
    in one call, quoted, budgeted and confirmed as a whole; returns a :class:`Sweep` (a
    sequence of jobs with labels) at once.

    - ``prompt``: a template, ``"a {red|blue} fox"`` (``{...}`` is never evaluated).
    - ``aspect_ratio``: one ratio or a list of them (each is one more axis).
    - ``image``, ``model``: as for :func:`generate`, for every job.
    - ``force``: pay for new takes although identical earlier jobs exist.
    - ``confirm``: go ahead although the new charges pass ``SORA_CONFIRM_USD`` (else
      ``ConfirmationRequired`` carrying the quote, nothing sent).
    - ``studio``: the :class:`Studio` to use (default: the process-wide one).
    - ``seed``: one seed, or a list of seeds (one more axis), where the model takes one.
    - ``seconds``: every take's length, where the style offers lengths.

    See :func:`sora_widgets.studio.sweeps.sweep`."""
    from sora_widgets.studio.sweeps import sweep as make

    return make(prompt, aspect_ratio=aspect_ratio, image=image, model=model, force=force,
                confirm=confirm, studio=studio, seed=seed, seconds=seconds)


def compare(*jobs: Job | str, media_dir: str | None = None, width: int = 360) -> Compare:
    """Completed jobs side by side, playing, pausing and seeking together (a widget).

    - ``jobs``: :class:`Job` handles or task ids.
    - ``media_dir``: the folder beside the notebook where the players' files are
      published, so Jupyter serves them (default: the ``media_dir`` preference,
      ``sora_videos``).
    - ``width``: each player's width in CSS pixels.

    See :func:`sora_widgets.ui.compare.compare`."""
    from sora_widgets.ui.compare import compare as make

    return make(*jobs, media_dir=media_dir, width=width)


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
    """Jobs side by side in a notebook (3 in a row, 4 as 2 × 2): live progress, then the
    players; display it (a :class:`JobGrid`).

    - ``jobs``: the :class:`Job` handles (a :class:`Sweep` is one).
    - ``wait``: block the cell until every job is finished.

    See :func:`sora_widgets.ui.magic.magics.grid`."""
    from sora_widgets.ui.magic.magics import grid as make

    return make(jobs, wait=wait)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext sora_widgets``: register the magics (imported only now)."""
    from sora_widgets.ui.magic.magics import load_ipython_extension as load

    load(ipython)
