"""The CLI's tables and money sentences: ``jobs`` (history) and ``cost``.

Cells are plain :class:`rich.text.Text` of :func:`~sora_widgets.ui.printable.printable`
strings (a prompt or a teammate's row never becomes markup or a terminal sequence).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sora_widgets.core import words
from sora_widgets.core.lifecycle import Charge, Status
from sora_widgets.core.words import EMULATOR_BADGE
from sora_widgets.ui.cli_follow import job_ref
from sora_widgets.ui.printable import printable, short

if TYPE_CHECKING:
    from sora_widgets import Job

__all__ = ["NARROW", "PROMPT_MIN", "jobs_table", "print_jobs", "spend_line",
           "team_spend_table"]


def _created(job: Job) -> str:
    if not job.created_at:
        return "—"
    return datetime.fromtimestamp(job.created_at).strftime("%Y-%m-%d %H:%M")


def _cost(job: Job) -> str:
    if job.emulator:
        return "free"
    if job.charge == Charge.CHARGED:
        return words.money(job.cost_usd or job.price_usd)
    if job.charge == Charge.MAYBE:
        return f"maybe {words.money(job.price_usd)}"
    if job.status == Status.SUBMITTING:
        return f"{words.money(job.price_usd)}?"
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
            Text(job_ref(job)),
            Text(words.status(job.status), style=_STATUS_STYLE.get(job.status, "")),
            Text(job.aspect_ratio),
            Text(_cost(job)),
            Text(short(prompt, prompt_width), no_wrap=True, overflow="ellipsis"),
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


def spend_line(session: Any, all_time: Any) -> Text:
    """Money in plain words: charged this session and all time, and what may have been.

    ``session``/``all_time`` are the studio's spend records (``charged_usd``, ``maybe_usd``,
    ``pending_usd``). A CLI command is a session of its own, so "this session" is only said
    when it spent something.
    """
    parts = [f"Spent: {words.money(all_time.charged_usd)} all time"]
    if session.charged_usd > 0:
        parts[0] = (f"Spent: {words.money(session.charged_usd)} this session, "
                    f"{words.money(all_time.charged_usd)} all time")
    text = parts[0]
    if all_time.maybe_usd > 0:
        text += (f"; {words.money(all_time.maybe_usd)} more may have been charged "
                 "(submits whose answer was lost)")
    pending = getattr(all_time, "pending_usd", 0.0) or 0.0
    if pending > 0:
        text += f"; {words.money(pending)} being submitted now"
    return Text(text + ".")


def print_jobs(console: Console, jobs: Sequence[Job], spend: dict[str, Any] | None, *,
               total: int | None = None) -> None:
    """The ``jobs`` command's output: the table, how many of how many (``total``: the
    jobs the filters match, when the list was cut), the videos folder, the money sentence."""
    if not jobs:
        console.print(Text('no jobs yet — try: sora-widgets generate "a prompt"'))
    else:
        files = console.width >= NARROW
        console.print(jobs_table(jobs, width=console.width))
        if total is not None and total > len(jobs):
            console.print(Text(f"{len(jobs)} of {total} — --all shows every one "
                               f"(or --limit N)"))
        common = _videos_dir(jobs)
        if common is not None:
            console.print(Text(f"files are in {_tilde(common)}"), soft_wrap=True)
        elif not files and any(job.local_path for job in jobs):
            console.print(Text(f"(a terminal {NARROW} columns wide shows each video's file)"))
        if any(job.emulator for job in jobs):
            console.print(Text(f"free: {EMULATOR_BADGE}"))
    if spend is not None:
        console.print(spend_line(spend["session"], spend["all_time"]), soft_wrap=True)


def team_spend_table(rows: Sequence[dict[str, Any]]) -> Table:
    """Spend per user and UTC day (``cost --team``): charged, and what may have been."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for name in ("day (UTC)", "user", "jobs", "charged", "may have been charged"):
        table.add_column(name, justify="right" if name not in ("day (UTC)", "user") else "left")
    for row in rows:
        table.add_row(Text(row["day"]), Text(printable(str(row["user"]))), str(row["jobs"]),
                      words.money(row["charged_usd"]),
                      words.money(row["maybe_usd"]) if row["maybe_usd"] else "—")
    return table
