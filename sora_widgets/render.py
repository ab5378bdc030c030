"""HTML (and a plain-text line) for jobs: status, progress, the ``<video>`` player, errors.

Every string that came from a user or a server is escaped here, and only
``http(s)`` URLs, ``data:video/mp4`` and plain relative paths ever become a
``src`` or ``href``. A saved video is played from the copy ``media`` publishes
next to the notebook (a relative path), because relay links expire and the
per-user data dir is not served by Jupyter. No IPython or ipywidgets imports:
the magic and the widget both wrap these strings.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from . import media
from .lifecycle import TERMINAL_ERROR_STATUSES, Charge, Status

if TYPE_CHECKING:
    from .engine import Job
    from .journal import Spend

__all__ = [
    "EMULATOR_BADGE",
    "VIP_WORDS",
    "bar_style",
    "batch_cost_text",
    "error_html",
    "escape",
    "grid_html",
    "job_html",
    "job_text",
    "jobs_table_html",
    "local_src",
    "money_line",
    "safe_url",
    "size_text",
    "spend_html",
    "status_html",
    "video_html",
]

EMULATOR_BADGE = "local emulator — no charge"
_STYLE = ("font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px; "
          "line-height: 1.4; max-width: 720px")
VIP_WORDS = "this key is not in the VIP group"
#: Long prompts take three lines in a table; the whole text stays (and shows on hover).
_CLAMP = ("max-width: 360px; display: -webkit-box; -webkit-line-clamp: 3; "
          "-webkit-box-orient: vertical; overflow: hidden; overflow-wrap: anywhere")
UNKNOWN_WORDS = "Submit outcome unknown — this job may have been charged"


def escape(text: object) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def safe_url(url: str | None) -> str | None:
    """The URL if it may become a ``src``/``href``: http(s), inline mp4, or a relative path."""
    if not url or not isinstance(url, str):
        return None
    url = url.strip()
    if any(ord(c) < 32 for c in url):
        return None
    if url.startswith("data:video/mp4;base64,"):
        return url
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return url
    if not parts.scheme and not parts.netloc and not url.startswith(("/", "\\")) \
            and ":" not in url.split("/")[0] and ".." not in url.split("/"):
        return url
    return None


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds}s"


def size_text(n_bytes: int) -> str:
    """'834 KB' / '1.2 MB': how much an embedded video adds to the notebook."""
    if n_bytes >= 1024 * 1024:
        return f"{n_bytes / (1024 * 1024):.1f} MB"
    return f"{max(1, round(n_bytes / 1024))} KB"


def money_line(job: Job) -> str:
    if job.emulator:
        return EMULATOR_BADGE
    if job.charge == Charge.MAYBE:
        return f"may have been charged ${job.price_usd:.2f}"
    if job.charge == Charge.CHARGED:
        return f"${job.cost_usd:.2f}" + (" (cached: no new charge)" if job.cached else "")
    if job.status == Status.SUBMITTING:
        return f"${job.price_usd:.2f} at submit"
    return "not charged"


def batch_cost_text(new: int, reused: int, price: float, *, emulator: bool) -> str:
    """What ``-n N`` will cost, said before anything is submitted."""
    total = new + reused
    parts = [f"{total} variation{'s' if total != 1 else ''}"]
    if reused:
        parts.append(f"{reused} reused from earlier identical jobs (no new charge)")
    if emulator:
        parts.append(f"{new} new · {EMULATOR_BADGE}")
    else:
        parts.append(f"{new} × ${price:.2f} = ${new * price:.2f}" if new else
                     "nothing new to pay")
    return ": ".join(parts[:1]) + (" — " + "; ".join(parts[1:]))


def bar_style(job: Job) -> str:
    """The progress bar's colour: success when completed, danger when failed or unknown."""
    if job.status == Status.COMPLETED:
        return "success"
    return "danger" if job.status in TERMINAL_ERROR_STATUSES else ""


