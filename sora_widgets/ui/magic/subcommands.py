"""The ``%sora`` sub-commands: ``jobs``, ``show``, ``resume``, ``cost``, ``key``, ``continue``
(and, from :mod:`.catalogue_cmds`, ``models``, ``remix``, ``extend``).

Each reads the call's :class:`~sora_widgets.ui.magic.command.SoraCommand` (its words, with
notebook variables substituted) with a small parser of its own and shows its result
through the :class:`~sora_widgets.ui.magic.context.MagicContext`. A sub-command that fails
on extra words most likely met a prompt starting with its name: the error says how to
quote it (never for ``key``, whose words may be the key itself).
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Sequence

from IPython.core.error import StdinNotImplementedError, UsageError

from sora_widgets.core import words
from sora_widgets.core.errors import SoraError
from sora_widgets.core.settings import env_key_set, set_session_key, settings
from sora_widgets.ui import render
from sora_widgets.ui.display import display
from sora_widgets.ui.magic.catalogue_cmds import BILLING_SCAN, billing_lines, extend, models, remix
from sora_widgets.ui.magic.command import SoraCommand, sub_parser, unquote, variable_name
from sora_widgets.ui.magic.context import MagicContext
from sora_widgets.ui.magic.look import thumbnail
from sora_widgets.ui.magic.storyboard import show_storyboard

__all__ = ["PAGE_SIZE", "prompt_hint", "run_subcommand"]

#: ``%sora jobs`` shows this many rows per page (``-n`` changes it).
PAGE_SIZE = 20


def run_subcommand(ctx: MagicContext, cmd: SoraCommand) -> None:
    """Run ``cmd``'s sub-command; a usage error says how to quote a prompt instead."""
    name = cmd.subcommand
    assert name is not None
    try:
        _COMMANDS[name](ctx, cmd.rest)
    except UsageError as exc:
        raise UsageError(prompt_hint(str(exc), cmd.words)) from None


def prompt_hint(message: str, tokens: Sequence[str]) -> str:
    """A sub-command that failed on extra words: the user probably wrote a prompt that
    starts with that word; say what to type instead (never for ``key``: its words may be
    the key itself)."""
    if tokens[0] == "key" or len(tokens) < 2:
        return message
    prompt = " ".join(tokens).replace('"', "'")
    return (f"{message}\n'{tokens[0]}' is a %sora sub-command. If you meant a video of "
            f"that prompt, quote it:\n    %sora \"{prompt}\"")


def _say(text: str) -> None:
    display({"text/html": f"<div>{render.escape(text)}</div>", "text/plain": text}, raw=True)


def jobs(ctx: MagicContext, rest: list[str]) -> None:
    """History, a page at a time, each row with an inline still (history writes no file)."""
    from sora_widgets.studio.studio import default_studio

    parser = sub_parser("jobs")
    parser.add_argument("-n", type=int, default=PAGE_SIZE, dest="limit", metavar="LIMIT",
                        help="rows per page")
    parser.add_argument("--page", type=int, default=1, metavar="P", help="which page")
    parser.add_argument("--starred", action="store_true", help="starred jobs only")
    parser.add_argument("--team", action="store_true",
                        help="everyone's jobs on a shared journal (SORA_JOURNAL_URL)")
    args = parser.parse_args(rest)
    limit, page = max(1, args.limit), max(1, args.page)
    # One row more than the page says whether there is a next page.
    found = default_studio().jobs(limit + 1, offset=(page - 1) * limit,
                                  starred=True if args.starred else None, team=args.team)
    shown, more = found[:limit], len(found) > limit
    sources: dict[str, str] = {}
    posters: dict[str, str] = {}
    for job in shown:
        src = render.local_src(job, ctx.look.media_dir)
        if src is not None:
            sources[job.local_id] = src
        still = thumbnail(job)
        if still is not None:
            posters[job.local_id] = still
    footer = words.page_line(page, limit, len(shown), more=more,
                             command=_page_command(args.starred, args.team, args.limit))
    text = "\n".join(render.job_text(j, sources.get(j.local_id)) for j in shown)
    html = render.jobs_table_html(shown, sources, posters)
    if footer:
        text = f"{text}\n{footer}" if text else footer
        html += f"<div class='sora-page' style='color: #666; font-size: 12px'>" \
                f"{render.escape(footer)}</div>"
    display({"text/html": html, "text/plain": text or "No jobs yet."}, raw=True)


def _page_command(starred: bool, team: bool, limit: int) -> str:
    """The ``%sora jobs`` line that shows another page with the same filters."""
    parts = ["%sora jobs"]
    if limit != PAGE_SIZE:
        parts.append(f"-n {limit}")
    if starred:
        parts.append("--starred")
    if team:
        parts.append("--team")
    return " ".join(parts) + " --page {page}"


