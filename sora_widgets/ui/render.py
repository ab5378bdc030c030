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
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from sora_widgets.core.lifecycle import TERMINAL_ERROR_STATUSES, Charge, Status
from sora_widgets.media import publish as media

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job
    from sora_widgets.journal import Spend

__all__ = [
    "EMULATOR_BADGE",
    "REUSED_WORDS",
    "VIP_WORDS",
    "bar_style",
    "batch_cost_text",
    "error_html",
    "escape",
    "eta_left",
    "grid_columns",
    "grid_html",
    "job_html",
    "job_text",
    "jobs_table_html",
    "local_src",
    "money_line",
    "panel_snapshot_html",
    "restart_html",
    "safe_url",
    "size_text",
    "spend_html",
    "status_html",
    "video_html",
]

EMULATOR_BADGE = "local emulator — no charge"
#: How every UI says that a job came from the cache (the CLI says the same words).
REUSED_WORDS = "reused — no new charge"
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


_JPEG_URI = "data:image/jpeg;base64,"
_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _poster_attr(poster: str | None) -> str:
    """`` poster='...'`` for a still shown before the video plays (and where it cannot):
    an inline JPEG, or a URL that may be a ``src``; anything else adds nothing."""
    still = _still_src(poster)
    return f" poster='{escape(still)}'" if still else ""


def _is_inline_jpeg(value: str) -> bool:
    return value.startswith(_JPEG_URI) and set(value[len(_JPEG_URI):]) <= _BASE64


def _still_src(value: str | None) -> str | None:
    """A thumbnail's ``src``: an inline JPEG (base64 only), or a URL that may be a src."""
    if not value or not isinstance(value, str):
        return None
    if _is_inline_jpeg(value):
        return value
    url = safe_url(value)
    return url if url and not url.startswith("data:") else None


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


def money_line(job: Job, *, reused: bool | None = None, badge: bool = True) -> str:
    """What the job cost, in words.

    ``reused``: the job came from the cache in the call being shown (default: the handle's
    ``cached`` flag) — every UI then says "reused — no new charge". ``badge=False``: the
    output says "local emulator — no charge" once elsewhere, so an emulator job says
    nothing here (the words once per output, not on every tile)."""
    if job.cached if reused is None else reused:
        if job.charge == Charge.MAYBE:
            return f"{REUSED_WORDS} (its first submit may have been charged " \
                   f"${job.price_usd:.2f})"
        return REUSED_WORDS
    if job.emulator:
        return EMULATOR_BADGE if badge else ""
    if job.charge == Charge.MAYBE:
        return f"may have been charged ${job.price_usd:.2f}"
    if job.charge == Charge.CHARGED:
        return f"${job.cost_usd:.2f}"
    if job.status == Status.SUBMITTING:
        return f"${job.price_usd:.2f} at submit"
    return "not charged"


_REUSED_STYLE = ("background: #e6f4ea; color: #1e5631; padding: 0 5px; border-radius: 3px; "
                 "white-space: nowrap")


def _money_span(job: Job, *, reused: bool | None, badge: bool, lead: str = " · ") -> str:
    """The money words as a span (nothing at all when there is nothing to say)."""
    words = money_line(job, reused=reused, badge=badge)
    if not words:
        return ""
    if words.startswith(REUSED_WORDS):   # a re-run must not look like a fresh job
        return lead + _reused_span(words)
    return f"{lead}<span class='sora-money'>{escape(words)}</span>"


def _reused_span(words: str) -> str:
    return f"<span class='sora-money sora-reused' style='{_REUSED_STYLE}'>{escape(words)}</span>"


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
        f"<b class='sora-phase'>{escape(_phase(job, now))}</b>"
        f"{_money_span(job, reused=reused, badge=badge)}{meter}"
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


