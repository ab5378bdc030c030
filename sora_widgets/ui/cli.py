"""``sora-widgets``: the terminal face of the same engine (generate, jobs, resume, emulator).

This module holds the commands and their parser; what they draw is in
:mod:`~sora_widgets.ui.cli_follow` (the live line per running job, then one final line)
and :mod:`~sora_widgets.ui.cli_tables` (``jobs`` and ``cost``), both with `rich` and the
core's phrasebook. Every string the relay controls (task ids, error messages) or that
comes back from the journal (prompts, paths) goes through
:func:`~sora_widgets.ui.printable.printable` and is handed to rich as
:class:`rich.text.Text`, never as markup.

This module only uses the public job API (``Studio.generate/jobs/resume/spend`` and
``Job`` attributes, ``wait``, ``download``), so the engine below may change freely.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from sora_widgets.core import words
from sora_widgets.core.errors import SoraError, ValidationError
from sora_widgets.core.lifecycle import Status
from sora_widgets.core.money import billed_differs, billing_text
from sora_widgets.core.words import EMULATOR_BADGE, Countdown
from sora_widgets.ui.cli_follow import (
    final_line,
    follow,
    job_ref,
    progress_line,
    reuse_line,
    stderr_console,
)
from sora_widgets.ui.cli_tables import (
    NARROW,
    jobs_table,
    print_jobs,
    spend_line,
    team_spend_table,
)
from sora_widgets.ui.printable import printable

if TYPE_CHECKING:
    from sora_widgets import Job

__all__ = [
    "EMULATOR_WORDS",
    "NARROW",
    "Countdown",
    "build_parser",
    "final_line",
    "follow",
    "jobs_table",
    "main",
    "print_jobs",
    "printable",
    "progress_line",
    "reuse_line",
    "spend_line",
]

#: The emulator's badge, as the CLI has always exported it (the core's words).
EMULATOR_WORDS = EMULATOR_BADGE


# -- commands -------------------------------------------------------------------------------

def _finish(job: Job, error: BaseException | None, out: Path | None) -> int:
    if error is not None or job.status != Status.COMPLETED:
        return 1
    path = job.download(out) if out else job.download()
    print(printable(path), flush=True)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from sora_widgets.studio.studio import default_studio

    console = stderr_console()
    studio = default_studio()
    try:
        job = studio.generate(args.prompt, aspect_ratio=args.ratio, image=args.image or None,
                              model=args.model, force=args.force, seconds=args.seconds,
                              size=args.size, seed=args.seed, last_frame=args.last_frame,
                              resolution=args.resolution)
    except ValidationError as exc:
        console.print(Text(f"error: {printable(exc)}"), soft_wrap=True)
        return 2
    if job.reused:
        console.print(reuse_line(job), soft_wrap=True)
    elif job.emulator:
        if not args.quiet:
            console.print(Text(f"no SORA_API_KEY: running on the {EMULATOR_BADGE}"),
                          soft_wrap=True)
    else:
        console.print(Text(f"submitting: {words.money(job.price_usd)} is charged when the relay "
                           "accepts the job"), soft_wrap=True)
    try:
        results = follow([job], console, quiet=args.quiet)
    except KeyboardInterrupt:
        return _interrupted(console, [job])
    return _finish(job, results.get(job.local_id), Path(args.out) if args.out else None)


def _interrupted(console: Console, jobs: Sequence[Job]) -> int:
    where = "the local emulator" if all(job.emulator for job in jobs) else "the relay"
    refs = ", ".join(job_ref(job) for job in jobs)
    verb = "keeps" if len(jobs) == 1 else "keep"
    console.print(Text(f"interrupted: {refs} {verb} running at {where}; "
                       "`sora-widgets resume` picks it up"), soft_wrap=True)
    return 130


def _stdout_console() -> Console:
    """Tables go to stdout; piped, they are not cut to 80 columns."""
    console = Console(highlight=False, emoji=False, markup=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, emoji=False, markup=False, width=200)
    return console


def _cmd_jobs(args: argparse.Namespace) -> int:
    from sora_widgets.studio.studio import default_studio

    studio = default_studio()
    # Every match (journal rows, newest first): the list says "20 of 28" when it is cut.
    found = studio.jobs(None, team=args.team, search=args.search,
                        starred=True if args.starred else None)
    shown = found if args.all else found[:max(1, args.limit)]
    print_jobs(_stdout_console(), shown, studio.spend(), total=len(found))
    return 0


def _cmd_cost(args: argparse.Namespace) -> int:
    from sora_widgets.studio.studio import default_studio

    studio = default_studio()
    console = _stdout_console()
    if args.team:
        rows = studio.team_spend()
        if rows:
            console.print(team_spend_table(rows))
            total = sum(r["charged_usd"] for r in rows)
            maybe = sum(r["maybe_usd"] for r in rows)
            console.print(Text(f"This month (UTC), everyone on this journal: {words.money(total)}"
                               + (f"; {words.money(maybe)} more may have been charged" if maybe
                                  else "") + "."))
        else:
            console.print(Text("No paid jobs this month on this journal."))
        return 0
    spend = studio.spend()
    console.print(spend_line(spend["session"], spend["all_time"]), soft_wrap=True)
    for job in studio.jobs(200):          # a bill more than 5 % off its quote is flagged
        if billed_differs(job.price_usd, job.billed_usd):
            console.print(Text(f"⚠ job {job.id or job.local_id[:8]}: "
                               f"{billing_text(job.price_usd, job.billed_usd)}"), soft_wrap=True)
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from sora_widgets.studio.listing import model_table

    _stdout_console().print(Text(model_table(args.style)), soft_wrap=True)
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    from sora_widgets.studio.studio import default_studio

    console = stderr_console()
    resumed = default_studio().resume()
    if not resumed:
        console.print(Text("nothing to resume"))
        return 0
    count = len(resumed)
    console.print(Text(f"resuming {count} job{'s' if count != 1 else ''}: "
                       + ", ".join(f"{job_ref(job)} ({words.status(job.status)})"
                                   for job in resumed)), soft_wrap=True)
    if any(job.emulator for job in resumed):
        console.print(Text(EMULATOR_BADGE))
    try:
        results = follow(resumed, console, quiet=args.quiet)
    except KeyboardInterrupt:
        return _interrupted(console, resumed)
    status = 0
    for job in resumed:
        status |= _finish(job, results.get(job.local_id), None)
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sora-widgets",
                                     description="Sora 2 videos from the terminal.")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="submit a job, follow it, save the mp4")
    gen.add_argument("prompt", nargs="?")
    gen.add_argument("--ratio", "-r", default="16:9", choices=["16:9", "9:16"])
    gen.add_argument("--image", "-i", action="append", help="image URL or file (repeatable)")
    gen.add_argument("--model", default=None)
    gen.add_argument("--seconds", type=int, default=None,
                     help="clip length where the relay style offers a choice (openai: 4, 8, 12)")
    gen.add_argument("--size", default=None,
                     help="frame size where the style takes one (openai: e.g. 1280x720)")
    gen.add_argument("--seed", type=int, default=None,
                     help="a seed, where the model takes one (see `sora-widgets models`)")
    gen.add_argument("--last-frame", default=None, dest="last_frame",
                     help="last-frame image URL or file (interpolation), where allowed")
    gen.add_argument("--resolution", default=None, help="720p or 1080p, where the model "
                     "takes a resolution")
    gen.add_argument("--out", "-o", help="copy the finished mp4 here")
    gen.add_argument("--force", action="store_true", help="pay again even if cached")
    gen.add_argument("--quiet", "-q", action="store_true")
    gen.set_defaults(func=_cmd_generate)
    jobs = sub.add_parser("jobs", help="job history from the journal")
    jobs.add_argument("--limit", "-n", type=int, default=20, help="newest N (default 20)")
    jobs.add_argument("--all", action="store_true", help="every job, not only the newest N")
    jobs.add_argument("--team", action="store_true",
                      help="everyone's jobs on a shared journal (SORA_JOURNAL_URL)")
    jobs.add_argument("--starred", action="store_true", help="starred jobs only")
    jobs.add_argument("--search", "-s", default=None, metavar="WORDS",
                      help="jobs whose prompt has every one of these words")
    jobs.set_defaults(func=_cmd_jobs)
    cost = sub.add_parser("cost", help="what was spent (and may have been)")
    cost.add_argument("--team", action="store_true",
                      help="spend by user and day this month, everyone on this journal")
    cost.set_defaults(func=_cmd_cost)
    mod = sub.add_parser("models", help="the relay style's models: sizes, lengths, seed, "
                         "audio, price, retirement")
    mod.add_argument("--style", default=None, help="artifex, openai or router (default: "
                     "SORA_API_STYLE)")
    mod.set_defaults(func=_cmd_models)

    res = sub.add_parser("resume", help="finish jobs left running by a crash or restart")
    res.add_argument("--quiet", "-q", action="store_true")
    res.set_defaults(func=_cmd_resume)
    sub.add_parser("emulator", help="run the local relay emulator", add_help=False)
    sub.add_parser("lab", add_help=False,
                   help="open working copies of the bundled notebooks in JupyterLab "
                   "([--dir DIR] [-- JUPYTER-ARGS])")
    return parser


def _cmd_lab(rest: list[str]) -> int:
    from sora_widgets.ui.workspace import run_lab

    parser = argparse.ArgumentParser(prog="sora-widgets lab",
                                     description="Copy the bundled notebooks into a workspace "
                                     "outside the clone (kept when already there) and start "
                                     "JupyterLab there; arguments after -- go to JupyterLab.")
    parser.add_argument("--dir", type=Path, default=None,
                        help="the workspace (default: notebooks/ in SORA_WIDGETS_HOME)")
    split = rest.index("--") if "--" in rest else len(rest)
    args = parser.parse_args(rest[:split])
    return run_lab(args.dir, rest[split + 1:])


def main(argv: Iterable[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["emulator"]:
        from sora_widgets.emulator.cli import main as emulator_main

        return emulator_main(args_list[1:])
    if args_list[:1] == ["lab"]:
        return _cmd_lab(args_list[1:])
    args = build_parser().parse_args(args_list)
    console = stderr_console()
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        console.print(Text("interrupted: the job keeps running at the relay; "
                           "`sora-widgets resume` picks it up"), soft_wrap=True)
        return 130
    except SoraError as exc:
        console.print(Text(f"error: {printable(exc)}"), soft_wrap=True)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
