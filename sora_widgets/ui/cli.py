"""``sora-widgets``: the terminal face of the same engine (generate, jobs, resume, emulator).

Drawing is done by `rich`: a live progress line while a job runs (redrawn in place,
erased when the job settles, then one final line), plain lines when stderr is not a
terminal, and a table for ``jobs``. Every string the relay controls (task ids, error
messages) or that comes back from the journal (prompts, paths) goes through
:func:`printable` and is handed to rich as :class:`rich.text.Text`, never as markup.

This module only uses the public job API (``Studio.generate/jobs/resume/spend`` and
``Job`` attributes, ``wait``, ``download``), so the engine below may change freely.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from sora_widgets.core.errors import SoraError, ValidationError
from sora_widgets.core.lifecycle import TERMINAL_ERROR_STATUSES, Charge, Status

if TYPE_CHECKING:
    from sora_widgets import Job

__all__ = [
    "EMULATOR_WORDS",
    "build_parser",
    "final_line",
    "jobs_table",
    "main",
    "printable",
    "progress_line",
    "reuse_line",
    "spend_line",
]

EMULATOR_WORDS = "local emulator — no charge"
UNKNOWN_WORDS = "submit outcome unknown"

# -- safe text ------------------------------------------------------------------------------

#: Terminal escape sequences, 7-bit (ESC ...) and 8-bit (C1) forms. String-type sequences
#: (OSC, DCS, SOS, PM, APC) run to their terminator (BEL or ST) or, unterminated, to the end:
#: a terminal would swallow that text too, or worse, act on it.
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"            # CSI ... final byte
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|\Z)"  # OSC/DCS/SOS/PM/APC
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?",                                 # any other ESC sequence
    re.DOTALL,
)
#: Line and tab characters: a run of them (with the spaces around) becomes one space, so a
#: multi-line prompt stays on its row and a relay message cannot fake a line of its own.
_LINE_BREAKS = re.compile(r"[ ]*[\t\n\v\f\r\x1c-\x1e\x85\u2028\u2029]+[ \t\n\v\f\r\x85]*")
#: What is left to drop: C0 and C1 controls, DEL, and the bidirectional controls that
#: make text display in an order other than the one it is read in (Trojan Source).
_CONTROLS = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def printable(text: object) -> str:
    """``text`` made safe to print on a terminal, on one line.

    Escape sequences (CSI, OSC, DCS, ...) are removed whole, line breaks and tabs become
    one space, and the remaining C0/C1 controls and bidi overrides are dropped. The result
    is plain text: hand it to rich as ``Text(...)`` (not as markup) so ``[bold]`` stays
    literal. ``None`` gives ``""``.
    """
    if text is None:
        return ""
    value = text if isinstance(text, str) else str(text)
    value = _ESCAPE_SEQUENCE.sub("", value)
    value = _LINE_BREAKS.sub(" ", value)
    return _CONTROLS.sub("", value)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


# -- words ----------------------------------------------------------------------------------

def _seconds(value: float | None) -> str:
    if value is None:
        return "?"
    whole = max(0, int(value))
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{whole}s"


def _status_words(status: str) -> str:
    return {Status.IN_PROGRESS.value: "generating", Status.UNKNOWN.value: UNKNOWN_WORDS}.get(
        status, status.replace("_", " "))


def _job_ref(job: Job) -> str:
    """The task id, or the local id for a submit the relay never answered."""
    return printable(job.id) if job.id else f"local:{job.local_id[:8]}"


def _saved(job: Job) -> bool:
    return job.local_path is not None


class Countdown:
    """Time left that keeps ticking between polls: ``eta_seconds`` minus the time since it
    was last seen to change (the engine updates it only when a poll lands)."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[float, float]] = {}

    def __call__(self, job: Job) -> float | None:
        eta = job.eta_seconds
        if eta is None:
            self._seen.pop(job.local_id, None)
            return None
        now = time.monotonic()
        seen = self._seen.get(job.local_id)
        if seen is None or seen[0] != eta:
            self._seen[job.local_id] = (eta, now)
            return eta
        return max(0.0, eta - (now - seen[1]))