def error_html(job: Job, *, badge: bool = True, reused: bool | None = None) -> str:
    """The relay's own words in a red box; 'unknown' explains the possible charge plainly."""
    title, advice = _error_words(job)
    return (
        f"<div class='sora-error' style='{_STYLE}; border:1px solid #d32f2f; "
        f"background:#fdecea; color:#611a15; padding:8px; border-radius:4px'>"
        f"<b>{escape(title)}</b><div>{escape(job.error or 'no message from the relay')}</div>"
        + (f"<div style='margin-top:4px'>{escape(advice)}</div>" if advice else "")
        + f"<div style='color:#666; margin-top:4px'>"
          f"{_identity(job, badge=badge, reused=reused)}</div></div>"
    )


def _identity(job: Job, *, badge: bool = True, reused: bool | None = None) -> str:
    """'task v_1 · 16:9 · $0.90' as HTML (escaped), the money part left out when empty."""
    ident = f"task {job.id}" if job.id else f"local job {job.local_id[:8]}"
    return (f"{escape(ident)} · {escape(job.aspect_ratio)}"
            f"{_money_span(job, reused=reused, badge=badge)}")


def video_html(job: Job, src: str, *, note: str | None = None, badge: bool = True,
               reused: bool | None = None, poster: str | None = None) -> str:
    """The finished job: a ``<video controls>`` of the right shape, prompt, id, download link."""
    url = safe_url(src)
    portrait = job.aspect_ratio == "9:16"
    size = "width='270' height='480'" if portrait else "width='640' height='360'"
    player = (f"<video class='sora-video' controls loop muted playsinline preload='auto' "
              f"{size} style='max-width: 100%; height: auto; background: #000' "
              f"src='{escape(url)}'{_poster_attr(poster)}></video>" if url else
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


def job_text(job: Job, src: str | None = None, *, reused: bool | None = None) -> str:
    """The same news as plain text (terminals, text/plain fallbacks); never any HTML."""
    ident = f"task {job.id}" if job.id else f"local job {job.local_id[:8]}"
    prompt = (job.prompt or "(image only)")[:60]
    money = money_line(job, reused=reused)
    if job.status in TERMINAL_ERROR_STATUSES:
        title, _ = _error_words(job)
        return f"Sora: {title}: {job.error or 'no message'} · {ident} · {money}"
    if job.status == Status.COMPLETED:
        where = src if src and not src.startswith("data:") else (
            "embedded in the notebook" if src else job.video_url or "")
        return f"Sora: completed · {ident} · {job.aspect_ratio} · {money} · {where}"
    return f"Sora: {job.status} {int(job.progress)}% · {ident} · {money} · {prompt!r}"


def grid_columns(n: int) -> int:
    """Columns for ``n`` tiles: up to 3 in one row, 4 as 2 × 2, then rows of 3 — so
    3 variations never leave a hole (2 + 1)."""
    if n <= 3:
        return max(1, n)
    return 2 if n == 4 else 3


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
    for job in jobs:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created_at))
        prompt = job.prompt or "(image only)"
        src = safe_url(sources.get(job.local_id))
        link = safe_url(job.video_url)
        still = _still_src((posters or {}).get(job.local_id))
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
            f"<td style='{_CELL}'>{escape(money_line(job, reused=False))}</td>"
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


#: Characters kept as they are when a URL goes into CSS ``url('...')``: no quote, paren,
#: backslash or space can close the string or the function.
_CSS_URL_SAFE = ":/?#[]@!$&*+,;=%~-._"


