"""HTML (and a plain-text line) for jobs: status, progress, the ``<video>`` player, errors.

Every string that came from a user or a server is escaped, and only
``http(s)`` URLs, ``data:video/mp4`` and plain relative paths ever become a
``src`` or ``href`` (the rules of :mod:`sora_widgets.ui.safe`). The words are the core's
phrasebook (:mod:`sora_widgets.core.words`), which the CLI and the panel format too. A
saved video is played from the copy ``media`` publishes next to the notebook (a relative
path), because relay links expire and the per-user data dir is not served by Jupyter. No
IPython or ipywidgets imports: the magic and the panel both wrap these strings (the
panel's own pieces are in :mod:`sora_widgets.ui.cards`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sora_widgets.core import words
from sora_widgets.core.lifecycle import TERMINAL_ERROR_STATUSES, Status
from sora_widgets.core.words import EMULATOR_BADGE, REUSED_WORDS, money_line
from sora_widgets.core.words import size as size_text
from sora_widgets.media import publish as media
from sora_widgets.ui.safe import escape, http_url, poster_attr, safe_url, still_src

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job
    from sora_widgets.journal import Spend

__all__ = [
    "COUNTDOWN",
    "EMULATOR_BADGE",
    "REUSED_WORDS",
    "UNKNOWN_WORDS",
    "VIP_WORDS",
    "badge_plan",
    "bar_style",
    "error_html",
    "error_words",
    "escape",
    "eta_left",
    "first_frame_html",
    "grid_columns",
    "grid_html",
    "job_html",
    "job_text",
    "jobs_table_html",
    "local_src",
    "money_line",
    "money_span",
    "phase_words",
    "reused_span",
    "safe_url",
    "size_text",
    "spend_html",
    "spend_text",
    "status_html",
    "team_spend_html",
    "team_spend_text",
    "video_html",
]

_STYLE = ("font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px; "
          "line-height: 1.4; max-width: 720px")
VIP_WORDS = "this key is not in the VIP group"
#: Long prompts take three lines in a table; the whole text stays (and shows on hover).
_CLAMP = ("max-width: 360px; display: -webkit-box; -webkit-line-clamp: 3; "
          "-webkit-box-orient: vertical; overflow: hidden; overflow-wrap: anywhere")
UNKNOWN_WORDS = "Submit outcome unknown — this job may have been charged"
#: The countdown every HTML view shares: its clock is the wall clock, as ``created_at``.
COUNTDOWN = words.Countdown(clock=time.time)


def eta_left(job: Job, now: float | None = None) -> float | None:
    """Seconds left by the job's estimate, counted down since the estimate was made
    (None while there is no estimate: the engine has no evidence yet)."""
    return COUNTDOWN(job, now)


def phase_words(job: Job, now: float | None = None) -> str:
    """What the job is doing now, in the core's words (elapsed time, then time left)."""
    elapsed = (job.completed_at or now or time.time()) - job.created_at
    ended = job.status in TERMINAL_ERROR_STATUSES or job.status == Status.COMPLETED
    if ended:
        COUNTDOWN.forget(job)
    running = not ended and job.status != Status.SUBMITTING
    return words.phase(job, elapsed, eta_left(job, now) if running else None)


_REUSED_STYLE = ("background: #e6f4ea; color: #1e5631; padding: 0 5px; border-radius: 3px; "
                 "white-space: nowrap")


def money_span(job: Job, *, reused: bool | None, badge: bool, lead: str = " · ") -> str:
    """The money words as a span (nothing at all when there is nothing to say)."""
    said = money_line(job, reused=reused, badge=badge)
    if not said:
        return ""
    if said.startswith(REUSED_WORDS):   # a re-run must not look like a fresh job
        return lead + reused_span(said)
    return f"{lead}<span class='sora-money'>{escape(said)}</span>"


