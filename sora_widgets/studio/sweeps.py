"""Sweeps: one call, every combination of the alternatives written in braces.

(The module is ``sweeps``: ``sw.sweep`` is the function, and a submodule of that name
would replace it on the package once imported.)

``a {red|blue} fox {running|sleeping}`` is four prompts; ``aspect_ratio=["16:9", "9:16"]``
sweeps the ratio as well. The whole sweep is one call of ``Studio.submit_many``: one
journal transaction, so the budgets and the confirmation (``SORA_CONFIRM_USD``) cover all
of it, and earlier identical jobs are reused for free as everywhere.

The grammar of the alternatives, and the count made before any expansion, are in
:mod:`sora_widgets.core.alternatives`.

The magic reads the template as written and hands :func:`plan` its ``{name}`` rule as
``substitute``, which runs on each expanded prompt (``{{`` kept doubled until then): a
notebook variable's text is data here, never sweep syntax.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from sora_widgets.core import presenters
from sora_widgets.core.alternatives import MAX_JOBS, Axis, escape_braces, expand
from sora_widgets.core.errors import ValidationError
from sora_widgets.core.models import Quote, VideoRequest

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job
    from sora_widgets.studio.studio import Studio

__all__ = [
    "MAX_JOBS",
    "RATIO_AXIS",
    "SEED_AXIS",
    "Axis",
    "Sweep",
    "SweepPlan",
    "escape_braces",
    "expand",
    "plan",
    "quote",
    "sweep",
    "variants",
]

#: The axis names of a ratio sweep and of a seed sweep.
RATIO_AXIS = "ratio"
SEED_AXIS = "seed"


# -- the plan and the sweep -------------------------------------------------------------------

@dataclass(frozen=True)
class SweepPlan:
    """What a sweep will submit: its axes and one request per combination, in order."""

    axes: tuple[Axis, ...]
    requests: tuple[VideoRequest, ...]
    values: tuple[tuple[str, ...], ...]

    def __len__(self) -> int:
        return len(self.requests)


def _ratios(aspect_ratio: str | Sequence[str | None] | None) -> list[str | None]:
    if aspect_ratio is None or isinstance(aspect_ratio, str):
        return [aspect_ratio]
    ratios: list[str | None] = []
    for ratio in aspect_ratio:
        ratio = None if ratio is None else str(ratio).strip()
        if ratio not in ratios:
            ratios.append(ratio)
    if not ratios:
        raise ValidationError("aspect_ratio: an empty list", field="aspect_ratio")
    return ratios


def variants(request: VideoRequest) -> list[VideoRequest]:
    """``request`` once per expansion of its prompt's ``{a|b}`` alternatives (a form that
    validated the whole request: each expansion is made of the prompt's own characters)."""
    if request.prompt is None or "{" not in request.prompt:
        return [request]
    _, combos = expand(request.prompt)
    return [dataclasses.replace(request, prompt=text.strip()) for text, _ in combos]


def _seeds(seed: int | Sequence[int] | None) -> list[int | None]:
    """One seed, a list of them (a seed axis), or none; repeats dropped, order kept."""
    if seed is None:
        return [None]
    if isinstance(seed, int):
        return [seed]
    return list(dict.fromkeys(seed)) or [None]


def plan(prompt: str | None, *, aspect_ratio: str | Sequence[str | None] | None = "16:9",
         image: str | Path | Iterable[str | Path] | None = None,
         model: str | None = None, substitute: Callable[[str], str] | None = None,
         seed: int | Sequence[int] | None = None, **fields: Any) -> SweepPlan:
    """Expand and validate every request of a sweep; nothing is sent. ``fields`` go to
    ``VideoRequest.create`` (``seconds``, ``size``...). ``substitute`` (the magic's
    ``{name}`` variables) runs on each expanded prompt and value, after the expansion.
    ``seed``: one seed, or a list of seeds (a ``seed`` axis: one take per seed)."""
    from sora_widgets.core.settings import preferences, settings

    model = model or preferences.model_or(settings())
    if prompt is None or not prompt.strip():
        axes: tuple[Axis, ...] = ()
        prompts: list[tuple[str | None, tuple[str, ...]]] = [(None, ())]
    else:
        axes, combos = expand(prompt, keep_escapes=substitute is not None)
        prompts = list(combos)
        if substitute is not None:
            prompts = [(substitute(text), tuple(substitute(v) for v in values))
                       for text, values in combos]
            axes = tuple(Axis(a.name, tuple(substitute(v) for v in a.values)) for a in axes)
    ratios = _ratios(aspect_ratio)
    if len(ratios) > 1:
        axes = (*axes, Axis(RATIO_AXIS, tuple(str(r) for r in ratios)))
    seeds = _seeds(seed)
    if len(seeds) > 1:
        axes = (*axes, Axis(SEED_AXIS, tuple(str(s) for s in seeds)))
    combinations = len(prompts) * len(ratios) * len(seeds)
    if combinations > MAX_JOBS:
        raise ValidationError(f"{combinations} combinations; one sweep makes "
                              f"at most {MAX_JOBS} jobs", field="prompt")
    images = list(image) if image is not None and not isinstance(image, (str, Path)) else image
    requests: list[VideoRequest] = []
    values: list[tuple[str, ...]] = []
    for text, chosen in prompts:
        for ratio in ratios:
            for one_seed in seeds:
                requests.append(VideoRequest.create(text, aspect_ratio=ratio, image=images,
                                                    model=model, seed=one_seed, **fields))
                values.append((*chosen, *((str(ratio),) if len(ratios) > 1 else ()),
                               *((str(one_seed),) if len(seeds) > 1 else ())))
    return SweepPlan(axes, tuple(requests), tuple(values))


