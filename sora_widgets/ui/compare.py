"""``sw.compare(*jobs)``: takes side by side, in equal-size players that play, pause and
seek together, each captioned with its prompt (a word diff against the first), what else
made it (:func:`~sora_widgets.studio.lineage.provenance`: "same seed 42 · 1080p" when the
takes share a seed), ratio, what it cost ("quoted $0.80 · billed $0.84", flagged past 5 %)
and star.

Why anywidget (a dependency for this): stock ipywidgets has no way to keep two
``<video>`` elements' ``currentTime`` together — ``ipywidgets.Video`` exposes no time
and a kernel round trip per frame would be too slow anyway. The sync runs in the
browser, in a small ES module (``static/compare.js``); the kernel only sends the items.

What reaches the browser: relative paths of the videos and posters published next to the
notebook (``sora_videos/...``), prompt words, provenance, ratio, cost and star — never
the key. The
front end resolves a relative path with the widget manager's ``resolveUrl`` (in
JupyterLab and Notebook 7: ``<base url>/files/<notebook dir>/...``) and puts every string
in the DOM as text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from sora_widgets.core.errors import SoraError
from sora_widgets.core.lifecycle import Status
from sora_widgets.core.money import billed_differs
from sora_widgets.core.settings import preferences
from sora_widgets.engine.job import Job
from sora_widgets.studio.lineage import diff_html, provenance, word_diff
from sora_widgets.ui import render
from sora_widgets.ui.publish import publish

__all__ = ["Compare", "caption_facts", "compare", "job_sources"]

log = logging.getLogger("sora_widgets.compare")

STATIC = Path(__file__).with_name("static")
#: The width of each player; the height follows the ratio (square when ratios differ).
PLAYER_WIDTH = 360


def front_end(name: str) -> str:
    """The ES module of one widget: the shared helpers, then its own code."""
    return (STATIC / "common.js").read_text("utf-8") + "\n" + (STATIC / name).read_text("utf-8")


def job_sources(job: Job, *, media_dir: str | None = None, root: Path | None = None,
                video: bool = True) -> tuple[str, str]:
    """(video src, poster src) of a saved job, published next to the notebook."""
    media_dir = media_dir or preferences.media_dir
    root = root or Path.cwd()
    poster = render.safe_url(publish(job.poster_path, media_dir, root=root)) or ""
    video_src = publish(job.local_path, media_dir, root=root) if video else None
    return render.safe_url(video_src) or "", poster


def caption_facts(job: Job, takes: Sequence[Job]) -> dict[str, Any]:
    """What a take's caption says besides its prompt: ``provenance`` ("same seed 42" when
    another of ``takes`` has its seed), ``cost`` (the quote beside the relay's bill once
    it reported one, else the money words) and ``flagged`` (the bill is > 5 % off)."""
    seeds = [take.request.seed for take in takes if take is not job]
    same = job.request.seed is not None and job.request.seed in seeds
    billed = job.billed_usd is not None and not job.emulator
    return {"provenance": provenance(job, same_seed=same),
            "cost": job.billing if billed else render.money_line(job, reused=False),
            "flagged": billed and billed_differs(job.price_usd, job.billed_usd)}


def _box(jobs: Iterable[Job], width: int) -> dict[str, int]:
    ratios = {job.aspect_ratio for job in jobs}
    if ratios == {"16:9"}:
        return {"width": width, "height": round(width * 9 / 16)}
    if ratios == {"9:16"}:
        return {"width": round(width * 9 / 16), "height": width}
    return {"width": width, "height": width}


class Compare(anywidget.AnyWidget):
    """Synchronised players for a few jobs (see the module docstring)."""

    _esm = front_end("compare.js")
    _css = (STATIC / "compare.css").read_text("utf-8")

    #: One entry per job: id, src, poster, caption (word-diff runs), label, ratio, and the
    #: :func:`caption_facts` (provenance, cost, flagged).
    items = traitlets.List(traitlets.Dict()).tag(sync=True)
    #: Local id → starred (kept apart so a star does not reload the players).
    starred = traitlets.Dict().tag(sync=True)
    #: Every player's size in CSS pixels (equal for all).
    box = traitlets.Dict().tag(sync=True)

    def __init__(self, jobs: Iterable[Job], *, media_dir: str | None = None,
                 root: Path | None = None, width: int = PLAYER_WIDTH, **kwargs: Any) -> None:
        self.jobs = list(jobs)
        if not self.jobs:
            raise ValueError("compare: give at least one job")
        for job in self.jobs:
            if job.status != Status.COMPLETED:
                raise SoraError(f"compare: job {job.id or job.local_id[:8]} is {job.status}; "
                                "only completed takes can be compared")
        super().__init__(**kwargs)
        first = self.jobs[0].prompt or ""
        items = []
        for index, job in enumerate(self.jobs):
            if job.local_path is None:
                job.download()      # the saved copy is what plays (relay links expire)
            src, poster = job_sources(job, media_dir=media_dir, root=root)
            runs = word_diff(first, job.prompt or "") if index else [("same", first)]
            items.append({
                "id": job.local_id, "src": src, "poster": poster,
                "caption": [[op, text] for op, text in runs] or [["same", "(image only)"]],
                "label": f"#{index + 1} {job.id or job.local_id[:8]}",
                "ratio": job.aspect_ratio, **caption_facts(job, self.jobs),
            })
        self.items = items
        self.box = _box(self.jobs, width)
        self.starred = {job.local_id: bool(job.starred) for job in self.jobs}
        self.on_msg(self._on_msg)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The live players, and a still ``text/html`` copy for where the widget cannot
        run (an ``nbconvert`` export, a viewer without the kernel's widget state)."""
        data = super()._repr_mimebundle_(**kwargs)
        bundle = data[0] if isinstance(data, tuple) else data
        if isinstance(bundle, dict):
            bundle["text/html"] = self.static_html()
            bundle["text/plain"] = f"sw.compare: {len(self.jobs)} takes side by side"
        return data

    def static_html(self) -> str:
        """The takes side by side as plain HTML (relative sources, escaped captions)."""
        box = self.box
        cells = []
        first = self.jobs[0].prompt or ""
        for index, (item, job) in enumerate(zip(self.items, self.jobs, strict=True)):
            src, poster = render.safe_url(item["src"]), render.safe_url(item["poster"])
            caption = diff_html(first, job.prompt or "") if index else render.escape(first)
            star = "★ " if job.starred else ""
            made = (f"<div class='sora-compare-provenance'>{render.escape(item['provenance'])}"
                    "</div>" if item["provenance"] else "")
            flag = " style='color: #a15c00'" if item["flagged"] else ""
            cells.append(
                f"<div style='width: {box['width']}px'>"
                f"<video controls muted loop playsinline preload='metadata' "
                f"width='{box['width']}' height='{box['height']}' "
                f"style='background: #000; object-fit: contain' "
                + (f"src='{render.escape(src)}' " if src else "")
                + (f"poster='{render.escape(poster)}' " if poster else "")
                + f"></video><div>{caption}</div>{made}<div style='color: #666'>"
                f"{render.escape(star + item['label'])} · {render.escape(item['ratio'])} · "
                f"<span class='sora-compare-cost'{flag}>{render.escape(item['cost'])}</span>"
                "</div></div>")
        return ("<div class='sora-compare-static' style='display: flex; flex-wrap: wrap; "
                "gap: 12px; font-family: var(--jp-ui-font-family, sans-serif); "
                f"font-size: 12px'>{''.join(cells)}</div>")

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("action") != "star":
            return
        job = next((j for j in self.jobs if j.local_id == content.get("id")), None)
        if job is None:
            return
        job.star(bool(content.get("on")))
        self.starred = {j.local_id: bool(j.starred) for j in self.jobs}


def compare(*jobs: Job | str, media_dir: str | None = None, width: int = PLAYER_WIDTH) -> Compare:
    """Side-by-side synchronised players of completed jobs (``Job`` handles or ids)."""
    from sora_widgets.studio.studio import default_studio

    handles = [job if isinstance(job, Job) else default_studio().get(job) for job in jobs]
    return Compare(handles, media_dir=media_dir, width=width)