def reused_span(said: str) -> str:
    """The reuse words, marked (green) so a re-run never looks like a fresh charge."""
    return f"<span class='sora-money sora-reused' style='{_REUSED_STYLE}'>{escape(said)}</span>"


def bar_style(job: Job) -> str:
    """The progress bar's colour: success when completed, danger when failed or unknown."""
    if job.status == Status.COMPLETED:
        return "success"
    return "danger" if job.status in TERMINAL_ERROR_STATUSES else ""


def status_html(job: Job, *, now: float | None = None, bar: bool = True,
                badge: bool = True, reused: bool | None = None) -> str:
    """One line of status (and a progress bar unless a widget draws one), for running jobs."""
    trouble = (f"<div style='color:#a15c00'>reconnecting: {escape(job.poll_error)}</div>"
               if job.poll_error else "") + (
        f"<div class='sora-notice' style='color:#a15c00'>{escape(job.notice)}</div>"
        if job.notice else "")
    meter = (f"<br><progress value='{int(job.progress)}' max='100' style='width: 320px'>"
             "</progress>" if bar else "")
    return (
        f"<div class='sora-status' style='{_STYLE}'>"
        f"<b class='sora-phase'>{escape(phase_words(job, now))}</b>"
        f"{money_span(job, reused=reused, badge=badge)}{meter}"
        f"<div style='color:#666'>{escape(job.prompt or '(image only)')}"
        f"{first_frame_html(job)}</div>{trouble}</div>"
    )


def error_words(job: Job) -> tuple[str, str]:
    """The title of a failed or unknown job's box, and the advice under its message."""
    if job.status == Status.UNKNOWN:
        return UNKNOWN_WORDS, (
            "The answer to the submit was lost, so it was not retried (a retry could "
            "pay twice). Re-running the same request shows this notice again; pass "
            "force=True (or --force) to submit anew.")
    if job.error_code == "403" and "link" not in (job.error or ""):
        # The error text itself explains the VIP group (client.VIP_MESSAGE): no advice line.
        return f"Access denied: {VIP_WORDS}", ""
    return "Generation failed", ""


def error_html(job: Job, *, badge: bool = True, reused: bool | None = None) -> str:
    """The relay's own words in a red box; 'unknown' explains the possible charge plainly."""
    title, advice = error_words(job)
    return (
        f"<div class='sora-error' style='{_STYLE}; border:1px solid #d32f2f; "
        f"background:#fdecea; color:#611a15; padding:8px; border-radius:4px'>"
        f"<b>{escape(title)}</b><div>{escape(job.error or 'no message from the relay')}</div>"
        + (f"<div style='margin-top:4px'>{escape(advice)}</div>" if advice else "")
        + f"<div style='color:#666; margin-top:4px'>"
          f"{_identity(job, badge=badge, reused=reused)}</div></div>"
    )


def first_frame_html(job: Job) -> str:
    """' · first frame: example.com/cat.jpg' (a link) when the job starts from an image:
    an accepted image is never silent. Only a plain http(s) URL becomes a link."""
    images = job.request.images
    if not images:
        return ""
    url = http_url(images[0])
    more = f" (+{len(images) - 1})" if len(images) > 1 else ""
    if url is None:
        return f" · first frame from an image{escape(more)}"
    shown = url.split("://", 1)[-1]
    shown = shown if len(shown) <= 48 else shown[:47] + "…"
    return (f" · first frame: <a class='sora-first-frame' href='{escape(url)}' "
            f"target='_blank' rel='noopener noreferrer'>{escape(shown)}</a>{escape(more)}")


def _identity(job: Job, *, badge: bool = True, reused: bool | None = None) -> str:
    """'task v_1 · 16:9 · $0.90' as HTML (escaped), the money part left out when empty."""
    ident = f"task {job.id}" if job.id else f"local job {job.local_id[:8]}"
    return (f"{escape(ident)} · {escape(job.aspect_ratio)}"
            f"{money_span(job, reused=reused, badge=badge)}{first_frame_html(job)}")