def image_preview_html(url: str | None) -> str:
    """A small thumbnail of the first-frame image, or nothing if it is not http(s).

    A neutral box shows the URL as text; the picture is a CSS background on a layer
    above it. When the image cannot be loaded, that layer stays transparent: the user
    sees the box and the URL, never a broken-image icon (and no script is needed)."""
    src = _http_url(url)
    if src is None:
        return ""
    css_url = quote(src, safe=_CSS_URL_SAFE)
    shown = src if len(src) <= 90 else src[:89] + "…"
    return (
        f"<div class='sora-image-preview' title='{escape(src)}' style='position: relative; "
        "display: inline-block; vertical-align: middle; width: 112px; height: 63px; "
        "overflow: hidden; border-radius: 4px; background: var(--jp-layout-color2, #eee); "
        "border: 1px solid var(--jp-border-color2, #ddd)'>"
        f"<div class='sora-image-url' style='position: absolute; inset: 0; padding: 3px 4px; "
        f"{_MUTED}; font: 9px/1.25 var(--jp-ui-font-family, sans-serif); "
        f"word-break: break-all; overflow: hidden'>{escape(shown)}</div>"
        "<div class='sora-image-picture' role='img' aria-label='first frame' "
        f"style=\"position: absolute; inset: 0; background: url('{escape(css_url)}') "
        "center / cover no-repeat\"></div></div>"
    )


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


_eta_lock = threading.Lock()
#: When each job's current ETA was first rendered: the time left then counts down between
#: polls (a UI ticks once a second; the engine sets a new estimate on each poll).
_eta_seen: weakref.WeakKeyDictionary[Job, tuple[float, float]] = weakref.WeakKeyDictionary()


def eta_left(job: Job, now: float | None = None) -> float | None:
    """Seconds left by the job's estimate, counted down since the estimate was made
    (None while there is no estimate: the engine has no evidence yet)."""
    eta = job.eta_seconds
    if eta is None:
        return None
    now = time.time() if now is None else now
    with _eta_lock:
        seen = _eta_seen.get(job)
        if seen is None or seen[0] != eta:
            _eta_seen[job] = (eta, now)
            return eta
    return max(0.0, eta - (now - seen[1]))


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
    left = eta_left(job, now)
    if left is None:
        eta = " · estimating…"
    elif left >= 1:
        eta = f" · about {_fmt_seconds(left)} left"
    else:
        eta = " · finishing…"
    return f"{words} {int(job.progress)}% · {elapsed}{eta}"


def card_status_html(job: Job, now: float | None = None) -> str:
    """Status, elapsed time and time left; transient trouble (reconnecting) in amber."""
    trouble = job.poll_error or job.notice or (
        f"saving the video: {job.download_error}"
        if job.download_error and not job.local_path else None)
    line = (f"<div style='color: {_TONES['warning']}'>{escape(trouble)}</div>"
            if trouble and job.status not in TERMINAL_ERROR_STATUSES else "")
    running = "" if job.done else " sora-phase-running"
    return (f"<div class='sora-card-status' style='{_CARD_FONT}'>"
            f"<span class='sora-phase{running}'>{escape(_phase(job, now))}</span>{line}</div>")


def card_placeholder_html(aspect_ratio: str) -> str:
    """A grey box of the video's shape, so the card does not jump when the video arrives."""
    width, height = video_size(aspect_ratio)
    return (f"<div class='sora-placeholder' style='width: {width}px; height: {height}px; "
            "background: var(--jp-layout-color2, #eee); border-radius: 4px'></div>")


def card_video_html(src: str, aspect_ratio: str, poster: str | None = None) -> str:
    """The player and a download link, for an ``Output`` (so a relative src gets resolved)."""
    url = safe_url(src)
    if url is None:
        return notice_html("the video link is not a safe URL; it was not embedded")
    width, height = video_size(aspect_ratio)
    return (
        f"<div class='sora-card-video' style='{_CARD_FONT}'>"
        f"<video class='sora-video' controls loop muted playsinline preload='metadata' "
        f"width='{width}' height='{height}' src='{escape(url)}'{_poster_attr(poster)} "
        "style='background: #000; border-radius: 4px; display: block'></video>"
        f"<a href='{escape(url)}' download target='_blank'>download mp4</a></div>"
    )