def status_html(job: Job, *, now: float | None = None, bar: bool = True) -> str:
    """One line of status (and a progress bar unless a widget draws one), for running jobs."""
    trouble = (f"<div style='color:#a15c00'>reconnecting: {escape(job.poll_error)}</div>"
               if job.poll_error else "") + (
        f"<div class='sora-notice' style='color:#a15c00'>{escape(job.notice)}</div>"
        if job.notice else "")
    meter = (f"<br><progress value='{int(job.progress)}' max='100' style='width: 320px'>"
             "</progress>" if bar else "")
    return (
        f"<div class='sora-status' style='{_STYLE}'>"
        f"<b>{escape(_phase(job, now))}</b>"
        f" · <span class='sora-money'>{escape(money_line(job))}</span>{meter}"
        f"<div style='color:#666'>{escape(job.prompt or '(image only)')}</div>{trouble}</div>"
    )


def _error_words(job: Job) -> tuple[str, str]:
    if job.status == Status.UNKNOWN:
        return UNKNOWN_WORDS, (
            "The answer to the submit was lost, so it was not retried (a retry could "
            "pay twice). Re-running the same request shows this notice again; pass "
            "force=True (or --force) to submit anew.")
    if job.error_code == "403" and "link" not in (job.error or ""):
        # The error text itself explains the VIP group (client.VIP_MESSAGE): no advice line.
        return f"Access denied: {VIP_WORDS}", ""
    return "Generation failed", ""


def error_html(job: Job) -> str:
    """The relay's own words in a red box; 'unknown' explains the possible charge plainly."""
    title, advice = _error_words(job)
    return (
        f"<div class='sora-error' style='{_STYLE}; border:1px solid #d32f2f; "
        f"background:#fdecea; color:#611a15; padding:8px; border-radius:4px'>"
        f"<b>{escape(title)}</b><div>{escape(job.error or 'no message from the relay')}</div>"
        + (f"<div style='margin-top:4px'>{escape(advice)}</div>" if advice else "")
        + f"<div style='color:#666; margin-top:4px'>{escape(_identity(job))}</div></div>"
    )


def _identity(job: Job) -> str:
    ident = f"task {job.id}" if job.id else f"local job {job.local_id[:8]}"
    return f"{ident} · {job.aspect_ratio} · {money_line(job)}"


def video_html(job: Job, src: str, *, note: str | None = None) -> str:
    """The finished job: a ``<video controls>`` of the right shape, prompt, id, download link."""
    url = safe_url(src)
    portrait = job.aspect_ratio == "9:16"
    size = "width='270' height='480'" if portrait else "width='640' height='360'"
    player = (f"<video class='sora-video' controls loop muted playsinline preload='auto' "
              f"{size} style='max-width: 100%; height: auto; background: #000' "
              f"src='{escape(url)}'></video>" if url else
              "<div>the video link is not a safe URL; it was not embedded</div>")
    link = f"<a href='{escape(url)}' download target='_blank'>download mp4</a>" if url else ""
    extra = f" · {escape(note)}" if note else ""
    return (
        f"<div class='sora-job' style='{_STYLE}'>{player}"
        f"<div><b>{escape(job.prompt or '(image only)')}</b></div>"
        f"<div style='color:#666'>{escape(_identity(job))} · {link}{extra}</div></div>"
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
             media_dir: str = media.DEFAULT_MEDIA_DIR, root: Path | None = None) -> str:
    """Whatever the job's state calls for; ``src`` overrides the player's source.

    Without ``src``, a saved video already published under ``root/media_dir`` (root: the
    working directory, which is the notebook's in a kernel) is played from there; this
    function writes nothing.
    """
    if job.status in TERMINAL_ERROR_STATUSES:
        return error_html(job)
    if job.status == Status.COMPLETED:
        source = src or local_src(job, media_dir, root)
        if source and safe_url(source):
            return video_html(job, source, note=note)
        fallback = job.video_url or ""
        if job.local_path is not None:
            note = note or f"saved to {job.local_path.name}; the relay's link may expire"
        else:
            note = note or "the video is not saved yet; the relay's link may expire"
        return video_html(job, fallback, note=note)
    return status_html(job)


