"""Storyboards in a notebook: ``%%sora --storyboard``, ``%sora continue`` and the view.

The cell shows, in order: the quote of the whole storyboard (before anything is sent),
one live slot with a row per shot (its status and progress bar, set from the driver and
poller threads by *traits only*), and, once the film is stitched, that slot replaced by
plain ``text/html``: the film playing from a copy published next to the notebook (like
every other video of the magic) with the shots listed under it. The final update borrows
the cell's parent header, as ``_magic._LiveView`` does, so it lands in the right cell.

IPython and ipywidgets are imported inside the functions that need them: the core's
``Storyboard._repr_html_`` uses :func:`storyboard_html` from here.
"""

from __future__ import annotations

import contextlib
import keyword
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sora_widgets.core.errors import SoraError
from sora_widgets.core.lifecycle import TERMINAL_ERROR_STATUSES, Status
from sora_widgets.media import publish as media
from sora_widgets.studio.storyboard import ENDED, Stage, Storyboard
from sora_widgets.ui import render

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job
    from sora_widgets.ui.magic.magics import SoraMagics

__all__ = ["continue_command", "paragraphs", "run_storyboard", "show_storyboard",
           "storyboard_html", "storyboard_text"]

log = logging.getLogger("sora_widgets.magic")

_STYLE = ("font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px; "
          "line-height: 1.4; max-width: 760px")
_MUTED = "color: var(--jp-ui-font-color2, #666)"
Bundle = dict[str, str]


def _display(*args: Any, **kwargs: Any) -> Any:
    """IPython's ``display`` (imported only when a view shows something)."""
    from IPython.display import display

    show: Callable[..., Any] = display
    return show(*args, **kwargs)


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


# -- HTML (pure, escaped) -------------------------------------------------------------------


def _money(board: Storyboard) -> str:
    jobs = [job for job in board.jobs if job is not None]
    if (board.quote is not None and board.quote.emulator) or (
            jobs and all(job.emulator for job in jobs)):
        return render.EMULATOR_BADGE
    if board.stage in ENDED:
        return f"cost ${board.cost_usd:.2f}"
    return board.quote.text if board.quote is not None else ""


def _shot_words(board: Storyboard, index: int) -> str:
    job = board.jobs[index] if index < len(board.jobs) else None
    if job is None:
        if board.stage in ENDED:
            return "not made"
        return "waiting for shot " + str(index) if index else "waiting"
    if job.status == Status.COMPLETED:
        words = "reused (no new charge)" if job.cached else Status.COMPLETED.value
    elif job.status in TERMINAL_ERROR_STATUSES:
        words = f"{job.status}: {job.error or 'no message'}"
    elif job.status == Status.IN_PROGRESS:
        words = f"generating {int(job.progress)}%"      # the words the magic uses
    else:
        words = f"{job.status.replace('_', ' ')}…"
    ident = f"task {job.id}" if job.id else f"local job {job.local_id[:8]}"
    # The header says "local emulator — no charge" once; a shot adds only real money words.
    money = render.money_line(job, badge=False)
    return f"{words} · {ident}" + (f" · {money}" if money else "")


def _film_seconds(path: Path | None) -> float | None:
    if path is None or not path.is_file():
        return None
    try:
        from sora_widgets.media.frames import probe

        return probe(path).duration
    except (OSError, SoraError):
        return None