def _phase(job: Job, eta: float | None) -> str:
    """What the job is doing now, with elapsed time and what is left."""
    elapsed = _seconds(job.elapsed)
    if job.status == Status.SUBMITTING:
        return f"submitting… · {elapsed}"
    if job.status == Status.COMPLETED:
        return f"completed · {elapsed}" if _saved(job) else f"saving the video… · {elapsed}"
    if job.status in TERMINAL_ERROR_STATUSES:
        return f"{_status_words(job.status)} · {elapsed}"
    if eta is None:
        left = "estimating…"
    elif eta < 1:
        left = "almost done"
    else:
        left = f"about {_seconds(eta)} left"
    if job.status == Status.QUEUED:
        return f"queued · {elapsed} · {left}"
    return f"{_status_words(job.status)} {int(job.progress)}% · {elapsed} · {left}"


def progress_line(job: Job, *, label: str | None = None, bar: bool = True,
                  width: int = 30, countdown: Countdown | None = None) -> RenderableType:
    """The live line of a running job: spinner, bar, percent, elapsed, time left.

    Time left reads "estimating…" until the engine has an estimate (``eta_seconds``).
    """
    words = Text(no_wrap=True, overflow="ellipsis")
    if label:
        words.append(printable(label), style="bold")
        words.append(" ")
    words.append(_phase(job, countdown(job) if countdown else job.eta_seconds))
    trouble = getattr(job, "poll_error", None)
    saving = getattr(job, "download_error", None) if job.status == Status.COMPLETED else None
    if trouble:
        words.append(f" · reconnecting: {printable(trouble)}", style="yellow")
    elif saving and not _saved(job):
        words.append(f" · retrying: {printable(saving)}", style="yellow")
    if not bar:
        return words
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True, width=width)
    grid.add_column(no_wrap=True, overflow="ellipsis")
    done = 100.0 if job.status == Status.COMPLETED else float(job.progress)
    grid.add_row(Spinner("dots", style="cyan"),
                 ProgressBar(total=100.0, completed=done, width=width), words)
    return grid


def final_line(job: Job, error: BaseException | None = None) -> Text:
    """One line saying how a job ended (after the live line is erased)."""
    ref = _job_ref(job)
    line = Text()
    if job.status == Status.COMPLETED and error is None:
        line.append("✔ completed", style="bold green")
        line.append(f" in {_seconds(job.elapsed)} · task {ref}")
        if not job.emulator and not job.cached and job.charge == Charge.CHARGED:
            line.append(f" · ${job.cost_usd or job.price_usd:.2f} charged")
        return line
    if job.status == Status.UNKNOWN:
        line.append(f"? {UNKNOWN_WORDS}", style="bold yellow")
        line.append(f" · {ref}")
        if job.emulator:
            line.append(f" · {EMULATOR_WORDS}")
        else:
            line.append(f" · it may have been charged ${job.price_usd:.2f}: the answer to the "
                        "submit was lost, so it was not retried (a retry could pay twice)")
        return line
    if job.status == Status.FAILED:
        line.append("✘ failed", style="bold red")
        line.append(f" after {_seconds(job.elapsed)} · task {ref}")
        message = printable(job.error or (error and str(error)) or "")
        if message:
            line.append(f": {message}")
        return line
    line.append("✘ error", style="bold red")
    line.append(f" · task {ref} ({_status_words(job.status)})")
    if error is not None:
        line.append(f": {printable(error)}")
    return line


def reuse_line(job: Job) -> Text:
    """Said when ``generate`` hands back an earlier identical job instead of paying again."""
    return Text(f"reused job {_job_ref(job)} ({_status_words(job.status)}) — no new charge; "
                "--force pays again")


# -- following jobs -------------------------------------------------------------------------

def _stderr_console() -> Console:
    return Console(stderr=True, highlight=False, emoji=False, markup=False)


def _interactive(console: Console) -> bool:
    return console.is_terminal and not console.is_dumb_terminal


def _settle(job: Job, timeout: float) -> tuple[bool, BaseException | None]:
    """Wait up to ``timeout`` s: (settled, the error wait() raised, if any)."""
    try:
        job.wait(timeout)
    except TimeoutError:
        return False, None
    except SoraError as exc:
        return True, exc
    return True, None


