"""A storyboard as HTML and plain text: the film (or why there is none), then its shots.

Pure and escaped, like :mod:`sora_widgets.ui.render`: the core's ``Storyboard._repr_html_``
draws through :func:`storyboard_html` (a presenter the UI registers), the live view in
:mod:`.storyboard` uses every function here, and :func:`final_bundle` publishes the film
and its shots next to the notebook (or inlines them with ``embed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sora_widgets.core import words
from sora_widgets.core.errors import SoraError
from sora_widgets.core.lifecycle import TERMINAL_ERROR_STATUSES, Status
from sora_widgets.media import publish as media
from sora_widgets.studio.storyboard import ENDED, Stage, Storyboard
from sora_widgets.ui import render
from sora_widgets.ui.display import Bundle
from sora_widgets.ui.publish import publish

__all__ = ["MUTED", "STYLE", "final_bundle", "money", "money_html", "shot_words",
           "storyboard_html", "storyboard_text"]

STYLE = ("font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px; "
         "line-height: 1.4; max-width: 760px")
MUTED = "color: var(--jp-ui-font-color2, #666)"


def money(board: Storyboard, *, said: bool = False) -> str:
    """The board's money words. ``said``: the cell's quote said "local emulator — no
    charge" already, so the board does not repeat it (nothing to say then)."""
    jobs = [job for job in board.jobs if job is not None]
    if (board.quote is not None and board.quote.emulator) or (
            jobs and all(job.emulator for job in jobs)):
        return "" if said else words.EMULATOR_BADGE
    if board.stage in ENDED:
        return f"cost {words.money(board.cost_usd)}"
    return board.quote.text if board.quote is not None else ""


def shot_words(board: Storyboard, index: int) -> str:
    job = board.jobs[index] if index < len(board.jobs) else None
    if job is None:
        if board.stage in ENDED:
            return "not made"
        return "waiting for shot " + str(index) if index else "waiting"
    if job.status == Status.COMPLETED:
        said = Status.COMPLETED.value     # a reuse is said by the money words below
    elif job.status in TERMINAL_ERROR_STATUSES:
        said = f"{job.status}: {job.error or 'no message'}"
    elif job.status == Status.IN_PROGRESS:
        said = f"{words.status(job.status)} {int(job.progress)}%"   # the magic's words
    else:
        said = f"{words.status(job.status)}…"
    ident = f"task {job.id}" if job.id else f"local job {job.local_id[:8]}"
    # The header says "local emulator — no charge" once; a shot adds only real money words.
    money = words.money_line(job, badge=False)
    return f"{said} · {ident}" + (f" · {money}" if money else "")


def _film_seconds(path: Path | None) -> float | None:
    if path is None or not path.is_file():
        return None
    try:
        from sora_widgets.media.frames import probe

        return probe(path).duration
    except (OSError, SoraError):
        return None


def money_html(board: Storyboard, *, said: bool = False) -> str:
    """' · <span class=sora-money>…</span>' after the board's title, or nothing."""
    said_now = money(board, said=said)
    return f" · <span class='sora-money'>{render.escape(said_now)}</span>" if said_now else ""


def storyboard_html(board: Storyboard, film_src: str | None = None,
                    shot_srcs: Sequence[str | None] | None = None, *,
                    said: bool = False) -> str:
    """The board now: the film playing (or why there is none), the shots listed under it.

    Without sources, copies already published next to the notebook are used (writes
    nothing). ``said``: see :func:`money`."""
    n = len(board.shots)
    portrait = board.aspect_ratio == "9:16"
    head = f"Storyboard · {n} shot{'s' if n != 1 else ''} · {board.aspect_ratio}"
    parts = [f"<div class='sora-storyboard' style='{STYLE}'>",
             f"<div><b>{render.escape(head)}</b>{money_html(board, said=said)}</div>"]
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
        parts.append(f"<div class='sora-film-caption' style='{MUTED}'>film of {n} shots"
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
            f"<div class='sora-shot-status' style='{MUTED}'>"
            f"{render.escape(shot_words(board, index))}</div></div></li>")
    parts.append("<ol class='sora-shots' style='list-style: none; padding: 0; margin: 8px 0'>"
                 + "".join(items) + "</ol></div>")
    return "".join(parts)


def storyboard_text(board: Storyboard, film_src: str | None = None, *,
                    said: bool = False) -> str:
    """The same news in plain text; never any HTML."""
    said_now = money(board, said=said)
    lines = [f"Storyboard · {len(board.shots)} shots · {board.stage}"
             + (f" · {said_now}" if said_now else "")]
    if board.stage == Stage.READY:
        lines.append(f"film: {film_src or board.film_path}")
    elif board.error:
        lines.append(board.error)
    for index, prompt in enumerate(board.shots):
        lines.append(f"  shot {index + 1}: {prompt[:60]!r} · {shot_words(board, index)}")
    return "\n".join(lines)


def final_bundle(board: Storyboard, media_dir: str = media.DEFAULT_MEDIA_DIR, *,
                 embed: bool = False, said: bool = False) -> Bundle:
    """The finished board, its film and shots published next to the notebook (or inlined
    as base64 with ``embed``: a self-contained notebook, several MB). ``said``: see
    :func:`money`."""
    film = publish(board.film_path, media_dir, embed=embed) if board.stage == Stage.READY else None
    shots = [publish(job.local_path, media_dir, embed=embed) if job is not None else None
             for job in board.jobs]
    return {"text/html": storyboard_html(board, film, shots, said=said),
            "text/plain": storyboard_text(board, film, said=said)}