def storyboard_html(board: Storyboard, film_src: str | None = None,
                    shot_srcs: Sequence[str | None] | None = None) -> str:
    """The board now: the film playing (or why there is none), the shots listed under it.

    Without sources, copies already published next to the notebook are used (writes
    nothing)."""
    n = len(board.shots)
    portrait = board.aspect_ratio == "9:16"
    head = f"Storyboard · {n} shot{'s' if n != 1 else ''} · {board.aspect_ratio}"
    parts = [f"<div class='sora-storyboard' style='{_STYLE}'>",
             f"<div><b>{render.escape(head)}</b> · <span class='sora-money'>"
             f"{render.escape(_money(board))}</span></div>"]
    if board.stage == Stage.READY:
        film = board.film_path
        src = render.safe_url(film_src) or (media.published(film) if film else None)
        size = "width='360' height='640'" if portrait else "width='640' height='360'"
        if src:
            parts.append(
                f"<video class='sora-video sora-film' controls muted playsinline "
                f"preload='auto' {size} style='max-width: 100%; height: auto; "
                f"background: #000' src='{render.escape(src)}'></video>")
        seconds = _film_seconds(film)
        length = f" · {seconds:.0f} s" if seconds else ""
        link = (f" · <a href='{render.escape(src)}' download target='_blank'>download "
                "mp4</a>") if src else ""
        where = "" if src else f" · saved to {render.escape(film.name if film else '?')}"
        parts.append(f"<div class='sora-film-caption' style='{_MUTED}'>film of {n} shots"
                     f"{length}{link}{where}</div>")
    elif board.stage in (Stage.STOPPED, Stage.INTERRUPTED):
        title = ("The storyboard stopped" if board.stage == Stage.STOPPED
                 else "The storyboard is paused")
        parts.append(
            "<div class='sora-error' style='border:1px solid #d32f2f; background:#fdecea; "
            f"color:#611a15; padding:8px; border-radius:4px'><b>{title}</b>"
            f"<div>{render.escape(board.error or '')}</div></div>")
    else:
        parts.append(f"<div class='sora-status'>{render.escape(board.stage)}: shot "
                     f"{board.current + 1} of {n}</div>")
    items = []
    for index, prompt in enumerate(board.shots):
        job = board.jobs[index] if index < len(board.jobs) else None
        src = shot_srcs[index] if shot_srcs is not None and index < len(shot_srcs) else (
            render.local_src(job) if job is not None else None)
        src = render.safe_url(src)
        width, height = (108, 192) if portrait else (192, 108)
        player = (f"<video class='sora-shot-video' controls muted playsinline "
                  f"preload='metadata' width='{width}' height='{height}' style='background:"
                  f"#000; flex: none' src='{render.escape(src)}'></video>" if src else "")
        items.append(
            "<li class='sora-shot' style='display: flex; gap: 10px; align-items: flex-start;"
            f" margin: 6px 0'>{player}<div><div><b>Shot {index + 1}</b> · "
            f"<span class='sora-shot-prompt'>{render.escape(prompt)}</span></div>"
            f"<div class='sora-shot-status' style='{_MUTED}'>"
            f"{render.escape(_shot_words(board, index))}</div></div></li>")
    parts.append("<ol class='sora-shots' style='list-style: none; padding: 0; margin: 8px 0'>"
                 + "".join(items) + "</ol></div>")
    return "".join(parts)


def storyboard_text(board: Storyboard, film_src: str | None = None) -> str:
    """The same news in plain text; never any HTML."""
    lines = [f"Storyboard · {len(board.shots)} shots · {board.stage} · {_money(board)}"]
    if board.stage == Stage.READY:
        lines.append(f"film: {film_src or board.film_path}")
    elif board.error:
        lines.append(board.error)
    for index, prompt in enumerate(board.shots):
        lines.append(f"  shot {index + 1}: {prompt[:60]!r} · {_shot_words(board, index)}")
    return "\n".join(lines)


def _publish(path: Path | None, media_dir: str, embed: bool = False) -> str | None:
    if path is None or not path.is_file():
        return None
    try:
        return media.data_uri(path) if embed else media.publish_video(path, media_dir)
    except (OSError, ValueError):
        return None


def final_bundle(board: Storyboard, media_dir: str = media.DEFAULT_MEDIA_DIR, *,
                 embed: bool = False) -> Bundle:
    """The finished board, its film and shots published next to the notebook (or inlined
    as base64 with ``embed``: a self-contained notebook, several MB)."""
    film = _publish(board.film_path, media_dir, embed) if board.stage == Stage.READY else None
    shots = [_publish(job.local_path, media_dir, embed) if job is not None else None
             for job in board.jobs]
    return {"text/html": storyboard_html(board, film, shots),
            "text/plain": storyboard_text(board, film)}