def show(ctx: MagicContext, rest: list[str]) -> None:
    """Re-render a past job (and follow it if it still runs)."""
    from sora_widgets.studio.studio import default_studio

    parser = sub_parser("show")
    parser.add_argument("ref", metavar="ID", help="task id or local id (or a prefix)")
    parser.add_argument("--embed", action="store_true")
    parser.add_argument("--wait", action="store_true")
    args = parser.parse_args(rest)
    try:
        job = default_studio().get(unquote(args.ref))
    except SoraError as exc:
        raise UsageError(f"%sora show: {exc}") from None
    ctx.present([default_studio().track(job)], ctx.looking(embed=args.embed),
                wait=args.wait, reused={job.local_id: False})


def resume(ctx: MagicContext, rest: list[str]) -> None:
    """Re-attach every unfinished job and storyboard of the journal (never resubmits)."""
    from sora_widgets.studio.storyboard import resume_storyboards
    from sora_widgets.studio.studio import default_studio

    sub_parser("resume").parse_args(rest)
    found = default_studio().resume()
    boards = resume_storyboards(default_studio())   # unfinished storyboards go on
    if not found and not boards:
        _say("Nothing to resume: every job in the journal is finished.")
        return
    if found:
        ctx.present(found, wait=False, reused=dict.fromkeys((j.local_id for j in found), False))
    for board in boards:
        show_storyboard(ctx, board)


def continue_(ctx: MagicContext, rest: list[str]) -> None:
    """``%sora continue ID "next prompt"``: a new clip from the last frame of job ID."""
    from sora_widgets.studio.studio import default_studio

    parser = sub_parser("continue")
    parser.add_argument("ref", metavar="ID", help="task id or local id (or a prefix)")
    parser.add_argument("prompt", nargs="+", help="what happens next")
    parser.add_argument("--model")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--wait", action="store_true")
    parser.add_argument("-o", "--output", metavar="NAME")
    args = parser.parse_args(rest)
    name = variable_name(args.output)
    prompt = " ".join(unquote(w) for w in args.prompt).strip()
    studio = default_studio()
    try:
        parent = studio.get(unquote(args.ref))
        job = studio.continue_from(parent, prompt,
                                   model=unquote(args.model) if args.model else None,
                                   force=bool(args.force))
    except SoraError as exc:
        raise UsageError(f"%sora continue: {exc}") from None
    ctx.store(name, job)
    ctx.present([job], wait=bool(args.wait))


def cost(ctx: MagicContext, rest: list[str]) -> None:
    """Spend this session and all time (``--team``: everyone on the journal, by day)."""
    from sora_widgets.studio.studio import default_studio

    parser = sub_parser("cost")
    parser.add_argument("--team", action="store_true",
                        help="spend by user and day this month, everyone on this journal")
    args = parser.parse_args(rest)
    try:
        current = settings()
        if args.team:
            rows = default_studio().team_spend()
            display({"text/html": render.team_spend_html(rows),
                     "text/plain": render.team_spend_text(rows)}, raw=True)
            return
        spend = default_studio().spend()
    except SoraError as exc:
        raise UsageError(f"%sora cost: {exc}") from None
    session, all_time = spend["session"], spend["all_time"]
    text = (f"This session: {words.money(session.charged_usd)}; all time: "
            f"{words.money(all_time.charged_usd)} ({all_time.jobs} paid jobs)")
    if current.uses_emulator:
        text += f". No SORA_API_KEY: new jobs run on the {words.EMULATOR_BADGE}."
    flagged = billing_lines(default_studio().jobs(BILLING_SCAN))   # bill vs quote past 5 %
    html = render.spend_html(session, all_time, current.budget_usd,
                             emulator=current.uses_emulator)
    if flagged:
        text += "\n" + "\n".join(flagged)
        html += "".join(f"<div class='sora-billed'>{render.escape(line)}</div>"
                        for line in flagged)
    display({"text/html": html, "text/plain": text}, raw=True)


def key(ctx: MagicContext, rest: list[str]) -> None:
    """Ask for an API key (getpass: memory only, never shown, never saved)."""
    if rest == ["--forget"]:
        set_session_key(None)
        print("Forgot the session key.")
        return
    if rest:  # never echo what was typed: it may be the key itself
        raise UsageError(
            "%sora key takes no value: a key typed into a cell is saved in the notebook "
            "and its history. Run `%sora key` alone and paste the key at the prompt "
            "(or `%sora key --forget`).")
    try:
        value = getpass.getpass("Sora API key (kept in memory for this session only): ")
    except StdinNotImplementedError:
        raise UsageError("%sora key: this frontend cannot ask for input; set "
                         "SORA_API_KEY in the kernel's environment instead") from None
    if not value.strip():
        print("No key entered; nothing changed.")
        return
    set_session_key(value)
    message = "Key set for this session: kept in memory only, never saved or shown."
    if env_key_set():
        message += " Note: SORA_API_KEY is set in the environment and takes precedence."
    print(message)


_COMMANDS: dict[str, Callable[[MagicContext, list[str]], None]] = {
    "jobs": jobs, "show": show, "resume": resume, "cost": cost, "key": key,
    "continue": continue_, "models": models, "remix": remix, "extend": extend,
}