def video_html(job: Job, src: str, *, note: str | None = None, badge: bool = True,
               reused: bool | None = None, poster: str | None = None) -> str:
    """The finished job: a ``<video controls>`` of the right shape, prompt, id, download link."""
    url = safe_url(src)
    portrait = job.aspect_ratio == "9:16"
    size = "width='270' height='480'" if portrait else "width='640' height='360'"
    player = (f"<video class='sora-video' controls loop muted playsinline preload='auto' "
              f"{size} style='max-width: 100%; height: auto; background: #000' "
              f"src='{escape(url)}'{poster_attr(poster)}></video>" if url else
              "<div>the video link is not a safe URL; it was not embedded</div>")
    link = f"<a href='{escape(url)}' download target='_blank'>download mp4</a>" if url else ""
    extra = f" · {escape(note)}" if note else ""
    return (
        f"<div class='sora-job' style='{_STYLE}'>{player}"
        f"<div><b>{escape(job.prompt or '(image only)')}</b></div>"
        f"<div style='color:#666'>{_identity(job, badge=badge, reused=reused)} · {link}"
        f"{extra}</div></div>"
    )


def local_src(job: Job, media_dir: str = media.DEFAULT_MEDIA_DIR,
              root: Path | None = None) -> str | None:
    """The relative URL of the job's saved video if it is already published next to the
    notebook (or None). Looks only: publishing is the UI layer's act."""
    if job.local_path is None or not job.local_path.is_file():
        return None
    try:
        return media.published(job.local_path, media_dir, root)
    except (OSError, ValueError):
        return None


def job_html(job: Job, src: str | None = None, *, note: str | None = None,
             poster: str | None = None,
             media_dir: str = media.DEFAULT_MEDIA_DIR, root: Path | None = None,
             badge: bool = True, reused: bool | None = None) -> str:
    """Whatever the job's state calls for; ``src`` overrides the player's source.

    Without ``src``, a saved video already published under ``root/media_dir`` (root: the
    working directory, which is the notebook's in a kernel) is played from there; this
    function writes nothing. ``badge`` / ``reused``: see :func:`money_line`.
    """
    if job.status in TERMINAL_ERROR_STATUSES:
        return error_html(job, badge=badge, reused=reused)
    if job.status == Status.COMPLETED:
        source = src or local_src(job, media_dir, root)
        if source and safe_url(source):
            return video_html(job, source, poster=poster, note=note, badge=badge, reused=reused)
        fallback = job.video_url or ""
        if job.local_path is not None:
            note = note or f"saved to {job.local_path.name}; the relay's link may expire"
        else:
            note = note or "the video is not saved yet; the relay's link may expire"
        return video_html(job, fallback, poster=poster, note=note, badge=badge, reused=reused)
    return status_html(job, badge=badge, reused=reused)


def job_text(job: Job, src: str | None = None, *, reused: bool | None = None,
             badge: bool = True) -> str:
    """The same news as plain text (terminals, text/plain fallbacks); never any HTML.
    ``badge`` / ``reused``: see :func:`money_line`."""
    ident = f"task {job.id}" if job.id else f"local job {job.local_id[:8]}"
    prompt = (job.prompt or "(image only)")[:60]
    said = [money_line(job, reused=reused, badge=badge)]
    images = job.request.images
    if images:      # an accepted image is never silent (plain text: the URL as it is)
        said.append(f"first frame: {http_url(images[0]) or 'an image'}")
    tail = "".join(f" · {part}" for part in said if part)
    if job.status in TERMINAL_ERROR_STATUSES:
        title, _ = error_words(job)
        return f"Sora: {title}: {job.error or 'no message'} · {ident}{tail}"
    if job.status == Status.COMPLETED:
        where = src if src and not src.startswith("data:") else (
            "embedded in the notebook" if src else job.video_url or "")
        return f"Sora: completed · {ident} · {job.aspect_ratio}{tail} · {where}"
    return f"Sora: {job.status} {int(job.progress)}% · {ident}{tail} · {prompt!r}"


