"""How the magic shows finished jobs: a :class:`Look` fixed when a call runs.

A finished job plays its *local copy* published next to the notebook (a relative ``src``
JupyterLab serves as ``/files/...``, so a saved notebook and an ``nbconvert`` export keep
it), or a base64 ``data:`` URI with ``--embed``; when neither is possible it plays the
relay's link and says why. Several emulator jobs in one output say "local emulator — no
charge" once, above them. The quote shown before anything is sent is drawn here too, once
for ``-n``, sweeps and storyboards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sora_widgets.core import words
from sora_widgets.core.lifecycle import Status
from sora_widgets.media import publish as media
from sora_widgets.ui import render
from sora_widgets.ui.display import Bundle, display
from sora_widgets.ui.publish import publish

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job

__all__ = ["Look", "badge_once", "poster", "show_quote", "status_bundle", "thumbnail"]


def poster(job: Job) -> str | None:
    """The still shown before (or instead of) the video: inline, a few KB (Lab does not
    resolve a relative ``poster``)."""
    from sora_widgets.media.posters import poster_data_uri

    return poster_data_uri(job.poster_path)


def thumbnail(job: Job) -> str | None:
    """A row's still, inline (a few KB): listing history writes no file."""
    from sora_widgets.media.posters import poster_data_uri

    return poster_data_uri(job.poster_path, width=160)


def badge_once(jobs: Sequence[Job]) -> bool:
    """Several emulator jobs in one output: "local emulator — no charge" is said once, above
    them, not on every tile."""
    return len(jobs) > 1 and all(j.emulator for j in jobs)


@dataclass(frozen=True)
class Look:
    """How finished jobs are shown, fixed when the magic runs (``%config`` may change later)."""

    embed: bool = False
    autodownload: bool = True
    media_dir: str = media.DEFAULT_MEDIA_DIR

    def job(self, job: Job, *, badge: bool = True,
            reused: bool | None = None) -> tuple[str, str]:
        """(html, text) of a settled job: the player of the local copy, or the red box."""
        if job.status != Status.COMPLETED:
            return (render.job_html(job, badge=badge, reused=reused),
                    render.job_text(job, reused=reused))
        path = job.local_path if job.local_path is not None and job.local_path.is_file() else None
        src: str | None = None
        note: str | None = None
        if path is None:
            why = job.download_error or "no file"
            note = f"the video could not be saved ({why}); job.download() retries"
            src = job.video_url
        elif self.embed:
            src = media.data_uri(path)
            note = (f"embedded in this notebook: {words.size(path.stat().st_size)} mp4, "
                    f"{words.size(len(src))} as base64")
        elif self.autodownload:
            src = publish(path, self.media_dir)
            if src is None:
                note = "could not copy the video next to the notebook; the relay's link expires"
                src = job.video_url
        else:
            note = "SoraMagics.autodownload is off: this plays the relay's link, which expires"
            src = job.video_url
        return (render.job_html(job, src, note=note, poster=poster(job),
                                media_dir=self.media_dir, badge=badge, reused=reused),
                render.job_text(job, src, reused=reused))

    def bundle(self, jobs: Sequence[Job], reused: Mapping[str, bool] | None = None) -> Bundle:
        """The final output of ``jobs``: one player, or a grid of them."""
        reused = reused or {}
        once = badge_once(jobs)
        parts = [self.job(j, badge=not once, reused=reused.get(j.local_id)) for j in jobs]
        if len(parts) == 1:
            html, text = parts[0]
        else:
            html = render.grid_html((p[0] for p in parts),
                                    header=words.EMULATOR_BADGE if once else None)
            text = "\n".join(p[1] for p in parts)
        return {"text/html": html, "text/plain": text}


def status_bundle(jobs: Sequence[Job], reused: Mapping[str, bool] | None = None) -> Bundle:
    """Where jobs are now, without widgets (plain IPython): status lines, one grid."""
    reused = reused or {}
    once = badge_once(jobs)
    htmls = [render.status_html(j, badge=not once, reused=reused.get(j.local_id))
             for j in jobs]
    html = htmls[0] if len(htmls) == 1 else render.grid_html(
        htmls, header=words.EMULATOR_BADGE if once else None)
    return {"text/html": html,
            "text/plain": "\n".join(render.job_text(j, reused=reused.get(j.local_id))
                                    for j in jobs)}


def show_quote(text: str, *, kind: str = "") -> None:
    """What a call will cost, shown before anything is sent (``-n``, a sweep, a storyboard)."""
    classes = f"sora-cost {kind}".strip()
    display({"text/html": f"<div class='{classes}' style='font-family: "
                          f"var(--jp-ui-font-family, sans-serif); font-size: 13px'>"
                          f"{render.escape(text)}</div>",
             "text/plain": text}, raw=True)
