"""Storyboards in a notebook: ``%%sora --storyboard`` and the board's live view.

The cell shows, in order: the quote of the whole storyboard (before anything is sent),
one live slot with a row per shot (its status and progress bar, set from the driver and
poller threads by *traits only*), and, once the film is stitched, that slot replaced by
plain ``text/html`` (:mod:`.board_html`): the film playing from a copy published next to
the notebook (like every other video of the magic) with the shots listed under it. The
final update borrows the cell's parent header, as the magic's live view does, so it lands
in the right cell.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from sora_widgets.core.errors import SoraError
from sora_widgets.studio.storyboard import ENDED, Storyboard
from sora_widgets.ui import render
from sora_widgets.ui.display import Bundle, Slot
from sora_widgets.ui.magic.board_html import (
    MUTED,
    STYLE,
    final_bundle,
    money_html,
    shot_words,
    storyboard_html,
    storyboard_text,
)
from sora_widgets.ui.magic.command import SoraCommand, usage_error
from sora_widgets.ui.magic.context import MagicContext
from sora_widgets.ui.magic.kernel import live_widgets
from sora_widgets.ui.magic.live import close_widgets, widget_bundle
from sora_widgets.ui.magic.look import show_quote

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job

__all__ = ["StoryboardView", "display_board", "paragraphs", "run_storyboard",
           "show_storyboard"]

log = logging.getLogger("sora_widgets.magic")


def paragraphs(text: str) -> list[str]:
    """The shots of a cell: paragraphs separated by blank lines (a shot may span lines)."""
    shots: list[str] = []
    lines: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.strip():
            lines.append(line.strip())
        elif lines:
            shots.append("\n".join(lines))
            lines = []
    return shots


# -- the live slot ----------------------------------------------------------------------------


class StoryboardView:
    """One display slot: a row per shot while the chain runs, then the film in its place."""

    def __init__(self, shell: Any, board: Storyboard, media_dir: str, *, widgets: bool,
                 wait: bool, embed: bool = False, said: bool = False) -> None:
        self.shell = shell
        self.board = board
        self.media_dir = media_dir
        self.embed = embed
        #: The cell's quote said "local emulator — no charge": the board does not repeat it.
        self.said = said
        self._use_widgets = widgets
        self._background = not wait
        self._lock = threading.RLock()
        self._finished = False
        self._slot: Slot | None = None
        self._rows: list[tuple[Any, Any]] = []
        self._header: Any = None
        self._widgets: list[Any] = []
        self._watched: set[str] = set()

    def show(self) -> None:
        if self.board.stage in ENDED:
            self._finished = True
            self._slot = Slot(self.shell, self._final())
            return
        if self._use_widgets:
            self._slot = Slot(self.shell, widget_bundle(self._build()))
        else:
            self._slot = Slot(self.shell, self._status())
        self.board.observe(self._on_board, names=["stage", "current", "jobs"])
        self._watch_jobs()
        self._refresh()
        if self._background and self.board.stage in ENDED:
            self._finish()

    def wait(self) -> None:
        """``--wait``: block (Ctrl-C leaves the storyboard going), then finish here."""
        try:
            with contextlib.suppress(SoraError):
                self.board.wait()
        except KeyboardInterrupt:
            with self._lock:
                self._background = True
            print("Interrupted: the storyboard keeps going in the background; its film "
                  "will replace the progress above.")
            if self.board.stage not in ENDED:
                return
        self._finish()

    def _status(self) -> Bundle:
        return {"text/html": storyboard_html(self.board, said=self.said),
                "text/plain": storyboard_text(self.board, said=self.said)}

    def _final(self) -> Bundle:
        return final_bundle(self.board, self.media_dir, embed=self.embed, said=self.said)

    def _build(self) -> Any:
        import ipywidgets as w

        self._header = w.HTML()
        rows: list[Any] = [self._header]
        for _ in self.board.shots:
            label = w.HTML()
            bar = w.IntProgress(value=0, min=0, max=100, layout=w.Layout(width="320px"))
            self._rows.append((label, bar))
            row = w.VBox([label, bar])
            rows.append(row)
            self._widgets += [label, bar, row]
        box = w.VBox(rows)
        box.add_class("sora-storyboard-live")
        self._widgets += [self._header, box]
        return box

    def _watch_jobs(self) -> None:
        for job in self.board.jobs:
            if job is not None and job.local_id not in self._watched:
                self._watched.add(job.local_id)
                job.observe(self._on_job, names=["progress", "status"])

    def _refresh(self) -> None:
        with self._lock:
            if self._finished:
                return
            board = self.board
            if not self._use_widgets:
                return      # plain IPython: the final bundle is what counts
            n = len(board.shots)
            self._header.value = (
                f"<div style='{STYLE}'><b>Storyboard · {n} shots</b> · "
                f"{render.escape(board.stage)} · shot {board.current + 1} of {n}"
                f"{money_html(board, said=self.said)}</div>")
            for index, (label, bar) in enumerate(self._rows):
                job: Job | None = board.jobs[index] if index < len(board.jobs) else None
                label.value = (
                    f"<div class='sora-shot-row' style='{STYLE}'><b>Shot {index + 1}</b> · "
                    f"{render.escape(board.shots[index][:80])}<div style='{MUTED}'>"
                    f"{render.escape(shot_words(board, index))}</div></div>")
                bar.value = int(job.progress) if job is not None else 0
                bar.bar_style = render.bar_style(job) if job is not None else ""

    def _on_board(self, _change: Any) -> None:
        """Driver thread: traits only, never raise."""
        try:
            self._watch_jobs()
            self._refresh()
            if self._background and self.board.stage in ENDED:
                self._finish()
        except Exception:
            log.exception("could not update the storyboard output")

    def _on_job(self, _change: Any) -> None:
        """Events thread: traits only, never raise."""
        try:
            self._refresh()
        except Exception:
            log.exception("could not update the storyboard output")

    def _finish(self) -> None:
        """Replace the slot by the film, in the cell that started the board (the slot
        borrows that cell's parent from any thread)."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
        with contextlib.suppress(ValueError):
            self.board.unobserve(self._on_board, names=["stage", "current", "jobs"])
        for job in self.board.jobs:
            if job is not None:
                with contextlib.suppress(ValueError):
                    job.unobserve(self._on_job, names=["progress", "status"])
        assert self._slot is not None
        self._slot.update(self._final())
        close_widgets(self._widgets)


# -- the magic's parts --------------------------------------------------------------------------


def display_board(board: Storyboard) -> None:
    """``board`` as a cell's last expression: the same live slot as the magic's."""
    from IPython import get_ipython

    from sora_widgets.core.settings import preferences

    shell = get_ipython()
    StoryboardView(shell, board, preferences.media_dir, widgets=live_widgets(shell),
                   wait=False, embed=preferences.embed).show()


def show_storyboard(ctx: MagicContext, board: Storyboard, *, wait: bool = False,
                    embed: bool = False, said: bool = False) -> None:
    """The board's live slot in the current cell (then its film); ``said``: the quote
    above said "local emulator — no charge"."""
    look = ctx.looking(embed=embed)
    view = StoryboardView(ctx.shell, board, look.media_dir, widgets=ctx.widgets, wait=wait,
                          embed=look.embed, said=said)
    view.show()
    if wait and board.stage not in ENDED:
        view.wait()


def run_storyboard(ctx: MagicContext, cmd: SoraCommand) -> None:
    """``%%sora --storyboard``: each paragraph of the cell is a shot."""
    from sora_widgets.studio.storyboard import storyboard

    if cmd.prompt_words:
        raise UsageError("%%sora --storyboard: the shots go in the cell body (one paragraph "
                         "each), not on the magic line")
    if cmd.count != 1:
        raise UsageError("%%sora --storyboard: -n is not for storyboards (one take per shot)")
    shots = paragraphs(cmd.expand(cmd.cell)) if cmd.cell else []
    if not shots:
        raise UsageError("%%sora --storyboard: write one shot per paragraph in the cell "
                         "body, with a blank line between shots")
    name = cmd.output
    try:
        board = storyboard(
            shots, aspect_ratio=cmd.value("ratio") or ctx.default_ratio, image=cmd.images,
            model=cmd.value("model"), force=cmd.flag("force"), confirm=cmd.flag("yes"))
    except SoraError as exc:    # raised before anything is sent (bad input, budget, confirm)
        raise usage_error(exc) from None
    quote = board.quote
    show_quote(f"Storyboard of {len(shots)} shots: " + (quote.text if quote else ""))
    ctx.store(name, board)
    show_storyboard(ctx, board, wait=cmd.flag("wait"), embed=cmd.flag("embed"),
                    said=quote is not None and quote.emulator)