def follow(jobs: Sequence[Job], console: Console, *, quiet: bool = False,
           tick: float = 0.25) -> dict[str, BaseException | None]:
    """Show jobs until each settles; one final line each. Returns local id -> error or None.

    On a terminal a live region (one line per running job) is redrawn in place and erased
    when the last job settles; elsewhere a plain line is printed when a job's state moves.
    """
    results: dict[str, BaseException | None] = {}
    running = list(jobs)
    labels = len(jobs) > 1
    countdown = Countdown()

    def label(job: Job) -> str | None:
        return _job_ref(job) if labels else None

    def step() -> list[tuple[Job, BaseException | None]]:
        settled = []
        for job in list(running):
            # A short wait per job keeps the loop responsive for many jobs.
            done, error = _settle(job, tick if len(running) == 1 else 0.02)
            if done:
                running.remove(job)
                results[job.local_id] = error
                settled.append((job, error))
        return settled

    if quiet:
        while running:
            for job, error in step():
                if error is not None:
                    console.print(final_line(job, error), soft_wrap=True)
            if len(running) > 1:
                time.sleep(tick)
        return results

    if _interactive(console):
        def view() -> RenderableType:
            return Group(*(progress_line(job, label=label(job), countdown=countdown)
                           for job in running))

        last: list[tuple[Job, BaseException | None]] = []
        with Live(console=console, get_renderable=view, refresh_per_second=4,
                  transient=True, redirect_stdout=False, redirect_stderr=False) as live:
            while running:
                settled = step()
                if not running:     # the last ones: said after the live line is erased
                    last = settled
                    break
                for job, error in settled:   # above the lines of the jobs still running
                    live.console.print(final_line(job, error), soft_wrap=True)
                if len(running) > 1:
                    time.sleep(tick)
        for job, error in last:
            console.print(final_line(job, error), soft_wrap=True)
        return results

    # Not a terminal (a log, a pipe): a plain line whenever a job's state moves on.
    seen: dict[str, tuple[Any, ...]] = {}
    while running:
        for job, error in step():
            console.print(final_line(job, error), soft_wrap=True)
        for job in running:
            state = (job.status, int(job.progress) // 10, job.eta_seconds is None,
                     _saved(job), getattr(job, "poll_error", None),
                     getattr(job, "download_error", None))
            if seen.get(job.local_id) != state:
                seen[job.local_id] = state
                console.print(progress_line(job, label=label(job), bar=False), soft_wrap=True)
        if len(running) > 1:
            time.sleep(tick)
    return results


def _finish(job: Job, error: BaseException | None, out: Path | None) -> int:
    if error is not None or job.status != Status.COMPLETED:
        return 1
    path = job.download(out) if out else job.download()
    print(printable(path), flush=True)
    return 0


# -- commands -------------------------------------------------------------------------------

def _cmd_generate(args: argparse.Namespace) -> int:
    from sora_widgets.studio.studio import default_studio

    console = _stderr_console()
    studio = default_studio()
    try:
        job = studio.generate(args.prompt, aspect_ratio=args.ratio, image=args.image or None,
                              model=args.model, force=args.force, seconds=args.seconds,
                              size=args.size)
    except ValidationError as exc:
        console.print(Text(f"error: {printable(exc)}"), soft_wrap=True)
        return 2
    if job.cached:
        console.print(reuse_line(job), soft_wrap=True)
    elif job.emulator:
        if not args.quiet:
            console.print(Text(f"no SORA_API_KEY: running on the {EMULATOR_WORDS}"),
                          soft_wrap=True)
    else:
        console.print(Text(f"submitting: ${job.price_usd:.2f} is charged when the relay "
                           "accepts the job"), soft_wrap=True)
    try:
        results = follow([job], console, quiet=args.quiet)
    except KeyboardInterrupt:
        return _interrupted(console, [job])
    return _finish(job, results.get(job.local_id), Path(args.out) if args.out else None)


def _interrupted(console: Console, jobs: Sequence[Job]) -> int:
    where = "the local emulator" if all(job.emulator for job in jobs) else "the relay"
    refs = ", ".join(_job_ref(job) for job in jobs)
    verb = "keeps" if len(jobs) == 1 else "keep"
    console.print(Text(f"interrupted: {refs} {verb} running at {where}; "
                       "`sora-widgets resume` picks it up"), soft_wrap=True)
    return 130


def _created(job: Job) -> str:
    if not job.created_at:
        return "—"
    return datetime.fromtimestamp(job.created_at).strftime("%Y-%m-%d %H:%M")


