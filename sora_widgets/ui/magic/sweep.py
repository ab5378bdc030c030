"""``%sora a {red|blue} fox {running|sleeping}`` and ``--ratio 16:9,9:16``: the magic's sweep.

The magic hands a call over here when its prompt has ``{a|b}`` alternatives or its ratio
is a list. The template is read *before* notebook variables are substituted, and each
expanded prompt is substituted after (with the magic's own ``{name}`` rule): a
variable's value is data, never sweep syntax, and ``{{`` stays a literal brace.

What it costs is shown first ("4 new × $0.90 = $3.60 · 2 reused free"), then the whole
sweep is one ``Studio.submit_many`` call: the budget covers all of it, and new charges
above ``SORA_CONFIRM_USD`` are refused (nothing sent) until the cell runs with ``--yes``.
The result replaces the live progress with a grid labelled by rows and columns of the
varying parts; ``-o NAME`` stores the :class:`~sora_widgets.studio.sweeps.Sweep`.
"""

from __future__ import annotations

import dataclasses
import keyword
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from sora_widgets.core.errors import ConfirmationRequired, SoraError
from sora_widgets.core.settings import preferences, settings
from sora_widgets.studio.sweeps import RATIO_AXIS, Sweep, SweepPlan, expand, from_plan, plan
from sora_widgets.ui import render
from sora_widgets.ui.magic.magics import Bundle, _Look, _unquote, display
from sora_widgets.ui.sweep_grid import sweep_grid_html

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job
    from sora_widgets.ui.magic.magics import SoraMagics

__all__ = ["SweepLook", "run_sweep", "show"]


@dataclasses.dataclass(frozen=True)
class SweepLook(_Look):
    """The magic's look, laid out as the sweep's labelled grid."""

    sweep: Sweep | None = None

    @classmethod
    def of(cls, look: _Look, sweep: Sweep) -> SweepLook:
        """``look``'s settings, laid out as ``sweep``'s grid."""
        shared = {f.name: getattr(look, f.name) for f in dataclasses.fields(look)}
        return cls(**shared, sweep=sweep)

    def bundle(self, jobs: Sequence[Job],
               reused: Mapping[str, bool] | None = None) -> Bundle:
        if self.sweep is None or len(jobs) < 2:
            return super().bundle(jobs)
        once = all(job.emulator for job in jobs)     # the quote above said "no charge"
        cells = {job.local_id: self._cell(job, once, (reused or {}).get(job.local_id))
                 for job in jobs}
        html = sweep_grid_html(self.sweep, lambda job: cells[job.local_id][0], header="")
        text = "\n".join(f"{self.sweep.label(i)}: {cells[job.local_id][1]}"
                         for i, job in enumerate(self.sweep))
        return {"text/html": html, "text/plain": text}

    def _cell(self, job: Job, once: bool, reused: bool | None) -> tuple[str, str]:
        show: Any = self.job
        try:    # a look that says "no charge" once per output takes badge=False per cell
            cell: tuple[str, str] = show(job, badge=not once, reused=reused)
        except TypeError:
            cell = show(job)
        return cell


def _template(magics: SoraMagics, raw: Sequence[str], cell: str | None) -> str | None:
    """The prompt as written (variables not substituted yet), or None."""
    from sora_widgets.ui.magic.magics import SoraMagics as Magics

    parser = Magics.sora.parser    # type: ignore[attr-defined]
    words = parser.parse_intermixed_args(list(raw)).prompt
    on_line = " ".join(_unquote(w) for w in words).strip()
    body = cell.strip() if cell else ""
    return body or on_line or None


def _ratios(magics: SoraMagics, args: Any) -> list[str | None]:
    if not args.ratio:
        return [None if args.size else magics.default_ratio]
    return [r.strip() or None for r in _unquote(args.ratio).split(",")]


def describe(the_plan: SweepPlan) -> str:
    """'4 jobs ({red|blue} × ratio)'."""
    axes = " × ".join(RATIO_AXIS if a.name == RATIO_AXIS else a.name for a in the_plan.axes)
    return f"{len(the_plan)} jobs ({axes})" if axes else f"{len(the_plan)} job"


def run_sweep(magics: SoraMagics, args: Any, cell: str | None, raw: Sequence[str]) -> bool:
    """Run the call as a sweep if it is one (alternatives, or a ratio list); else False."""
    from sora_widgets.studio.studio import default_studio

    template = _template(magics, raw, cell)
    ratios = _ratios(magics, args)
    try:
        axes, _ = expand(template, keep_escapes=True) if template else ((), [])
    except SoraError as exc:
        raise UsageError(f"%sora: {exc}") from None
    if not axes and len(ratios) < 2:
        return False
    if int(args.n) != 1:
        raise UsageError("%sora: -n does not combine with a sweep ({a|b} or a ratio list): "
                         "write the variations as alternatives, e.g. {take 1|take 2}")
    name = _unquote(args.output) if args.output else None
    if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
        raise UsageError(f"%sora: -o needs a Python variable name, not {name[:40]!r}")
    images = [_unquote(i) for i in args.image] if args.image else None
    base_url = magics.base_url or None
    studio = default_studio()
    try:
        model = _unquote(args.model) if args.model else preferences.model_or(settings())
        fields = {"size": _unquote(args.size) if args.size else None,
                  "seconds": _unquote(args.seconds) if args.seconds else None}
        the_plan = plan(template, aspect_ratio=ratios, image=images, model=model,
                        substitute=magics._expand,
                        **{k: v for k, v in fields.items() if v is not None})
        quote = studio.quote_many(the_plan.requests, force=bool(args.force),
                                  base_url=base_url)
        text = f"{describe(the_plan)}: {quote.text}"     # before anything is sent
        display({"text/html": f"<div class='sora-cost sora-sweep-quote' style='font-family: "
                              f"var(--jp-ui-font-family, sans-serif); font-size: 13px'>"
                              f"{render.escape(text)}</div>",
                 "text/plain": text}, raw=True)
        jobs = studio.submit_many(the_plan.requests, force=bool(args.force),
                                  confirm=bool(args.yes), base_url=base_url)
    except SoraError as exc:   # refused before any POST: bad input, budget, confirmation
        hint = " Add --yes to confirm." if isinstance(exc, ConfirmationRequired) else ""
        raise UsageError(f"%sora: {exc}{hint}") from None
    sweep = from_plan(the_plan, jobs, quote)
    if name is not None and magics.shell is not None:
        magics.shell.user_ns[name] = sweep
    magics._present(jobs, SweepLook.of(magics._look(embed=bool(args.embed)), sweep),
                    wait=bool(args.wait))
    return True


def show(sweep: Sweep, *, wait: bool = False) -> None:
    """Display a :class:`Sweep` in the running shell as the magic does: live progress, then
    the labelled grid of players (the copies published next to the notebook)."""
    from IPython import get_ipython

    from sora_widgets.ui.magic.magics import (
        _live_in,
        _preferred_look,
        _show_live,
        install_wait_hook,
    )

    shell = get_ipython()
    if shell is None:     # pragma: no cover - IPython calls this only from a shell
        return
    install_wait_hook()
    _show_live(shell, list(sweep), SweepLook.of(_preferred_look(), sweep),
              widgets=_live_in(shell), wait=wait)