@dataclass(frozen=True)
class SweepCell:
    """One job of a sweep and the values it was made from (axis name → value)."""

    job: Job
    values: Mapping[str, str]


@dataclass
class Sweep(Sequence["Job"]):
    """The jobs of a sweep, in combination order, each with the values it was made from.

    ``sweep[i]`` is a :class:`~sora_widgets.Job`; ``sweep.values(i)`` (or
    ``sweep.cells[i].values``) says what it was made from; ``sweep.axes`` the varying
    parts; ``sweep.quote`` what the call paid. In a notebook it shows live progress, then
    a grid labelled by rows and columns of the varying parts playing the copies published
    next to the notebook (that display is the UI's act; ``_repr_html_`` writes no files).
    """

    axes: tuple[Axis, ...]
    cells: tuple[SweepCell, ...]
    quote: Quote | None = None

    @overload
    def __getitem__(self, index: int) -> Job: ...
    @overload
    def __getitem__(self, index: slice) -> list[Job]: ...

    def __getitem__(self, index: int | slice) -> Job | list[Job]:
        if isinstance(index, slice):
            return [cell.job for cell in self.cells[index]]
        return self.cells[index].job

    def __len__(self) -> int:
        return len(self.cells)

    def __iter__(self) -> Iterator[Job]:
        return (cell.job for cell in self.cells)

    @property
    def jobs(self) -> list[Job]:
        return [cell.job for cell in self.cells]

    def values(self, index: int) -> dict[str, str]:
        return dict(self.cells[index].values)

    def label(self, index: int) -> str:
        """'red · running · 9:16': the values a job was made from, in axis order."""
        return " · ".join(self.cells[index].values.values()) or "—"

    def wait(self, timeout: float | None = None) -> Sweep:
        """Wait for every job (each ``job.wait``: raises if one failed)."""
        for job in self:
            job.wait(timeout)
        return self

    def _repr_html_(self) -> str | None:
        return presenters.html("sweep", self)

    def _ipython_display_(self) -> None:
        """In a notebook: live progress, then the labelled grid playing the copies
        published next to the notebook (what ``%sora`` shows; a UI act, done there)."""
        self.show()

    def show(self, *, wait: bool = False) -> None:
        """Display it now (in IPython); ``wait=True`` blocks the cell until every job is
        finished, showing progress meanwhile."""
        presenters.display("sweep", self, wait=wait)

    def __repr__(self) -> str:
        axes = " × ".join(f"{a.name} ({len(a.values)})" for a in self.axes) or "one job"
        return f"<Sweep {len(self)} jobs: {axes}>"


def sweep(prompt: str | None, *, aspect_ratio: str | Sequence[str] | None = "16:9",
          image: str | Path | Iterable[str | Path] | None = None, model: str | None = None,
          force: bool = False, confirm: bool = False,
          studio: Studio | None = None, seed: int | Sequence[int] | None = None,
          seconds: int | None = None) -> Sweep:
    """Submit every combination of ``prompt``'s ``{a|b}`` alternatives (× each ratio of a
    list) in one call; returns a :class:`Sweep` at once (the POSTs run in the background).

    One journal transaction decides the whole call: earlier identical jobs are reused
    free, budgets cover the whole sweep, and new charges above ``SORA_CONFIRM_USD`` raise
    ``ConfirmationRequired`` (carrying the quote) unless ``confirm=True`` — nothing is
    sent then. The emulator is free and never asks. ``seed``: one seed, or a list (one
    take per seed: a ``seed`` axis), where the model takes a seed. ``seconds``: every
    take's length, where the style offers lengths (default: the model's).
    """
    from sora_widgets.studio.studio import default_studio

    the_plan = plan(prompt, aspect_ratio=aspect_ratio, image=image, model=model, seed=seed,
                    seconds=seconds)
    studio = studio or default_studio()
    quote = studio.quote_many(the_plan.requests, force=force, confirm=confirm)
    jobs = studio.submit_many(the_plan.requests, force=force, confirm=confirm)
    return from_plan(the_plan, jobs, quote)


def quote(prompt: str | None, *, aspect_ratio: str | Sequence[str] | None = "16:9",
          image: str | Path | Iterable[str | Path] | None = None, model: str | None = None,
          force: bool = False, studio: Studio | None = None,
          seed: int | Sequence[int] | None = None, seconds: int | None = None) -> Quote:
    """What :func:`sweep` with these arguments would pay now, sending nothing:
    ``quote(...).text`` is "6 new × $0.90 = $5.40 · 2 reused free"; ``.blocked`` says why
    it would be refused (a budget; ``confirm=True`` is assumed)."""
    from sora_widgets.studio.studio import default_studio

    the_plan = plan(prompt, aspect_ratio=aspect_ratio, image=image, model=model, seed=seed,
                    seconds=seconds)
    return (studio or default_studio()).quote_many(the_plan.requests, force=force,
                                                   confirm=True)


def from_plan(the_plan: SweepPlan, jobs: Sequence[Job], quote: Quote | None = None) -> Sweep:
    """The :class:`Sweep` of a plan's jobs (the magic submits, then wraps them)."""
    names = [axis.name for axis in the_plan.axes]
    cells = tuple(SweepCell(job, dict(zip(names, values, strict=True)))
                  for job, values in zip(jobs, the_plan.values, strict=True))
    return Sweep(the_plan.axes, cells, quote)
