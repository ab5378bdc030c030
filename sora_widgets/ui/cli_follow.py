"""The CLI following jobs: a live line per running job, then one final line each.

Drawing is done by `rich`: a live progress line while a job runs (redrawn in place,
erased when the job settles, then one final line), plain lines when the output is not a
terminal. The words are the core's phrasebook (:mod:`sora_widgets.core.words`): the same
phases, durations and countdown as the notebook's HTML.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from sora_widgets.core import words
from sora_widgets.core.errors import SoraError
from sora_widgets.core.lifecycle import Charge, Status
from sora_widgets.core.words import EMULATOR_BADGE, UNKNOWN_WORDS, Countdown
from sora_widgets.ui.printable import printable

if TYPE_CHECKING:
    from sora_widgets import Job

__all__ = ["final_line", "follow", "job_ref", "progress_line", "reuse_line", "saved",
           "stderr_console"]


def job_ref(job: Job) -> str:
    """The task id, or the local id for a submit the relay never answered."""
    return printable(job.id) if job.id else f"local:{job.local_id[:8]}"


def saved(job: Job) -> bool:
    return job.local_path is not None


def progress_line(job: Job, *, label: str | None = None, bar: bool = True,
                  width: int = 30, countdown: Countdown | None = None) -> RenderableType:
    """The live line of a running job: spinner, bar, percent, elapsed, time left.

    Time left reads "estimating…" until the engine has an estimate (``eta_seconds``).
    """
    line = Text(no_wrap=True, overflow="ellipsis")
    if label:
        line.append(printable(label), style="bold")
        line.append(" ")
    if job.status == Status.COMPLETED and not saved(job):
        line.append(words.saving(job.elapsed))     # "completed in" is the final line's
    else:
        line.append(words.phase(job, job.elapsed,
                                countdown(job) if countdown else job.eta_seconds))
    trouble = getattr(job, "poll_error", None)
    saving = getattr(job, "download_error", None) if job.status == Status.COMPLETED else None
    if trouble:
        line.append(f" · reconnecting: {printable(trouble)}", style="yellow")
    elif saving and not saved(job):
        line.append(f" · retrying: {printable(saving)}", style="yellow")
    if not bar:
        return line
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True, width=width)
    grid.add_column(no_wrap=True, overflow="ellipsis")
    done = 100.0 if job.status == Status.COMPLETED else float(job.progress)
    grid.add_row(Spinner("dots", style="cyan"),
                 ProgressBar(total=100.0, completed=done, width=width), line)
    return grid


def final_line(job: Job, error: BaseException | None = None) -> Text:
    """One line saying how a job ended (after the live line is erased)."""
    ref = job_ref(job)
    line = Text()
    if job.status == Status.COMPLETED and error is None:
        line.append("✔ completed", style="bold green")
        line.append(f" in {words.duration(job.elapsed) or '?'} · task {ref}")
        if not job.emulator and not job.reused and job.charge == Charge.CHARGED:
            line.append(f" · {words.money(job.cost_usd or job.price_usd)} charged")
        return line
    if job.status == Status.UNKNOWN:
        line.append(f"? {UNKNOWN_WORDS}", style="bold yellow")
        line.append(f" · {ref}")
        if job.emulator:
            line.append(f" · {EMULATOR_BADGE}")
        else:
            line.append(f" · it may have been charged {words.money(job.price_usd)}: the answer "
                        "to the submit was lost, so it was not retried (a retry could pay "
                        "twice)")
        return line
    if job.status == Status.FAILED:
        line.append("✘ failed", style="bold red")
        line.append(f" after {words.duration(job.elapsed) or '?'} · task {ref}")
        message = printable(job.error or (error and str(error)) or "")
        if message:
            line.append(f": {message}")
        return line
    line.append("✘ error", style="bold red")
    line.append(f" · task {ref} ({words.status(job.status)})")
    if error is not None:
        line.append(f": {printable(error)}")
    return line


def reuse_line(job: Job) -> Text:
    """Said when ``generate`` hands back an earlier identical job instead of paying again."""
    return Text(f"reused job {job_ref(job)} ({words.status(job.status)}) — no new charge; "
                "--force pays again")


# -- following jobs -------------------------------------------------------------------------

def stderr_console() -> Console:
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
        return job_ref(job) if labels else None

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
            # A job that has just ended gets its final line next, not a live one as well.
            return Group(*(progress_line(job, label=label(job), countdown=countdown)
                           for job in running
                           if not (job.status == Status.COMPLETED and saved(job))))

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
                     saved(job), getattr(job, "poll_error", None),
                     getattr(job, "download_error", None))
            if seen.get(job.local_id) != state:
                seen[job.local_id] = state
                console.print(progress_line(job, label=label(job), bar=False), soft_wrap=True)
        if len(running) > 1:
            time.sleep(tick)
    return results