def _cost(job: Job) -> str:
    if job.emulator:
        return "free"
    if job.charge == Charge.CHARGED:
        return f"${job.cost_usd or job.price_usd:.2f}"
    if job.charge == Charge.MAYBE:
        return f"maybe ${job.price_usd:.2f}"
    if job.status == Status.SUBMITTING:
        return f"${job.price_usd:.2f}?"
    return "none"


_STATUS_STYLE = {Status.COMPLETED.value: "green", Status.FAILED.value: "red",
                 Status.UNKNOWN.value: "yellow"}


def _videos_dir(jobs: Sequence[Job]) -> Path | None:
    """The one directory every saved video is in, if there is one (shown once)."""
    parents = {job.local_path.parent for job in jobs if job.local_path is not None}
    return parents.pop() if len(parents) == 1 else None


def _tilde(path: Path) -> str:
    text = str(path)
    home = os.path.expanduser("~")
    if home not in ("", "/") and (text == home or text.startswith(home + os.sep)):
        text = "~" + text[len(home):]
    return printable(text)


#: Below this width the file column is left out (the folder is named under the table).
NARROW = 110
#: The prompt keeps at least this many cells before the file column gives up its head.
PROMPT_MIN = 30
_GAP = 2     # between columns (collapsed padding + the blank column rule)


def _left_cut(text: str, width: int) -> str:
    """``…`` + the end of ``text``: a file's name and extension are at its end."""
    if cell_len(text) <= width:
        return text
    tail = text[-max(1, width - 1):]
    while cell_len(tail) > width - 1 and len(tail) > 1:
        tail = tail[1:]
    return "…" + tail


def jobs_table(jobs: Sequence[Job], *, width: int | None = None,
               prompt_width: int = 60) -> Table:
    """History as a table: one row per job (prompts collapsed to one line, truncated).

    ``width`` is the console's: below :data:`NARROW` the file column is left out; above, the
    prompt keeps :data:`PROMPT_MIN` cells and long file names are cut at the front. When
    every saved video is in one folder the file column names the file only (the folder is
    printed once under the table by :func:`print_jobs`).
    """
    common = _videos_dir(jobs)
    files = width is None or width >= NARROW
    rows: list[list[Text]] = []
    for job in jobs:
        prompt = printable(job.prompt) if job.prompt else "(image only)"
        starred, note = getattr(job, "starred", False), getattr(job, "note", "")
        if starred or note:             # the marks kept in the journal
            prompt = (("★ " if starred else "") + prompt
                      + (f" — note: {printable(note)}" if note else ""))
        cells = [
            Text(_created(job)),
            Text(_job_ref(job)),
            Text(_status_words(job.status), style=_STATUS_STYLE.get(job.status, "")),
            Text(job.aspect_ratio),
            Text(_cost(job)),
            Text(_short(prompt, prompt_width), no_wrap=True, overflow="ellipsis"),
        ]
        if files:
            if job.local_path is None:
                file = "—"
            elif common is not None:
                file = printable(job.local_path.name)
            else:
                file = _tilde(job.local_path)
            cells.append(Text(file, no_wrap=True, overflow="ellipsis"))
        rows.append(cells)
    headers = ["created", "task id", "status", "ratio", "cost", "prompt", "file"][
        : 7 if files else 6]
    if files and width is not None and rows:
        fixed = sum(max(cell_len(h), *(row[i].cell_len for row in rows)) + _GAP
                    for i, h in enumerate(headers[:5]))
        prompt_cells = min(PROMPT_MIN, max(row[5].cell_len for row in rows))
        room = max(12, width - fixed - max(cell_len("prompt"), prompt_cells) - _GAP)
        for row in rows:
            row[6] = Text(_left_cut(row[6].plain, room), no_wrap=True)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True,
                  header_style="bold")
    for name in headers:
        # Only the prompt may shrink on a narrow terminal (its cells never wrap: one row each).
        table.add_column(name, no_wrap=name != "prompt", min_width=10 if name == "prompt"
                         else None, justify="right" if name == "cost" else "left")
    for row in rows:
        table.add_row(*row)
    return table


def _money(value: float) -> str:
    return f"${value:.2f}"