def job_text(job: Job, src: str | None = None) -> str:
    """The same news as plain text (terminals, text/plain fallbacks); never any HTML."""
    ident = f"task {job.id}" if job.id else f"local job {job.local_id[:8]}"
    prompt = (job.prompt or "(image only)")[:60]
    if job.status in TERMINAL_ERROR_STATUSES:
        title, _ = _error_words(job)
        return f"Sora: {title}: {job.error or 'no message'} · {ident} · {money_line(job)}"
    if job.status == Status.COMPLETED:
        where = src if src and not src.startswith("data:") else (
            "embedded in the notebook" if src else job.video_url or "")
        return f"Sora: completed · {ident} · {job.aspect_ratio} · {money_line(job)} · {where}"
    return (f"Sora: {job.status} {int(job.progress)}% · {ident} · {money_line(job)} · "
            f"{prompt!r}")


def grid_html(parts: Iterable[str]) -> str:
    """Several jobs side by side (``-n N`` variations, ``%sora resume``)."""
    cells = "".join(f"<div class='sora-cell' style='min-width: 0'>{p}</div>" for p in parts)
    return ("<div class='sora-grid' style='display: grid; gap: 12px; "
            f"grid-template-columns: repeat(auto-fill, minmax(300px, 1fr))'>{cells}</div>")


#: JupyterLab right-aligns table cells by default; a history reads left to right.
_CELL = "text-align: left; vertical-align: top; padding: 2px 8px"


def jobs_table_html(jobs: Iterable[Job], sources: Mapping[str, str] | None = None) -> str:
    """History, newest first; ``sources`` maps local ids to a playable src (thumbnails)."""
    sources = sources or {}
    rows = []
    for job in jobs:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created_at))
        prompt = job.prompt or "(image only)"
        src = safe_url(sources.get(job.local_id))
        link = safe_url(job.video_url)
        if src:
            video = (f"<video src='{escape(src)}' muted preload='metadata' controls "
                     "width='160' style='max-height: 120px; background: #000'></video>")
        elif link:
            video = f"<a href='{escape(link)}' target='_blank'>link</a>"
        else:
            video = escape(job.local_path.name) if job.local_path else ""
        ident = job.id or job.local_id
        short = ident if len(ident) <= 12 else ident[:10] + "…"
        rows.append(
            f"<tr><td style='{_CELL}; white-space: nowrap'>{escape(when)}</td>"
            f"<td style='{_CELL}'><code title='{escape(ident)}'>{escape(short)}</code></td>"
            f"<td style='{_CELL}'>{escape(job.status)}</td>"
            f"<td style='{_CELL}'>{escape(job.aspect_ratio)}</td>"
            f"<td style='{_CELL}; min-width: 220px'><div title='{escape(prompt)}' "
            f"style='{_CLAMP}'>{escape(prompt)}</div></td>"
            f"<td style='{_CELL}'>{escape(money_line(job))}</td>"
            f"<td style='{_CELL}'>{video}</td></tr>")
    if not rows:
        return f"<div style='{_STYLE}'>No jobs yet.</div>"
    head = "".join(f"<th style='{_CELL}'>{name}</th>" for name in
                   ("created", "task", "status", "ratio", "prompt", "cost", "video"))
    return (f"<table class='sora-jobs' style='{_STYLE}; max-width: none'>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def spend_html(session: Spend, all_time: Spend, budget: float | None, *,
               emulator: bool = False) -> str:
    budget_text = f" of a ${budget:.2f} budget" if budget is not None else ""
    maybe = (f" (+ ${session.maybe_usd:.2f} may have been charged)"
             if session.maybe_usd else "")
    free = (f"<div style='color:#666'>No SORA_API_KEY: new jobs run on the "
            f"{escape(EMULATOR_BADGE)}.</div>" if emulator else "")
    return (f"<div class='sora-spend' style='{_STYLE}'>This session: "
            f"<b>${session.charged_usd:.2f}</b>{escape(budget_text)}{escape(maybe)} · "
            f"all time: ${all_time.charged_usd:.2f} "
            f"({all_time.jobs} paid jobs){free}</div>")