def grid_columns(n: int) -> int:
    """Columns for ``n`` tiles: up to 3 in one row, 4 as 2 × 2, then rows of 3 — so
    3 variations never leave a hole (2 + 1)."""
    if n <= 3:
        return max(1, n)
    return 2 if n == 4 else 3


def badge_plan(jobs: Sequence[Job], *, said: bool = False) -> tuple[str | None, bool]:
    """Where one output says "local emulator — no charge": once, never once per tile.

    Returns (a header line above the jobs, or None; whether each job says it itself).
    ``said``: the cell has said it already (the quote shown before ``-n``, a sweep or a
    storyboard was sent), so nothing below repeats it."""
    if said:
        return None, False
    if len(jobs) > 1 and all(job.emulator for job in jobs):
        return EMULATOR_BADGE, False
    return None, True


def grid_html(parts: Iterable[str], *, header: str | None = None) -> str:
    """Several jobs side by side (``-n N`` variations, ``%sora resume``, ``sw.grid``);
    ``header``: one line above them (e.g. the emulator badge, said once)."""
    items = list(parts)
    cells = "".join(f"<div class='sora-cell' style='min-width: 0'>{p}</div>" for p in items)
    head = (f"<div class='sora-grid-head' style='{_STYLE}; color: #666; margin-bottom: 4px'>"
            f"{escape(header)}</div>" if header else "")
    columns = grid_columns(len(items))
    return (f"{head}<div class='sora-grid' style='display: grid; gap: 12px; "
            f"grid-template-columns: repeat({columns}, minmax(0, 1fr))'>{cells}</div>")


#: JupyterLab right-aligns table cells by default; a history reads left to right.
_CELL = "text-align: left; vertical-align: top; padding: 2px 8px"


