"""HTML for jobs: status, progress, the ``<video>`` player, errors, history, spend.

Every string that came from a user or a server is escaped here, and only
``http(s)`` URLs, ``data:video/mp4`` and plain relative paths ever become a
``src`` or ``href``. No IPython or ipywidgets imports: the magic and the widget
both wrap these strings.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .job import Job
    from .store import Spend

__all__ = [
    "EMULATOR_BADGE",
    "error_html",
    "escape",
    "job_html",
    "jobs_table_html",
    "safe_url",
    "spend_html",
    "status_html",
    "video_html",
]

EMULATOR_BADGE = "local emulator — no charge"
_STYLE = ("font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px; "
          "line-height: 1.4; max-width: 720px")
VIP_WORDS = "this key is not in the VIP group"


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


def money_line(job: Job) -> str:
    if job.emulator:
        return EMULATOR_BADGE
    if job.charge == "maybe":
        return f"may have been charged ${job.price_usd:.2f}"
    if job.charge == "charged":
        return f"${job.cost_usd:.2f}" + (" (cached: no new charge)" if job.cached else "")
    if job.status == "submitting":
        return f"${job.price_usd:.2f} at submit"
    return "not charged"


def status_html(job: Job, *, now: float | None = None) -> str:
    """One line of status and a progress bar, for jobs not finished yet."""
    elapsed = (now or time.time()) - job.created_at if job.created_at else None
    eta = f" · about {_fmt_seconds(job.eta_seconds)} left" if job.eta_seconds else ""
    trouble = (f"<div style='color:#a15c00'>reconnecting: {escape(job.poll_error)}</div>"
               if job.poll_error else "")
    return (
        f"<div class='sora-status' style='{_STYLE}'>"
        f"<b>{escape(job.status)}</b> {int(job.progress)}% · {_fmt_seconds(elapsed)}{eta}"
        f" · <span class='sora-money'>{escape(money_line(job))}</span><br>"
        f"<progress value='{int(job.progress)}' max='100' style='width: 320px'></progress>"
        f"<div style='color:#666'>{escape(job.prompt or '(image only)')}</div>{trouble}</div>"
    )


def error_html(job: Job) -> str:
    """The relay's own words in a red box; 'unknown' explains the possible charge plainly."""
    if job.status == "unknown":
        title = "Submit outcome unknown — this job may have been charged"
        advice = ("The answer to the submit was lost, so it was not retried (a retry could "
                  "pay twice). Re-running the same request shows this notice again; pass "
                  "force=True (or --force) to submit anew.")
    else:
        title = "Generation failed"
        advice = ""
        if job.error_code == "403" and "link" not in (job.error or ""):
            title = f"Access denied: {VIP_WORDS}"
            advice = "Sora 2 needs an API key from the provider's 'vip' group."
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
              f"{size} src='{escape(url)}'></video>" if url else
              "<div>the video link is not a safe URL; it was not embedded</div>")
    link = f"<a href='{escape(url)}' download target='_blank'>download mp4</a>" if url else ""
    extra = f" · {escape(note)}" if note else ""
    return (
        f"<div class='sora-job' style='{_STYLE}'>{player}"
        f"<div><b>{escape(job.prompt or '(image only)')}</b></div>"
        f"<div style='color:#666'>{escape(_identity(job))} · {link}{extra}</div></div>"
    )


def job_html(job: Job, src: str | None = None) -> str:
    """Whatever the job's state calls for; ``src`` is the player's source once saved."""
    if job.status in ("failed", "unknown"):
        return error_html(job)
    if job.status == "completed":
        source = src or (str(job.local_path) if job.local_path else None) or job.video_url
        if source and safe_url(source):
            return video_html(job, source)
        if job.local_path is not None:
            # An absolute file path is no URL a browser may load: offer the relay link.
            return video_html(job, job.video_url or "", note=f"saved to {job.local_path.name}")
    return status_html(job)


def jobs_table_html(jobs: Iterable[Job]) -> str:
    rows = []
    for job in jobs:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created_at))
        link = safe_url(job.video_url)
        video = f"<a href='{escape(link)}' target='_blank'>link</a>" if link else ""
        saved = escape(job.local_path.name) if job.local_path else ""
        rows.append(
            f"<tr><td>{escape(when)}</td><td><code>{escape(job.id or job.local_id[:8])}</code>"
            f"</td><td>{escape(job.status)}</td><td>{escape(job.aspect_ratio)}</td>"
            f"<td>{escape((job.prompt or '(image only)')[:80])}</td>"
            f"<td>{escape(money_line(job))}</td><td>{saved} {video}</td></tr>")
    if not rows:
        return f"<div style='{_STYLE}'>No jobs yet.</div>"
    head = ("<tr><th>created</th><th>task</th><th>status</th><th>ratio</th><th>prompt</th>"
            "<th>cost</th><th>video</th></tr>")
    return (f"<table class='sora-jobs' style='{_STYLE}'><thead>{head}</thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def spend_html(session: Spend, all_time: Spend, budget: float | None) -> str:
    budget_text = f" of a ${budget:.2f} budget" if budget is not None else ""
    maybe = (f" (+ ${session.maybe_usd:.2f} may have been charged)"
             if session.maybe_usd else "")
    return (f"<div class='sora-spend' style='{_STYLE}'>This session: "
            f"<b>${session.charged_usd:.2f}</b>{escape(budget_text)}{escape(maybe)} · "
            f"all time: ${all_time.charged_usd:.2f} "
            f"({all_time.jobs} paid jobs)</div>")