# -- the live slot ----------------------------------------------------------------------------


class StoryboardView:
    """One display slot: a row per shot while the chain runs, then the film in its place."""

    def __init__(self, shell: Any, board: Storyboard, media_dir: str, *, widgets: bool,
                 wait: bool, embed: bool = False) -> None:
        self.shell = shell
        self.board = board
        self.media_dir = media_dir
        self.embed = embed
        self._use_widgets = widgets
        self._background = not wait
        self._lock = threading.RLock()
        self._finished = False
        self._handle: Any = None
        self._rows: list[tuple[Any, Any]] = []
        self._header: Any = None
        self._widgets: list[Any] = []
        self._watched: set[str] = set()
        get_parent = getattr(shell, "get_parent", None)
        self._parent: Any = get_parent() if callable(get_parent) else None

    def show(self) -> None:
        if self.board.stage in ENDED:
            self._finished = True
            bundle = final_bundle(self.board, self.media_dir, embed=self.embed)
            self._handle = _display(bundle, raw=True, display_id=True)
            return
        if self._use_widgets:
            self._handle = _display(self._build(), display_id=True)
        else:
            self._handle = _display(self._status(), raw=True, display_id=True)
        self.board.observe(self._on_board, names=["stage", "current", "jobs"])
        self._watch_jobs()
        self._refresh()
        if self._background and self.board.stage in ENDED:
            self._finish(in_thread=False)

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
        self._finish(in_thread=False)

    def _status(self) -> Bundle:
        return {"text/html": storyboard_html(self.board),
                "text/plain": storyboard_text(self.board)}

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
                f"<div style='{_STYLE}'><b>Storyboard · {n} shots</b> · "
                f"{render.escape(board.stage)} · shot {board.current + 1} of {n} · "
                f"<span class='sora-money'>{render.escape(_money(board))}</span></div>")
            for index, (label, bar) in enumerate(self._rows):
                job: Job | None = board.jobs[index] if index < len(board.jobs) else None
                label.value = (
                    f"<div class='sora-shot-row' style='{_STYLE}'><b>Shot {index + 1}</b> · "
                    f"{render.escape(board.shots[index][:80])}<div style='{_MUTED}'>"
                    f"{render.escape(_shot_words(board, index))}</div></div>")
                bar.value = int(job.progress) if job is not None else 0
                bar.bar_style = render.bar_style(job) if job is not None else ""

    def _on_board(self, _change: Any) -> None:
        """Driver thread: traits only, never raise."""
        try:
            self._watch_jobs()
            self._refresh()
            if self._background and self.board.stage in ENDED:
                self._finish(in_thread=True)
        except Exception:
            log.exception("could not update the storyboard output")

    def _on_job(self, _change: Any) -> None:
        """Events thread: traits only, never raise."""
        try:
            self._refresh()
        except Exception:
            log.exception("could not update the storyboard output")

    def _finish(self, *, in_thread: bool) -> None:
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
        bundle = final_bundle(self.board, self.media_dir, embed=self.embed)
        set_parent = getattr(self.shell, "set_thread_parent", None)
        reset_parent = getattr(self.shell, "reset_thread_parent", None)
        tokens = None
        if in_thread and self._parent is not None and callable(set_parent) \
                and callable(reset_parent):
            tokens = set_parent(self._parent)
        try:
            self._handle.update(bundle, raw=True)
        finally:
            if tokens is not None and callable(reset_parent):
                reset_parent(tokens)
        for widget in reversed(self._widgets):
            for part in (widget, getattr(widget, "layout", None),
                         getattr(widget, "style", None)):
                if part is not None:
                    with contextlib.suppress(Exception):
                        part.close()


# -- the magic's parts --------------------------------------------------------------------------


