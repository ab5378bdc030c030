"""Sweeps: one call, every combination of the alternatives written in braces.

(The module is ``sweeps``: ``sw.sweep`` is the function, and a submodule of that name
would replace it on the package once imported.)

``a {red|blue} fox {running|sleeping}`` is four prompts; ``aspect_ratio=["16:9", "9:16"]``
sweeps the ratio as well. The whole sweep is one call of ``Studio.submit_many``: one
journal transaction, so the budgets and the confirmation (``SORA_CONFIRM_USD``) cover all
of it, and earlier identical jobs are reused for free as everywhere.

The grammar, in full::

    text        := (literal | '{{' | '}}' | group | braces)*
    group       := '{' alternative ('|' alternative)+ '}'     one axis of the sweep
    alternative := text, trimmed, never empty                  nested groups expand in it
    braces      := '{' text-without-'|' '}'                    kept as written

* ``{{`` and ``}}`` are literal braces in the prompt's text. Inside braces, braces are
  structure (``{red|{dark|light}}`` nests, as in ``str.format`` fields): a literal brace
  inside an alternative is written as braces without ``|`` (``{a|{x}}``: "a" or "{x}").
* Braces with no ``|`` at their own level are kept as written: ``{name}`` of a notebook
  variable the magic could not substitute, or ``{x}`` in a prompt about code. Nothing in
  braces is ever evaluated. Such braces may not hold a sweep (``{x {a|b}}``): that is
  refused, with the hint to write ``{{``.
* A group nested in an alternative adds values to the same axis:
  ``{red|{dark|light} blue}`` is one axis of three values.
* Refused before anything is sent, with the column: an empty alternative (``{red|}``), a
  repeated one, an unclosed ``{``, a stray ``}``, more than :data:`MAX_JOBS` combinations.

``{name}`` notebook variables are substituted *before* this parser runs (the magic calls
``text.substitute_names(..., unescape=False)`` with values whose braces are doubled), so a
variable's text is data here, never sweep syntax.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union, overload

from sora_widgets.core import presenters
from sora_widgets.core.errors import ValidationError
from sora_widgets.core.models import Quote, VideoRequest

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job
    from sora_widgets.studio.studio import Studio

__all__ = [
    "MAX_JOBS",
    "RATIO_AXIS",
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

#: One call never makes more jobs than this (``Studio.submit`` has the same cap).
MAX_JOBS = 100
#: The axis name of a ratio sweep.
RATIO_AXIS = "ratio"
_HINT = "write {{ or }} for a literal brace"


@dataclass(frozen=True)
class Axis:
    """One varying part: its name (the group as written, or "ratio") and its values."""

    name: str
    values: tuple[str, ...]


# -- parsing ----------------------------------------------------------------------------------

@dataclass
class _Group:
    """Braces in the source: alternatives (each a sequence of pieces), where they start."""

    alternatives: list[list[_Piece]]
    start: int
    end: int = 0


_Piece = Union[str, _Group]  # noqa: UP007 (a runtime alias: 3.10 has no str | class here)


def _error(template: str, at: int, message: str) -> ValidationError:
    snippet = template[max(0, at - 12):at + 12]
    return ValidationError(f"prompt: {message} at column {at + 1} (…{snippet}…); {_HINT}",
                           field="prompt")


def _parse(template: str, at: int = 0, depth: int = 0,
           keep: bool = False) -> tuple[list[list[_Piece]], int]:
    """Alternatives of the text from ``at`` up to the ``}`` that closes this level."""
    alternatives: list[list[_Piece]] = [[]]
    text: list[str] = []

    def flush() -> None:
        if text:
            alternatives[-1].append("".join(text))
            text.clear()

    i = 0 + at
    while i < len(template):
        char = template[i]
        pair = template[i:i + 2]
        if depth == 0 and pair in ("{{", "}}"):
            text.append(pair if keep else char)
            i += 2
        elif char == "{":
            flush()
            inner, end = _parse(template, i + 1, depth + 1)
            alternatives[-1].append(_Group(inner, i, end))
            i = end + 1
        elif char == "}":
            if depth == 0:
                raise _error(template, i, "a '}' that closes nothing")
            flush()
            return alternatives, i
        elif char == "|" and depth > 0:
            flush()
            alternatives.append([])
            i += 1
        else:
            text.append(char)
            i += 1
    if depth > 0:
        raise _error(template, at - 1, "a '{' that is never closed")
    flush()
    return alternatives, i


def _flatten(pieces: Sequence[_Piece], template: str) -> list[str]:
    """Every text a sequence of pieces expands to (nested groups multiply)."""
    options: list[list[str]] = []
    for piece in pieces:
        if isinstance(piece, str):
            options.append([piece])
        else:
            options.append(list(_values(piece, template)))
    return ["".join(parts) for parts in itertools.product(*options)]


def _is_sweep(group: _Group) -> bool:
    return len(group.alternatives) > 1


def _literal(group: _Group, template: str) -> str:
    """Braces without '|': kept as written (after ``{{``/``}}`` were read)."""
    for piece in group.alternatives[0]:
        if isinstance(piece, _Group) and (_is_sweep(piece) or _has_sweep(piece)):
            raise _error(template, piece.start,
                         "alternatives inside braces that are not a sweep")
    return "{" + "".join(_flatten(group.alternatives[0], template)[0:1]) + "}"


def _has_sweep(group: _Group) -> bool:
    return any(isinstance(p, _Group) and (_is_sweep(p) or _has_sweep(p))
               for alt in group.alternatives for p in alt)


def _values(group: _Group, template: str) -> tuple[str, ...]:
    """The values one group stands for (one literal text, or every alternative)."""
    if not _is_sweep(group):
        return (_literal(group, template),)
    values: list[str] = []
    for alternative in group.alternatives:
        for value in _flatten(alternative, template):
            value = value.strip()
            if not value:
                raise _error(template, group.start, "an empty alternative")
            if value in values:
                raise _error(template, group.start, f"the alternative {value!r} twice")
            values.append(value)
    return tuple(values)


def expand(template: str, *, keep_escapes: bool = False,
           ) -> tuple[tuple[Axis, ...], list[tuple[str, tuple[str, ...]]]]:
    """The axes of ``template`` and every (prompt, values) combination, first axis slowest.

    ``expand("a {red|blue} fox")`` → ``((Axis("{red|blue}", ("red", "blue")),),
    [("a red fox", ("red",)), ("a blue fox", ("blue",))])``. Raises ``ValidationError``.

    ``keep_escapes``: ``{{``/``}}`` stay doubled in the texts, for a substitution of
    ``{name}`` variables that runs after the expansion (the magic's: a variable's value is
    never sweep syntax, and ``{{`` is still a literal brace for it).
    """
    alternatives, _ = _parse(template, keep=keep_escapes)
    pieces = alternatives[0]
    axes: list[Axis] = []
    slots: list[tuple[str, ...]] = []   # per piece: its texts (one, or an axis's values)
    axis_of_slot: list[int | None] = []
    for piece in pieces:
        if isinstance(piece, str):
            slots.append((piece,))
            axis_of_slot.append(None)
        elif _is_sweep(piece):
            values = _values(piece, template)
            name = template[piece.start:piece.end + 1]
            taken = {axis.name for axis in axes}
            name = next(f"{name} ({n})" for n in itertools.count(2)
                        if f"{name} ({n})" not in taken) if name in taken else name
            axes.append(Axis(name, values))
            slots.append(values)
            axis_of_slot.append(len(axes) - 1)
        else:
            slots.append((_literal(piece, template),))
            axis_of_slot.append(None)
    count = 1
    for axis in axes:
        count *= len(axis.values)
    if count > MAX_JOBS:
        raise ValidationError(f"prompt: {count} combinations; one sweep makes at most "
                              f"{MAX_JOBS} jobs", field="prompt")
    combos: list[tuple[str, tuple[str, ...]]] = []
    for chosen in itertools.product(*(axis.values for axis in axes)):
        parts = [chosen[a] if a is not None else slot[0]
                 for slot, a in zip(slots, axis_of_slot, strict=True)]
        combos.append(("".join(parts), tuple(chosen)))
    return tuple(axes), combos


def escape_braces(text: str) -> str:
    """``text`` as literal sweep text: its braces doubled (a variable's value is data)."""
    return text.replace("{", "{{").replace("}", "}}")


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


def plan(prompt: str | None, *, aspect_ratio: str | Sequence[str | None] | None = "16:9",
         image: str | Path | Iterable[str | Path] | None = None,
         model: str | None = None, substitute: Callable[[str], str] | None = None,
         **fields: Any) -> SweepPlan:
    """Expand and validate every request of a sweep; nothing is sent. ``fields`` go to
    ``VideoRequest.create`` (``seconds``, ``size``...). ``substitute`` (the magic's
    ``{name}`` variables) runs on each expanded prompt and value, after the expansion."""
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
    if len(prompts) * len(ratios) > MAX_JOBS:
        raise ValidationError(f"{len(prompts) * len(ratios)} combinations; one sweep makes "
                              f"at most {MAX_JOBS} jobs", field="prompt")
    images = list(image) if image is not None and not isinstance(image, (str, Path)) else image
    requests: list[VideoRequest] = []
    values: list[tuple[str, ...]] = []
    for text, chosen in prompts:
        for ratio in ratios:
            requests.append(VideoRequest.create(text, aspect_ratio=ratio, image=images,
                                                model=model, **fields))
            values.append((*chosen, str(ratio)) if len(ratios) > 1 else chosen)
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
          studio: Studio | None = None) -> Sweep:
    """Submit every combination of ``prompt``'s ``{a|b}`` alternatives (× each ratio of a
    list) in one call; returns a :class:`Sweep` at once (the POSTs run in the background).

    One journal transaction decides the whole call: earlier identical jobs are reused
    free, budgets cover the whole sweep, and new charges above ``SORA_CONFIRM_USD`` raise
    ``ConfirmationRequired`` (carrying the quote) unless ``confirm=True`` — nothing is
    sent then. The emulator is free and never asks.
    """
    from sora_widgets.studio.studio import default_studio

    the_plan = plan(prompt, aspect_ratio=aspect_ratio, image=image, model=model)
    studio = studio or default_studio()
    quote = studio.quote_many(the_plan.requests, force=force, confirm=confirm)
    jobs = studio.submit_many(the_plan.requests, force=force, confirm=confirm)
    return from_plan(the_plan, jobs, quote)


def quote(prompt: str | None, *, aspect_ratio: str | Sequence[str] | None = "16:9",
          image: str | Path | Iterable[str | Path] | None = None, model: str | None = None,
          force: bool = False, studio: Studio | None = None) -> Quote:
    """What :func:`sweep` with these arguments would pay now, sending nothing:
    ``quote(...).text`` is "6 new × $0.90 = $5.40 · 2 reused free"; ``.blocked`` says why
    it would be refused (a budget; ``confirm=True`` is assumed)."""
    from sora_widgets.studio.studio import default_studio

    the_plan = plan(prompt, aspect_ratio=aspect_ratio, image=image, model=model)
    return (studio or default_studio()).quote_many(the_plan.requests, force=force,
                                                   confirm=True)


def from_plan(the_plan: SweepPlan, jobs: Sequence[Job], quote: Quote | None = None) -> Sweep:
    """The :class:`Sweep` of a plan's jobs (the magic submits, then wraps them)."""
    names = [axis.name for axis in the_plan.axes]
    cells = tuple(SweepCell(job, dict(zip(names, values, strict=True)))
                  for job, values in zip(jobs, the_plan.values, strict=True))
    return Sweep(the_plan.axes, cells, quote)
