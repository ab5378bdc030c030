"""``%sora models``, ``%sora remix ID "…"``, ``%sora extend ID "…" --seconds 8``, and the
billed-versus-quoted lines of ``%sora cost``.

Remix and extend go through ``Studio.remix`` / ``Studio.extend``: quoted, budgeted and
confirmed like any submit (``--yes`` past SORA_CONFIRM_USD); where the relay has no such
endpoint the refusal, raised before anything is sent, names ``%sora continue``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from IPython.core.error import UsageError

from sora_widgets.core.errors import SoraError
from sora_widgets.core.models import EXTEND, REMIX
from sora_widgets.core.money import billed_differs, billing_text
from sora_widgets.ui import render
from sora_widgets.ui.display import display
from sora_widgets.ui.magic.command import sub_parser, unquote, usage_error, variable_name
from sora_widgets.ui.magic.context import MagicContext

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job

__all__ = ["billing_lines", "extend", "models", "remix"]

#: How many recent jobs ``%sora cost`` looks through for bills that differ from the quote.
BILLING_SCAN = 200


def models(ctx: MagicContext, rest: list[str]) -> None:
    """The current style's models: sizes, lengths, seed, audio, price, retirement."""
    from sora_widgets.studio.listing import model_table

    parser = sub_parser("models")
    parser.add_argument("--style", help="another wire style (artifex, openai, router)")
    args = parser.parse_args(rest)
    try:
        text = model_table(unquote(args.style) if args.style else None)
    except SoraError as exc:
        raise UsageError(f"%sora models: {exc}") from None
    display({"text/html": f"<pre class='sora-models'>{render.escape(text)}</pre>",
             "text/plain": text}, raw=True)


def _follow_up(ctx: MagicContext, rest: list[str], operation: str) -> None:
    from sora_widgets.studio.studio import default_studio

    parser = sub_parser(operation)
    parser.add_argument("ref", metavar="ID", help="task id or local id (or a prefix)")
    parser.add_argument("prompt", nargs="+", help="the changed prompt")
    if operation == EXTEND:
        parser.add_argument("--seconds", type=int, required=True, metavar="S")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--yes", action="store_true")
    parser.add_argument("--wait", action="store_true")
    parser.add_argument("-o", "--output", metavar="NAME")
    args = parser.parse_args(rest)
    name = variable_name(args.output)
    prompt = " ".join(unquote(w) for w in args.prompt).strip()
    studio = default_studio()
    try:
        parent = studio.get(unquote(args.ref))
        if operation == EXTEND:
            job = studio.extend(parent, prompt, seconds=args.seconds, force=bool(args.force),
                                confirm=bool(args.yes))
        else:
            job = studio.remix(parent, prompt, force=bool(args.force), confirm=bool(args.yes))
    except SoraError as exc:
        message = str(usage_error(exc)).replace("job.continue_with(", "%sora continue ID (")
        raise UsageError(message.replace("%sora:", f"%sora {operation}:", 1)) from None
    ctx.store(name, job)
    ctx.present([job], wait=bool(args.wait))


def remix(ctx: MagicContext, rest: list[str]) -> None:
    """``%sora remix ID "changed prompt"``: job ID remade (where the relay has remix)."""
    _follow_up(ctx, rest, REMIX)


def extend(ctx: MagicContext, rest: list[str]) -> None:
    """``%sora extend ID "what next" --seconds 8``: job ID carried on (where offered)."""
    _follow_up(ctx, rest, EXTEND)


def billing_lines(jobs: list[Job]) -> list[str]:
    """One line per job whose bill is more than 5 % off its quote (``%sora cost``)."""
    return [f"⚠ job {job.id or job.local_id[:8]}: {billing_text(job.price_usd, job.billed_usd)}"
            for job in jobs if billed_differs(job.price_usd, job.billed_usd)]