def card_details_html(job: Job, cached: bool = False, *, badge: bool = False) -> str:
    """Task id and what it cost; the relay's error (or the maybe-charged notice) in red.

    ``cached``: the card shows a reused job ("reused — no new charge"). ``badge``: say
    "local emulator — no charge" on the card (the panel's spend line already says it
    when the panel itself runs on the emulator)."""
    if job.status in TERMINAL_ERROR_STATUSES:
        return error_html(job, badge=badge, reused=cached)
    ident = f"task {job.id}" if job.id else f"local job {job.local_id[:8]}"
    # The card keeps what the job cost; a reuse is said after it (the last click's news).
    reuse = " · " + _reused_span(REUSED_WORDS) if cached else ""
    return (f"<div class='sora-card-id' style='{_CARD_FONT}; {_MUTED}; "
            f"overflow-wrap: anywhere'>{escape(ident)}"
            f"{_money_span(job, reused=False, badge=badge)}{reuse}</div>")


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

#: A live view (the ``%sora`` progress, the panel) whose kernel restarted: JupyterLab's
#: widget manager marks every view of the old kernel's models ``jupyter-widgets-disconnected``
#: (and never runs our code again), so CSS alone swaps the frozen progress for the restart
#: message. No script: none would run in every frontend.
_LIVE_CSS = (
    ".sora-live .sora-restart { display: none !important; }"
    ".sora-live.jupyter-widgets-disconnected .sora-restart { display: block !important; }"
    ".sora-live.jupyter-widgets-disconnected .sora-running,"
    ".sora-live.jupyter-widgets-disconnected .sora-phase-running { display: none !important; }"
    ".sora-live.jupyter-widgets-disconnected .sora-form { opacity: 0.45; }"
    # A click or a key on a dead model only raises "Cannot send" in the page: the controls
    # of a dead view take none (its videos still play).
    ".sora-live.jupyter-widgets-disconnected :is(.sora-form, button, input, textarea, "
    "select) { pointer-events: none !important; }"
    # ipywidgets draws a broken-chain icon before every disconnected view: one message
    # says it here, not an icon per control.
    ".sora-live.jupyter-widgets-disconnected::before,"
    ".sora-live .jupyter-widgets-disconnected::before { content: none !important; "
    "display: none !important; }"
)

RESTART_WORDS = "kernel restarted"


def restart_html(what: str = "magic") -> str:
    """The message a live view shows once its kernel has restarted (hidden until then);
    ``what``: "magic" (a ``%sora`` output) or "panel"."""
    if what == "panel":
        advice = ("this panel is no longer live: run its cell again; "
                  "<code>%sora resume</code> follows jobs that were still running")
    else:
        advice = ("run <code>%sora resume</code> to follow this job again (it keeps running "
                  "on the relay, and the journal has it)")
    return (f"<style>{_LIVE_CSS}</style><div class='sora-restart-text' style='{_CARD_FONT}; "
            "font-size: 13px; color: #6b4200; background: #fff4e0; border: 1px solid #f0c36d; "
            f"border-radius: 4px; padding: 6px 8px'><b>{RESTART_WORDS}</b> — {advice}</div>")


def panel_title_html() -> str:
    """The panel's heading, carrying its small stylesheet."""
    return (f"<style>{_PANEL_CSS}{_LIVE_CSS}</style><div class='sora-title' "
            f"style='{_CARD_FONT}'><b style='font-size: 14px'>Sora 2</b> "
            f"<span style='{_MUTED}'>· 12-second videos, one card per job (newest first)"
            "</span></div>")


def snapshot_tile_html(job: Job, src: str | None, *, reused: bool = False,
                       badge: bool = False) -> str:
    """One settled card of the panel as plain HTML: prompt, the player (or the red box)."""
    if job.status in TERMINAL_ERROR_STATUSES:
        body = error_html(job, badge=badge, reused=reused)
    elif src and safe_url(src):
        body = card_video_html(src, job.aspect_ratio) + card_details_html(
            job, reused, badge=badge)
    else:
        body = card_placeholder_html(job.aspect_ratio) + card_details_html(
            job, reused, badge=badge)
    return (f"<div class='sora-snapshot-card' style='width: 328px; padding: 8px; "
            "border: 1px solid var(--jp-border-color2, #ddd); border-radius: 8px'>"
            f"{card_header_html(job)}{body}</div>")