# -- widget
# HTML pieces of the SoraWidget panel (widget.py). Same rules as above: every string is
# escaped; only http(s) URLs (image preview) or plain relative paths (the published video)
# become a src/href. Sizes are card thumbnails: 16:9 plays at 320x180, 9:16 at 180x320.

_CARD_FONT = ("font-family: var(--jp-ui-font-family, sans-serif); font-size: 12px; "
              "line-height: 1.4")
_MUTED = "color: var(--jp-ui-font-color2, #666)"
_TONES = {"error": "#b3261e", "warning": "#a15c00", "info": "#555"}


def _http_url(url: str | None) -> str | None:
    """The URL if it is a plain http(s) URL (the only kind an ``<img>`` preview may load)."""
    if not url or not isinstance(url, str):
        return None
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    if any(ord(c) < 33 for c in url):
        return None
    return url


def video_size(aspect_ratio: str, width: int = 320) -> tuple[int, int]:
    """(width, height) of a card's player: landscape 320x180, portrait 180x320."""
    short = round(width * 9 / 16)
    return (short, width) if aspect_ratio == "9:16" else (width, short)


def image_preview_html(url: str | None) -> str:
    """A small thumbnail of the first-frame image, or nothing if it is not http(s)."""
    src = _http_url(url)
    if src is None:
        return ""
    return (f"<img class='sora-image-preview' src='{escape(src)}' alt='first frame' "
            "referrerpolicy='no-referrer' style='height: 48px; max-width: 96px; "
            "object-fit: cover; border-radius: 4px; vertical-align: middle'>")


def notice_html(text: str | None, tone: str = "error") -> str:
    """One short line under the form: why Generate is disabled, or what went wrong."""
    if not text:
        return ""
    color = _TONES.get(tone, _TONES["info"])
    return f"<div class='sora-notice' style='{_CARD_FONT}; color: {color}'>{escape(text)}</div>"


def card_header_html(job: Job) -> str:
    """The prompt (clamped to three lines, full text on hover) and the request's settings."""
    prompt = job.prompt or "(image only)"
    when = time.strftime("%H:%M", time.localtime(job.created_at)) if job.created_at else ""
    image = " · first frame from an image" if job.request.images else ""
    return (
        f"<div class='sora-card-header' style='{_CARD_FONT}'>"
        f"<div class='sora-prompt' title='{escape(prompt)}' style='font-size: 13px; "
        "font-weight: 600; display: -webkit-box; -webkit-line-clamp: 3; "
        "-webkit-box-orient: vertical; overflow: hidden; word-break: break-word'>"
        f"{escape(prompt)}</div>"
        f"<div style='{_MUTED}'>{escape(job.aspect_ratio)} · {escape(job.request.model)}"
        f"{escape(image)} · {escape(when)}</div></div>"
    )


def _phase(job: Job, now: float | None) -> str:
    elapsed = _fmt_seconds((job.completed_at or now or time.time()) - job.created_at)
    if job.status == Status.COMPLETED:
        return f"completed in {elapsed}" + ("" if job.local_path else " · saving the video…")
    if job.status == Status.FAILED:
        return f"failed after {elapsed}"
    if job.status == Status.UNKNOWN:
        return "submit outcome unknown"
    if job.status == Status.SUBMITTING:
        return f"submitting… · {elapsed}"
    words = "generating" if job.status == Status.IN_PROGRESS else job.status.replace("_", " ")
    left = f" · about {_fmt_seconds(job.eta_seconds)} left" if job.eta_seconds else ""
    return f"{words} {int(job.progress)}% · {elapsed}{left}"