def spend_line(session: Any, all_time: Any) -> Text:
    """Money in plain words: charged this session and all time, and what may have been.

    ``session``/``all_time`` are the studio's spend records (``charged_usd``, ``maybe_usd``,
    ``pending_usd``). A CLI command is a session of its own, so "this session" is only said
    when it spent something.
    """
    parts = [f"Spent: {_money(all_time.charged_usd)} all time"]
    if session.charged_usd > 0:
        parts[0] = (f"Spent: {_money(session.charged_usd)} this session, "
                    f"{_money(all_time.charged_usd)} all time")
    text = parts[0]
    if all_time.maybe_usd > 0:
        text += (f"; {_money(all_time.maybe_usd)} more may have been charged "
                 "(submits whose answer was lost)")
    pending = getattr(all_time, "pending_usd", 0.0) or 0.0
    if pending > 0:
        text += f"; {_money(pending)} being submitted now"
    return Text(text + ".")


def print_jobs(console: Console, jobs: Sequence[Job], spend: dict[str, Any] | None) -> None:
    """The ``jobs`` command's output: the table, the videos folder, the money sentence."""
    if not jobs:
        console.print(Text('no jobs yet — try: sora-widgets generate "a prompt"'))
    else:
        files = console.width >= NARROW
        console.print(jobs_table(jobs, width=console.width))
        common = _videos_dir(jobs)
        if common is not None:
            console.print(Text(f"files are in {_tilde(common)}"), soft_wrap=True)
        elif not files and any(job.local_path for job in jobs):
            console.print(Text(f"(a terminal {NARROW} columns wide shows each video's file)"))
        if any(job.emulator for job in jobs):
            console.print(Text(f"free: {EMULATOR_WORDS}"))
    if spend is not None:
        console.print(spend_line(spend["session"], spend["all_time"]), soft_wrap=True)


def _stdout_console() -> Console:
    """Tables go to stdout; piped, they are not cut to 80 columns."""
    console = Console(highlight=False, emoji=False, markup=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, emoji=False, markup=False, width=200)
    return console


def _cmd_jobs(args: argparse.Namespace) -> int:
    from sora_widgets.studio.studio import default_studio

    studio = default_studio()
    found = studio.jobs(args.limit, team=args.team, search=args.search,
                        starred=True if args.starred else None)
    print_jobs(_stdout_console(), found, studio.spend())
    return 0


def team_spend_table(rows: Sequence[dict[str, Any]]) -> Table:
    """Spend per user and UTC day (``cost --team``): charged, and what may have been."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for name in ("day (UTC)", "user", "jobs", "charged", "may have been charged"):
        table.add_column(name, justify="right" if name not in ("day (UTC)", "user") else "left")
    for row in rows:
        table.add_row(Text(row["day"]), Text(printable(str(row["user"]))), str(row["jobs"]),
                      _money(row["charged_usd"]),
                      _money(row["maybe_usd"]) if row["maybe_usd"] else "—")
    return table


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
            console.print(Text(f"This month (UTC), everyone on this journal: {_money(total)}"
                               + (f"; {_money(maybe)} more may have been charged" if maybe
                                  else "") + "."))
        else:
            console.print(Text("No paid jobs this month on this journal."))
        return 0
    spend = studio.spend()
    console.print(spend_line(spend["session"], spend["all_time"]), soft_wrap=True)
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    from sora_widgets.studio.studio import default_studio

    console = _stderr_console()
    resumed = default_studio().resume()
    if not resumed:
        console.print(Text("nothing to resume"))
        return 0
    count = len(resumed)
    console.print(Text(f"resuming {count} job{'s' if count != 1 else ''}: "
                       + ", ".join(f"{_job_ref(job)} ({_status_words(job.status)})"
                                   for job in resumed)), soft_wrap=True)
    if any(job.emulator for job in resumed):
        console.print(Text(EMULATOR_WORDS))
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
    gen.add_argument("--out", "-o", help="copy the finished mp4 here")
    gen.add_argument("--force", action="store_true", help="pay again even if cached")
    gen.add_argument("--quiet", "-q", action="store_true")
    gen.set_defaults(func=_cmd_generate)
    jobs = sub.add_parser("jobs", help="job history from the journal")
    jobs.add_argument("--limit", "-n", type=int, default=20)
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
    console = _stderr_console()
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