def panel_snapshot_html(uid: str, tiles: Sequence[str], *, running: int = 0,
                        emulator: bool = False) -> str:
    """The panel's settled cards as a plain ``text/html`` output beside its live view.

    It is what a saved notebook reopened without the kernel, and its nbconvert export,
    show in place of the panel (relative ``src``: the copies published next to the
    notebook). While the live panel is on the page (it carries the class
    ``sora-live-<uid>``) CSS hides this copy, and where JupyterLab could not restore the
    panel it hides the "Error displaying widget" line above it."""
    if not uid.isalnum():
        raise ValueError("the snapshot id must be alphanumeric")
    # Without the live panel on the page, the widget's own output right above this one
    # can only hold the widget manager's words ("Loading widget...", "Error displaying
    # widget: model not found"; its node has no mime type, an HTML output's has): hidden.
    css = (f"body:has(.sora-live-{uid}) .sora-snapshot-{uid} {{ display: none !important; }}"
           f"body:not(:has(.sora-live-{uid})) .jp-OutputArea-child"
           ":has(> .jp-OutputArea-output:not([data-mime-type]))"
           f":has(+ .jp-OutputArea-child .sora-snapshot-{uid}) {{ display: none; }}")
    count = len(tiles)
    words = [f"Sora panel — saved view: {count} finished job{'s' if count != 1 else ''}"]
    if running:
        words.append(f"{running} still running when this was saved "
                     "(%sora resume follows {0})".format("it" if running == 1 else "them"))
    if emulator:
        words.append(EMULATOR_BADGE)
    words.append("run the cell again for the live panel")
    head = (f"<div class='sora-snapshot-head' style='{_CARD_FONT}; {_MUTED}; "
            f"margin-bottom: 6px'>{escape(' · '.join(words))}</div>")
    grid = ("<div class='sora-snapshot-grid' style='display: grid; gap: 12px; "
            "grid-template-columns: repeat(auto-fill, 346px); align-items: start'>"
            f"{''.join(tiles)}</div>" if tiles else "")
    return (f"<style>{css}</style><div class='sora-snapshot sora-snapshot-{uid}'>"
            f"{head}{grid}</div>")


# -- team spend (%sora cost --team)

def team_spend_text(rows: Iterable[Mapping[str, object]]) -> str:
    """Spend per user and UTC day, as plain text."""
    lines = [f"{r['day']}  {r['user']}: {r['jobs']} jobs, ${float(str(r['charged_usd'])):.2f}"
             + (f" (+ ${float(str(r['maybe_usd'])):.2f} may have been charged)"
                if float(str(r["maybe_usd"])) else "") for r in rows]
    return "\n".join(lines) or "No paid jobs this month on this journal."


def team_spend_html(rows: Iterable[Mapping[str, object]]) -> str:
    """Spend per user and UTC day this month, everyone on the journal (escaped)."""
    body = "".join(
        f"<tr><td style='{_CELL}'>{escape(r['day'])}</td><td style='{_CELL}'>"
        f"{escape(r['user'])}</td><td style='{_CELL}'>{escape(r['jobs'])}</td>"
        f"<td style='{_CELL}'>${float(str(r['charged_usd'])):.2f}</td><td style='{_CELL}'>"
        + (f"${float(str(r['maybe_usd'])):.2f}" if float(str(r["maybe_usd"])) else "—")
        + "</td></tr>" for r in rows)
    if not body:
        return f"<div style='{_STYLE}'>No paid jobs this month on this journal.</div>"
    head = "".join(f"<th style='{_CELL}'>{name}</th>" for name in
                   ("day (UTC)", "user", "jobs", "charged", "may have been charged"))
    return (f"<table class='sora-team-spend' style='{_STYLE}; max-width: none'>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