def card_status_html(job: Job, now: float | None = None) -> str:
    """Status, elapsed time and time left; transient trouble (reconnecting) in amber."""
    trouble = job.poll_error or job.notice or (
        f"saving the video: {job.download_error}"
        if job.download_error and not job.local_path else None)
    line = (f"<div style='color: {_TONES['warning']}'>{escape(trouble)}</div>"
            if trouble and job.status not in TERMINAL_ERROR_STATUSES else "")
    return (f"<div class='sora-card-status' style='{_CARD_FONT}'>"
            f"<span class='sora-phase'>{escape(_phase(job, now))}</span>{line}</div>")


def card_placeholder_html(aspect_ratio: str) -> str:
    """A grey box of the video's shape, so the card does not jump when the video arrives."""
    width, height = video_size(aspect_ratio)
    return (f"<div class='sora-placeholder' style='width: {width}px; height: {height}px; "
            "background: var(--jp-layout-color2, #eee); border-radius: 4px'></div>")


def card_video_html(src: str, aspect_ratio: str) -> str:
    """The player and a download link, for an ``Output`` (so a relative src gets resolved)."""
    url = safe_url(src)
    if url is None:
        return notice_html("the video link is not a safe URL; it was not embedded")
    width, height = video_size(aspect_ratio)
    return (
        f"<div class='sora-card-video' style='{_CARD_FONT}'>"
        f"<video class='sora-video' controls loop muted playsinline preload='metadata' "
        f"width='{width}' height='{height}' src='{escape(url)}' "
        "style='background: #000; border-radius: 4px; display: block'></video>"
        f"<a href='{escape(url)}' download target='_blank'>download mp4</a></div>"
    )


def card_details_html(job: Job, cached: bool = False) -> str:
    """Task id and what it cost; the relay's error (or the maybe-charged notice) in red."""
    ident = f"task {job.id}" if job.id else f"local job {job.local_id[:8]}"
    note = " · cached result, no new charge" if cached else ""
    line = (f"<div class='sora-card-id' style='{_CARD_FONT}; {_MUTED}; word-break: break-all'>"
            f"{escape(ident)} · <span class='sora-money'>{escape(money_line(job))}</span>"
            f"{escape(note)}</div>")
    if job.status in TERMINAL_ERROR_STATUSES:
        return error_html(job)
    return line


def panel_spend_html(session: Spend | None, all_time: Spend | None, budget: float | None,
                     emulator: bool, price: float) -> str:
    """The spend line: the emulator says it is free; a key shows session spend and budget."""
    if emulator or session is None or all_time is None:
        return (f"<div class='sora-spend' style='{_CARD_FONT}; {_MUTED}'>"
                f"{escape(EMULATOR_BADGE)} · set SORA_API_KEY to use the relay "
                f"(${price:.2f} per video)</div>")
    return spend_html(session, all_time, budget)


#: Polish only (the panel works without it): rounded cards, spacing. CSS, no script.
_PANEL_CSS = (
    ".sora-card { border-radius: 8px; box-shadow: 0 1px 3px rgba(0, 0, 0, 0.08); "
    "background: var(--jp-layout-color1, #fff); }"
    ".sora-card > * { margin-top: 2px; margin-bottom: 2px; }"
    ".sora-generate { font-weight: 600; }"
)


def panel_title_html() -> str:
    """The panel's heading, carrying its small stylesheet."""
    return (f"<style>{_PANEL_CSS}</style><div class='sora-title' style='{_CARD_FONT}'>"
            f"<b style='font-size: 14px'>Sora 2</b> <span style='{_MUTED}'>· 12-second "
            "videos, one card per job (newest first)</span></div>")
