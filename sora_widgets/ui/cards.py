"""HTML pieces of the panel's saved snapshot (its settled takes as static tiles, what a
reopened or exported notebook plays), and the "kernel restarted" message every live
``%sora`` view carries. (The live panel itself is drawn by ``static/panel.js``.)

Same rules as :mod:`sora_widgets.ui.render` (built on :mod:`sora_widgets.ui.safe`): every
string is escaped; only http(s) URLs (a first-frame link) or plain relative paths (the
published video) become a src/href. Sizes are card thumbnails: 16:9 plays at 320x180,
9:16 at 180x320. The words are the core's phrasebook (:mod:`sora_widgets.core.words`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sora_widgets.core import words
from sora_widgets.core.lifecycle import TERMINAL_ERROR_STATUSES
from sora_widgets.ui.render import (
    error_html,
    first_frame_html,
    money_span,
    reused_span,
)
from sora_widgets.ui.safe import escape, poster_attr, safe_url

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job

__all__ = [
    "RESTART_WORDS",
    "card_details_html",
    "card_header_html",
    "card_placeholder_html",
    "card_video_html",
    "notice_html",
    "panel_snapshot_html",
    "restart_html",
    "snapshot_tile_html",
    "video_size",
]

_CARD_FONT = ("font-family: var(--jp-ui-font-family, sans-serif); font-size: 12px; "
              "line-height: 1.4")
_MUTED = "color: var(--jp-ui-font-color2, #666)"
_TONES = {"error": "#b3261e", "warning": "#a15c00", "info": "#555"}


def video_size(aspect_ratio: str, width: int = 320) -> tuple[int, int]:
    """(width, height) of a card's player: landscape 320x180, portrait 180x320."""
    short = round(width * 9 / 16)
    return (short, width) if aspect_ratio == "9:16" else (width, short)


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
    return (
        f"<div class='sora-card-header' style='{_CARD_FONT}'>"
        f"<div class='sora-prompt' title='{escape(prompt)}' style='font-size: 13px; "
        "font-weight: 600; display: -webkit-box; -webkit-line-clamp: 3; "
        "-webkit-box-orient: vertical; overflow: hidden; word-break: break-word'>"
        f"{escape(prompt)}</div>"
        f"<div style='{_MUTED}'>{escape(job.aspect_ratio)} · {escape(job.request.model)}"
        f"{first_frame_html(job)} · {escape(when)}</div></div>"
    )


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
        f"width='{width}' height='{height}' src='{escape(url)}'{poster_attr(poster)} "
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
    reuse = " · " + reused_span(words.REUSED_WORDS) if cached else ""
    return (f"<div class='sora-card-id' style='{_CARD_FONT}; {_MUTED}; "
            f"overflow-wrap: anywhere'>{escape(ident)}"
            f"{money_span(job, reused=False, badge=badge)}{reuse}</div>")


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
    said = [f"Sora panel — saved view: {count} finished job{'s' if count != 1 else ''}"]
    if running:
        said.append(f"{running} still running when this was saved "
                    "(%sora resume follows {0})".format("it" if running == 1 else "them"))
    if emulator:
        said.append(words.EMULATOR_BADGE)
    said.append("run the cell again for the live panel")
    head = (f"<div class='sora-snapshot-head' style='{_CARD_FONT}; {_MUTED}; "
            f"margin-bottom: 6px'>{escape(' · '.join(said))}</div>")
    grid = ("<div class='sora-snapshot-grid' style='display: grid; gap: 12px; "
            "grid-template-columns: repeat(auto-fill, 346px); align-items: start'>"
            f"{''.join(tiles)}</div>" if tiles else "")
    return (f"<style>{css}</style><div class='sora-snapshot sora-snapshot-{uid}'>"
            f"{head}{grid}</div>")