def display_board(board: Storyboard) -> None:
    """``board`` as a cell's last expression: the same live slot as the magic's."""
    from IPython import get_ipython

    from sora_widgets.core.settings import preferences

    shell = get_ipython()
    widgets = getattr(shell, "kernel", None) is not None
    StoryboardView(shell, board, preferences.media_dir, widgets=widgets, wait=False,
                   embed=preferences.embed).show()


def show_storyboard(magics: SoraMagics, board: Storyboard, *, wait: bool = False,
                    embed: bool = False) -> None:
    """The board's live slot in the current cell (then its film)."""
    widgets = magics.live_widgets
    if widgets is None:
        widgets = getattr(magics.shell, "kernel", None) is not None
    view = StoryboardView(magics.shell, board, magics.media_dir, widgets=widgets, wait=wait,
                          embed=embed or magics.embed)
    view.show()
    if wait and board.stage not in ENDED:
        view.wait()


def _variable(output: str | None) -> str | None:
    """The ``-o NAME`` to store the result in, checked to be a plain variable name."""
    from IPython.core.error import UsageError

    from sora_widgets.ui.magic.magics import _unquote

    name = _unquote(output) if output else None
    if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
        raise UsageError(f"%sora: -o needs a Python variable name, not {name[:40]!r}")
    return name


def run_storyboard(magics: SoraMagics, args: Any, cell: str | None) -> None:
    """``%%sora --storyboard``: each paragraph of the cell is a shot."""
    from IPython.core.error import UsageError

    from sora_widgets.studio.storyboard import storyboard
    from sora_widgets.ui.magic.magics import _unquote

    if args.prompt:
        raise UsageError("%%sora --storyboard: the shots go in the cell body (one paragraph "
                         "each), not on the magic line")
    if int(args.n) != 1:
        raise UsageError("%%sora --storyboard: -n is not for storyboards (one take per shot)")
    shots = paragraphs(magics._expand(cell)) if cell else []
    if not shots:
        raise UsageError("%%sora --storyboard: write one shot per paragraph in the cell "
                         "body, with a blank line between shots")
    name = _variable(args.output)
    try:
        board = storyboard(
            shots, aspect_ratio=_unquote(args.ratio) if args.ratio else magics.default_ratio,
            image=[_unquote(i) for i in args.image] if args.image else None,
            model=_unquote(args.model) if args.model else None, force=bool(args.force),
            confirm=bool(args.yes))
    except SoraError as exc:    # raised before anything is sent (bad input, budget, confirm)
        raise UsageError(f"%sora: {exc}") from None
    quote = board.quote
    text = f"Storyboard of {len(shots)} shots: " + (quote.text if quote else "")
    _display({"text/html": f"<div class='sora-cost'>{render.escape(text)}</div>",
             "text/plain": text}, raw=True)
    if name is not None and magics.shell is not None:
        magics.shell.user_ns[name] = board
    show_storyboard(magics, board, wait=bool(args.wait), embed=bool(args.embed))


def continue_command(magics: SoraMagics, rest: list[str]) -> None:
    """``%sora continue ID "next prompt"``: a new clip from the last frame of job ID."""
    from IPython.core.error import UsageError

    from sora_widgets.studio.studio import default_studio
    from sora_widgets.ui.magic.magics import _unquote

    parser = magics._parser("continue")
    parser.add_argument("ref", metavar="ID", help="task id or local id (or a prefix)")
    parser.add_argument("prompt", nargs="+", help="what happens next")
    parser.add_argument("--model")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--wait", action="store_true")
    parser.add_argument("-o", "--output", metavar="NAME")
    args = parser.parse_args(rest)
    name = _variable(args.output)
    prompt = " ".join(_unquote(w) for w in args.prompt).strip()
    studio = default_studio()
    try:
        parent = studio.get(_unquote(args.ref))
        job = studio.continue_from(parent, prompt,
                                   model=_unquote(args.model) if args.model else None,
                                   force=bool(args.force))
    except SoraError as exc:
        raise UsageError(f"%sora continue: {exc}") from None
    if name is not None and magics.shell is not None:
        magics.shell.user_ns[name] = job
    magics._present([job], magics._look(), wait=bool(args.wait))
