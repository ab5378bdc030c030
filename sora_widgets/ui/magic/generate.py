"""``%sora a prompt`` / ``%%sora``: one request (``-n N`` variations), shown live.

The line is already parsed (:class:`~sora_widgets.ui.magic.command.SoraCommand`); a sweep
(``{a|b}`` alternatives or a ratio list) goes to :mod:`.sweep`. Every money question is the
studio's: with ``-n`` above 1 its quote is shown before anything is sent, then one
``Studio.submit`` call decides (budget, confirmation, reuse of earlier identical jobs).
A refusal raised before the POST becomes a ``UsageError``: nothing was sent or charged.
"""

from __future__ import annotations

import dataclasses

from sora_widgets.core.errors import SoraError
from sora_widgets.core.settings import preferences, settings
from sora_widgets.ui.magic.command import SoraCommand, usage_error
from sora_widgets.ui.magic.context import MagicContext
from sora_widgets.ui.magic.look import show_quote
from sora_widgets.ui.magic.sweep import run_sweep

__all__ = ["run_generate"]


def run_generate(ctx: MagicContext, cmd: SoraCommand) -> None:
    """Submit the call's request(s) and show them in one live slot."""
    from sora_widgets.core.models import VideoRequest
    from sora_widgets.studio.studio import default_studio

    n = cmd.n
    name = cmd.output
    prompt = cmd.prompt()
    if run_sweep(ctx, cmd):    # {a|b} alternatives, a list of ratios or of seeds
        return
    seeds = cmd.seeds()
    try:
        model = cmd.value("model") or preferences.model_or(settings())
        request = VideoRequest.create(prompt, aspect_ratio=cmd.ratio(ctx.default_ratio),
                                      image=cmd.images, model=model,
                                      size=cmd.value("size"), seconds=cmd.value("seconds"),
                                      seed=seeds[0] if seeds else None,
                                      last_frame=cmd.value("last_frame"),
                                      resolution=cmd.value("resolution"))
    except SoraError as exc:
        raise usage_error(exc) from None
    look = ctx.looking(embed=cmd.flag("embed"))
    studio = default_studio()
    force = cmd.flag("force")
    try:
        if n > 1:   # what it will cost, before anything is sent
            quote = studio.quote(request, n, force=force, base_url=ctx.base_url)
            show_quote(f"{n} variations: {quote.text}")
            look = dataclasses.replace(look, badge_said=quote.emulator)
        jobs = studio.submit(request, n, force=force, confirm=cmd.flag("yes"),
                             base_url=ctx.base_url)
    except SoraError as exc:  # raised before the POST (budget, emulator missing...)
        raise usage_error(exc) from None
    ctx.store(name, jobs[0] if n == 1 else jobs)
    ctx.present(jobs, look, wait=cmd.flag("wait"))