def jobs_table_html(jobs: Iterable[Job], sources: Mapping[str, str] | None = None,
                    posters: Mapping[str, str] | None = None) -> str:
    """History, newest first; ``sources`` maps local ids to a playable src, ``posters`` to
    a still (a thumbnail, linked to the video: no player per row)."""
    sources = sources or {}
    rows = []
    emulator = False
    for job in jobs:
        emulator = emulator or job.emulator
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created_at))
        prompt = job.prompt or "(image only)"
        src = safe_url(sources.get(job.local_id))
        link = safe_url(job.video_url)
        still = still_src((posters or {}).get(job.local_id))
        if still:
            img = (f"<img class='sora-thumb' src='{escape(still)}' alt='poster' width='160' "
                   "style='max-height: 120px; background: #000; display: block'>")
            target = src or link
            video = f"<a href='{escape(target)}' target='_blank'>{img}</a>" if target else img
        elif src:
            video = (f"<video src='{escape(src)}' muted preload='metadata' controls "
                     "width='160' style='max-height: 120px; background: #000'></video>")
        elif link:
            video = f"<a href='{escape(link)}' target='_blank'>link</a>"
        else:
            video = escape(job.local_path.name) if job.local_path else ""
        ident = job.id or job.local_id
        short = ident if len(ident) <= 12 else ident[:10] + "…"
        star = "★ " if job.starred else ""
        note = (f"<div class='sora-note' style='color: #666'>{escape(job.note)}</div>"
                if job.note else "")
        rows.append(
            f"<tr><td style='{_CELL}; white-space: nowrap'>{escape(when)}</td>"
            f"<td style='{_CELL}'><code title='{escape(ident)}'>{escape(short)}</code></td>"
            f"<td style='{_CELL}'>{escape(job.status)}</td>"
            f"<td style='{_CELL}'>{escape(job.aspect_ratio)}</td>"
            f"<td style='{_CELL}; min-width: 220px'><div title='{escape(prompt)}' "
            f"style='{_CLAMP}'>{star}{escape(prompt)}</div>{note}</td>"
            # (the emulator's "no charge" is said once, above the table)
            f"<td style='{_CELL}'>{escape(money_line(job, reused=False, badge=False))}</td>"
            f"<td style='{_CELL}'>{video}</td></tr>")
    if not rows:
        return f"<div style='{_STYLE}'>No jobs yet.</div>"
    head = "".join(f"<th style='{_CELL}'>{name}</th>" for name in
                   ("created", "task", "status", "ratio", "prompt", "cost", "video"))
    said = (f"<div class='sora-jobs-badge' style='{_STYLE}; color: #555'>"
            f"{escape(EMULATOR_BADGE)} for the emulator's jobs</div>" if emulator else "")
    return (f"{said}<table class='sora-jobs' style='{_STYLE}; max-width: none'>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def spend_text(session: Spend, all_time: Spend, budget: float | None) -> str:
    """'This session: $1.80 of a $10.00 budget ($8.20 left) · all time: $3.60 (4 paid jobs)'."""
    budget_text = (f" of a {words.money(budget)} budget "
                   f"({words.money(max(0.0, budget - session.charged_usd))} left)"
                   if budget is not None else "")
    maybe = (f" (+ {words.money(session.maybe_usd)} may have been charged)"
             if session.maybe_usd else "")
    return (f"This session: {words.money(session.charged_usd)}{budget_text}{maybe} · "
            f"all time: {words.money(all_time.charged_usd)} ({all_time.jobs} paid jobs)")


def spend_html(session: Spend, all_time: Spend, budget: float | None, *,
               emulator: bool = False) -> str:
    budget_text = f" of a {words.money(budget)} budget" if budget is not None else ""
    maybe = (f" (+ {words.money(session.maybe_usd)} may have been charged)"
             if session.maybe_usd else "")
    free = (f"<div style='color:#666'>No SORA_API_KEY: new jobs run on the "
            f"{escape(EMULATOR_BADGE)}.</div>" if emulator else "")
    return (f"<div class='sora-spend' style='{_STYLE}'>This session: "
            f"<b>{words.money(session.charged_usd)}</b>{escape(budget_text)}{escape(maybe)} · "
            f"all time: {words.money(all_time.charged_usd)} "
            f"({all_time.jobs} paid jobs){free}</div>")


# -- team spend (%sora cost --team)

def _usd(row: Mapping[str, object], name: str) -> float:
    return float(str(row[name]))


def team_spend_text(rows: Iterable[Mapping[str, object]]) -> str:
    """Spend per user and UTC day, as plain text."""
    lines = [f"{r['day']}  {r['user']}: {r['jobs']} jobs, {words.money(_usd(r, 'charged_usd'))}"
             + (f" (+ {words.money(_usd(r, 'maybe_usd'))} may have been charged)"
                if _usd(r, "maybe_usd") else "") for r in rows]
    return "\n".join(lines) or "No paid jobs this month on this journal."


def team_spend_html(rows: Iterable[Mapping[str, object]]) -> str:
    """Spend per user and UTC day this month, everyone on the journal (escaped)."""
    body = "".join(
        f"<tr><td style='{_CELL}'>{escape(r['day'])}</td><td style='{_CELL}'>"
        f"{escape(r['user'])}</td><td style='{_CELL}'>{escape(r['jobs'])}</td>"
        f"<td style='{_CELL}'>{words.money(_usd(r, 'charged_usd'))}</td><td style='{_CELL}'>"
        + (words.money(_usd(r, "maybe_usd")) if _usd(r, "maybe_usd") else "—")
        + "</td></tr>" for r in rows)
    if not body:
        return f"<div style='{_STYLE}'>No paid jobs this month on this journal.</div>"
    head = "".join(f"<th style='{_CELL}'>{name}</th>" for name in
                   ("day (UTC)", "user", "jobs", "charged", "may have been charged"))
    return (f"<table class='sora-team-spend' style='{_STYLE}; max-width: none'>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
