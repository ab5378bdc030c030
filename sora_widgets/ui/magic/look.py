"""How the magic shows finished jobs: a :class:`Look` fixed when a call runs.

A finished job plays its *local copy* published next to the notebook (a relative ``src``
JupyterLab serves as ``/files/...``, so a saved notebook and an ``nbconvert`` export keep
it), or a base64 ``data:`` URI with ``--embed``; when neither is possible it plays the
relay's link and says why. A cell says "local emulator — no charge" once: in the quote
shown before ``-n``, a sweep or a storyboard is sent (then nothing below repeats it), else
above several emulator jobs, else on the one job. The quote is drawn here too.
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

__all__ = ["Look", "poster", "show_quote", "thumbnail"]


def poster(job: Job) -> str | None:
    """The still shown before (or instead of) the video: inline, a few KB (Lab does not
    resolve a relative ``poster``)."""
    from sora_widgets.media.posters import poster_data_uri

    return poster_data_uri(job.poster_path)


def thumbnail(job: Job) -> str | None:
    """A row's still, inline (a few KB): listing history writes no file."""
    from sora_widgets.media.posters import poster_data_uri

    return poster_data_uri(job.poster_path, width=160)


@dataclass(frozen=True)
class Look:
    """How finished jobs are shown, fixed when the magic runs (``%config`` may change later)."""

    embed: bool = False
    autodownload: bool = True
    media_dir: str = media.DEFAULT_MEDIA_DIR
    #: The cell's quote said "local emulator — no charge" already: no output below repeats it.
    badge_said: bool = False

    def job(self, job: Job, *, badge: bool = True,
            reused: bool | None = None) -> tuple[str, str]:
        """(html, text) of a settled job: the player of the local copy, or the red box."""
        if job.status != Status.COMPLETED:
            return (render.job_html(job, badge=badge, reused=reused),
                    render.job_text(job, reused=reused, badge=badge))
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
                render.job_text(job, src, reused=reused, badge=badge))

    def bundle(self, jobs: Sequence[Job], reused: Mapping[str, bool] | None = None) -> Bundle:
        """The final output of ``jobs``: one player, or a grid of them."""
        reused = reused or {}
        header, badge = render.badge_plan(jobs, said=self.badge_said)
        parts = [self.job(j, badge=badge, reused=reused.get(j.local_id)) for j in jobs]
        return _grid(parts, header)

    def status(self, jobs: Sequence[Job], reused: Mapping[str, bool] | None = None) -> Bundle:
        """Where jobs are now, without widgets (plain IPython): status lines, one grid."""
        reused = reused or {}
        header, badge = render.badge_plan(jobs, said=self.badge_said)
        return _grid([(render.status_html(j, badge=badge, reused=reused.get(j.local_id)),
                       render.job_text(j, reused=reused.get(j.local_id), badge=badge))
                      for j in jobs], header)


def _grid(parts: Sequence[tuple[str, str]], header: str | None) -> Bundle:
    """One (html, text) part as it is, several side by side under ``header``."""
    if len(parts) == 1:
        html, text = parts[0]
    else:
        html = render.grid_html((p[0] for p in parts), header=header)
        text = "\n".join([*([header] if header else []), *(p[1] for p in parts)])
    return {"text/html": html, "text/plain": text}


def show_quote(text: str, *, kind: str = "") -> None:
    """What a call will cost, shown before anything is sent (``-n``, a sweep, a storyboard)."""
    classes = f"sora-cost {kind}".strip()
    display({"text/html": f"<div class='{classes}' style='font-family: "
                          f"var(--jp-ui-font-family, sans-serif); font-size: 13px'>"
                          f"{render.escape(text)}</div>",
             "text/plain": text}, raw=True)
