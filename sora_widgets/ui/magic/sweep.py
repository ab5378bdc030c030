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
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from sora_widgets.core.errors import ConfirmationRequired, SoraError
from sora_widgets.core.settings import preferences, settings
from sora_widgets.studio.sweeps import Sweep, SweepPlan, expand, from_plan, plan
from sora_widgets.ui import render
from sora_widgets.ui.display import Bundle
from sora_widgets.ui.magic.command import SoraCommand, usage_error
from sora_widgets.ui.magic.context import MagicContext
from sora_widgets.ui.magic.kernel import live_widgets
from sora_widgets.ui.magic.live import show_live
from sora_widgets.ui.magic.look import Look, show_quote
from sora_widgets.ui.magic.wait import install_wait_hook, preferred_look
from sora_widgets.ui.sweep_grid import sweep_grid_html

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job

__all__ = ["SweepLook", "describe", "run_sweep", "show"]


@dataclasses.dataclass(frozen=True)
class SweepLook(Look):
    """The magic's look, laid out as the sweep's labelled grid."""

    sweep: Sweep | None = None

    @classmethod
    def of(cls, look: Look, sweep: Sweep) -> SweepLook:
        """``look``'s settings, laid out as ``sweep``'s grid."""
        shared = {f.name: getattr(look, f.name) for f in dataclasses.fields(look)}
        return cls(**shared, sweep=sweep)

    def bundle(self, jobs: Sequence[Job],
               reused: Mapping[str, bool] | None = None) -> Bundle:
        if self.sweep is None or len(jobs) < 2:
            return super().bundle(jobs, reused)
        header, badge = render.badge_plan(jobs, said=self.badge_said)
        cells = {job.local_id: self.job(job, badge=badge,
                                        reused=(reused or {}).get(job.local_id))
                 for job in jobs}
        html = sweep_grid_html(self.sweep, lambda job: cells[job.local_id][0],
                               header=header or "")
        text = "\n".join([*([header] if header else []),
                          *(f"{self.sweep.label(i)}: {cells[job.local_id][1]}"
                            for i, job in enumerate(self.sweep))])
        return {"text/html": html, "text/plain": text}


def describe(the_plan: SweepPlan) -> str:
    """'4 jobs ({red|blue} × ratio × seed)'."""
    axes = " × ".join(a.name for a in the_plan.axes)
    return f"{len(the_plan)} jobs ({axes})" if axes else f"{len(the_plan)} job"


def run_sweep(ctx: MagicContext, cmd: SoraCommand) -> bool:
    """Run the call as a sweep if it is one (alternatives, or a ratio list); else False."""
    from sora_widgets.studio.studio import default_studio

    template = cmd.template()
    ratios = cmd.ratios(ctx.default_ratio)
    try:
        axes, _ = expand(template, keep_escapes=True) if template else ((), [])
    except SoraError as exc:
        raise usage_error(exc) from None
    seeds = cmd.seeds()
    if not axes and len(ratios) < 2 and (seeds is None or len(seeds) < 2):
        return False
    if cmd.count != 1:
        raise UsageError("%sora: -n does not combine with a sweep ({a|b} or a ratio list): "
                         "write the variations as alternatives, e.g. {take 1|take 2}")
    name = cmd.output
    studio = default_studio()
    force = cmd.flag("force")
    try:
        model = cmd.value("model") or preferences.model_or(settings())
        fields: dict[str, Any] = {"size": cmd.value("size"), "seconds": cmd.value("seconds"),
                                  "last_frame": cmd.value("last_frame"),
                                  "resolution": cmd.value("resolution")}
        the_plan = plan(template, aspect_ratio=ratios, image=cmd.images, model=model,
                        substitute=cmd.expand, seed=seeds,
                        **{k: v for k, v in fields.items() if v is not None})
        quote = studio.quote_many(the_plan.requests, force=force, base_url=ctx.base_url)
        show_quote(f"{describe(the_plan)}: {quote.text}", kind="sora-sweep-quote")
        jobs = studio.submit_many(the_plan.requests, force=force, confirm=cmd.flag("yes"),
                                  base_url=ctx.base_url)
    except SoraError as exc:   # refused before any POST: bad input, budget, confirmation
        hint = " Add --yes to confirm." if isinstance(exc, ConfirmationRequired) else ""
        raise UsageError(f"%sora: {exc}{hint}") from None
    sweep = from_plan(the_plan, jobs, quote)
    ctx.store(name, sweep)
    look = dataclasses.replace(ctx.looking(embed=cmd.flag("embed")), badge_said=quote.emulator)
    ctx.present(jobs, SweepLook.of(look, sweep), wait=cmd.flag("wait"))
    return True


def show(sweep: Sweep, *, wait: bool = False) -> None:
    """Display a :class:`Sweep` in the running shell as the magic does: live progress, then
    the labelled grid of players (the copies published next to the notebook)."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:     # pragma: no cover - IPython calls this only from a shell
        return
    install_wait_hook()
    show_live(shell, list(sweep), SweepLook.of(preferred_look(), sweep),
              widgets=live_widgets(shell), wait=wait)
