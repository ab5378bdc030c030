"""The History view: every job in the journal (not only this session's), newest first.

Search by prompt words, filter by status and by star, a page at a time. Each card shows a
poster (the still the engine saved beside the video), not a player: a page of 2,000 jobs
creates no ``<video>`` until the user opens one. Actions on a card: open (play), load into
the form, vary (load, and the next submit records this job as its parent), star, note,
and compare (check two or more, then "compare").

One anywidget model carries the page (``static/history.js`` draws it; every string goes in
as text). The kernel side answers the front end's messages and asks the studio for the
page; stars and notes are written to the journal at once (``job.star()``, ``job.note``).
Posters and opened videos are published next to the notebook (relative paths, resolved by
the front end like ``sw.compare``'s). The key never reaches the widget's state.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as widgets
import traitlets

from sora_widgets.core.errors import SoraError
from sora_widgets.core.lifecycle import TERMINAL_ERROR_STATUSES, Status
from sora_widgets.core.settings import preferences
from sora_widgets.engine.job import Job
from sora_widgets.media.posters import sprite_grid
from sora_widgets.studio.lineage import provenance, word_diff
from sora_widgets.studio.studio import Studio, default_studio
from sora_widgets.ui import render
from sora_widgets.ui.compare import STATIC, Compare, front_end, job_sources
from sora_widgets.ui.publish import publish
from sora_widgets.ui.throttle import Throttle

__all__ = ["History", "HistoryPage", "HistoryState", "HistoryView"]

log = logging.getLogger("sora_widgets.ui.history")

PAGE_SIZE = 12
#: While jobs change, the page is read again at most this often (the first change at once).
LIVE_SECONDS = 1.0
#: The status filter's choices: value (a ``Status`` word, "" for any) and label.
STATUS_OPTIONS = [["", "any status"]] + [
    [s.value, s.value.replace("_", " ")] for s in
    (Status.COMPLETED, Status.IN_PROGRESS, Status.QUEUED, Status.FAILED, Status.UNKNOWN)]
#: Called with (job, vary): put the job's settings in the form; vary remembers the parent.
LoadCallback = Callable[[Job, bool], None]


class HistoryState(traitlets.HasTraits):
    """The page's state, drawn by ``static/history.js``: a widget's traits on its own
    (:class:`HistoryView`), or a part of the panel's one widget (``ui/panel/parts.py``)."""

    cards = traitlets.List(traitlets.Dict()).tag(sync=True)
    #: Local id → relative src of the cards the user opened (they show a player).
    players = traitlets.Dict().tag(sync=True)
    query = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    starred_only = traitlets.Bool(False).tag(sync=True)
    page = traitlets.Int(0).tag(sync=True)
    has_next = traitlets.Bool(False).tag(sync=True)
    summary = traitlets.Unicode("").tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    selected = traitlets.List(traitlets.Unicode()).tag(sync=True)
    can_load = traitlets.Bool(False).tag(sync=True)
    status_options = traitlets.List(traitlets.List()).tag(sync=True)

    #: What the browser may set (the filters and the page); the rest only the kernel sets.
    EDITABLE = ("query", "status", "starred_only", "page")


class HistoryView(anywidget.AnyWidget, HistoryState):
    """The page of cards in the browser, as its own widget (the kernel side is
    :class:`History`)."""

    _esm = front_end("history.js")
    _css = (STATIC / "history.css").read_text("utf-8")


#: Shows a comparison of the checked takes (the standalone History: below itself; the
#: panel: in its own compare part) and returns the ``Compare`` made.
ShowCompare = Callable[[list[Job]], Compare]


class HistoryPage:
    """The kernel side of a History: reads the page from the journal into a
    :class:`HistoryState` and answers its actions; follows the studio's job changes.

    ``on_load(job, vary)`` (the panel passes one) shows the "load" and "vary" actions."""

    def __init__(self, view: HistoryState, *, studio: Studio | None = None,
                 on_load: LoadCallback | None = None, page_size: int = PAGE_SIZE,
                 media_dir: str | None = None, root: Path | None = None,
                 show_compare: ShowCompare | None = None) -> None:
        self._studio = studio
        self._on_load = on_load
        self._show_compare = show_compare
        self.page_size = max(1, int(page_size))
        self._media_dir = media_dir
        self._root = root or Path.cwd()
        self._jobs: dict[str, Job] = {}          # the page's handles (and selected ones)
        self._parents: dict[str, str] = {}       # parent local id → its prompt
        self.view = view
        view.can_load = on_load is not None
        view.status_options = STATUS_OPTIONS
        view.observe(self._on_filter, names=["query", "status", "starred_only"])
        view.observe(self._on_page, names=["page"])
        self._refresh_lock = threading.RLock()
        # Live: a job that changes anywhere in the kernel (this panel, %sora, sw.generate)
        # re-reads the page, off the engine's thread and at most once per LIVE_SECONDS.
        self._live = Throttle(self._refresh_live, LIVE_SECONDS, defer=True)
        self._unsubscribe = _subscribe(self, self.studio)
        self.refresh()

    @property
    def studio(self) -> Studio:
        return self._studio or default_studio()

    # -- what is shown ----------------------------------------------------------------------

    @property
    def jobs(self) -> list[Job]:
        """The jobs of the page shown, newest first."""
        return [self._jobs[card["id"]] for card in self.view.cards]

    def search(self, text: str) -> HistoryPage:
        self.view.query = text      # observed: back to the first page
        return self

    def filter(self, *, status: str | None = None, starred: bool | None = None) -> HistoryPage:
        with self.view.hold_trait_notifications():
            if status is not None:
                self.view.status = Status(status).value if status else ""
            if starred is not None:
                self.view.starred_only = bool(starred)
        return self

    def next_page(self) -> HistoryPage:
        if self.view.has_next:
            self.view.page += 1
        return self

    def previous_page(self) -> HistoryPage:
        self.view.page = max(0, self.view.page - 1)
        return self

    def _on_filter(self, _change: Any) -> None:
        if self.view.page:
            self.view.page = 0     # observed: refreshes
        else:
            self.refresh()

    def _on_page(self, _change: Any) -> None:
        self.refresh()

    def job_changed(self, _job: Job) -> None:
        """A job changed somewhere in the kernel (the engine's thread): refresh soon."""
        self._live()

    def _refresh_live(self) -> None:
        self.refresh(keep_message=True)

    def refresh(self, *, keep_message: bool = False) -> None:
        """Read the page from the journal (one query) and publish its posters."""
        with self._refresh_lock:
            self._refresh(keep_message)

    def _refresh(self, keep_message: bool) -> None:
        view = self.view
        try:
            found = self.studio.jobs(
                self.page_size + 1, search=view.query.strip() or None,
                status=view.status or None, starred=True if view.starred_only else None,
                offset=view.page * self.page_size)
        except (SoraError, ValueError) as exc:
            view.message = str(exc)
            return
        page = found[:self.page_size]
        keep = {i: j for i, j in self._jobs.items() if i in view.selected}
        self._jobs = {**keep, **{job.local_id: job for job in page}}
        first = view.page * self.page_size + 1
        with view.hold_trait_notifications():
            view.cards = [self._card(job) for job in page]
            view.has_next = len(found) > self.page_size
            free = " · local emulator jobs: no charge" if any(j.emulator for j in page) else ""
            view.summary = (f"{first}–{first + len(page) - 1}, newest first{free}"
                            if page else "")
            view.players = {i: src for i, src in view.players.items() if i in self._jobs}
            if not keep_message:
                view.message = ""

    def _card(self, job: Job) -> dict[str, Any]:
        _, poster = job_sources(job, media_dir=self._media_dir, root=self._root, video=False)
        parent = self._parent_prompt(job.parent_id) if job.parent_id else None
        prompt = job.prompt or "(image only)"
        diff = ([[op, text] for op, text in word_diff(parent, job.prompt)]
                if parent is not None else [])
        return {
            "id": job.local_id, "task": job.id or "", "prompt": prompt, "diff": diff,
            "parent": parent or "", "ratio": job.aspect_ratio, "status": job.status,
            "status_text": _status_text(job),
            "money": render.money_line(job, reused=False, badge=False),   # said once above
            "billing": job.billing if job.billed_usd is not None else "",
            "provenance": provenance(job.request),
            "when": time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created_at)),
            "starred": bool(job.starred), "note": job.note or "", "poster": poster,
            "sprites": self._sprites(job) if poster else None,
            "openable": job.status == Status.COMPLETED,
            "error": (job.error or "") if job.status in TERMINAL_ERROR_STATUSES else "",
        }

    def _sprites(self, job: Job) -> dict[str, Any] | None:
        """The relay's spritesheet, published, with its grid: History scrubs it on hover."""
        sheet = job.spritesheet_path
        grid = sprite_grid(sheet, job.aspect_ratio)
        src = publish(sheet, self._media_dir or preferences.media_dir, root=self._root)
        if grid is None or not render.safe_url(src):
            return None
        return {"src": src, "cols": grid[0], "rows": grid[1]}

    def _parent_prompt(self, parent_id: str) -> str | None:
        if parent_id not in self._parents:
            try:
                self._parents[parent_id] = self.studio.get(parent_id).prompt or ""
            except SoraError:
                return None
        return self._parents[parent_id]

    def _update_card(self, job: Job) -> None:
        self.view.cards = [self._card(job) if card["id"] == job.local_id else card
                           for card in self.view.cards]

    # -- actions ------------------------------------------------------------------------------

    def _job(self, local_id: object) -> Job:
        job = self._jobs.get(str(local_id))
        if job is None:
            raise SoraError("that job is no longer on this page; refresh the history")
        return job

    def play(self, local_id: str) -> str:
        """Play a card's video: publish it next to the notebook, show a player; its src."""
        job = self._job(local_id)
        if job.status != Status.COMPLETED:
            raise SoraError(f"job {job.id or job.local_id[:8]} is {job.status}: nothing to play")
        if job.local_path is None:
            job.download()
        src, _ = job_sources(job, media_dir=self._media_dir, root=self._root)
        if not src:
            raise SoraError("the video could not be published next to the notebook")
        self.view.players = {**self.view.players, job.local_id: src}
        return src

    def star(self, local_id: str, on: bool = True) -> None:
        job = self._job(local_id)
        job.star(on)             # in the journal at once
        self._update_card(job)

    def set_note(self, local_id: str, text: str) -> None:
        job = self._job(local_id)
        job.note = str(text)[:2000]
        self._update_card(job)

    def load(self, local_id: str, *, vary: bool = False) -> Job:
        job = self._job(local_id)
        if self._on_load is None:
            raise SoraError("this history is not attached to a form (open it in the panel)")
        self._on_load(job, vary)
        return job

    def select(self, local_id: str, on: bool = True) -> None:
        job = self._job(local_id)
        chosen = [i for i in self.view.selected if i != job.local_id]
        self.view.selected = [*chosen, job.local_id] if on else chosen

    def compare(self, local_ids: list[str] | None = None) -> Compare:
        """Compare the selected takes (or ``local_ids``) side by side."""
        ids = list(local_ids) if local_ids is not None else list(self.view.selected)
        if len(ids) < 2:
            raise SoraError("check two or more takes to compare")
        if self._show_compare is None:
            raise SoraError("this history has nowhere to show a comparison")
        return self._show_compare([self._job(i) for i in ids])

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        self.handle(content)

    def handle(self, content: object) -> None:
        """A front-end action; errors become the view's message line (never raised)."""
        if not isinstance(content, dict):
            return
        action = content.get("action")
        local_id = str(content.get("id", ""))
        try:
            if action == "open":
                self.play(local_id)
            elif action == "star":
                self.star(local_id, bool(content.get("on")))
            elif action == "note":
                self.set_note(local_id, str(content.get("text", "")))
            elif action in ("load", "vary"):
                self.load(local_id, vary=action == "vary")
            elif action == "select":
                self.select(local_id, bool(content.get("on")))
            elif action == "compare":
                self.compare()
            elif action == "refresh":
                self.refresh()
            else:
                return
            self.view.message = ""
        except (SoraError, OSError, ValueError) as exc:
            self.view.message = str(exc)
        except Exception as exc:   # a kernel-side bug must not break the view
            log.exception("history action %r failed", action)
            self.view.message = f"{action} failed ({type(exc).__name__})"

    def close(self) -> None:
        """Stop following the studio's job changes."""
        self._unsubscribe()
        self._live.cancel()


class History(HistoryPage, widgets.VBox):  # type: ignore[misc]
    """Every journal job, searchable, a page at a time, on its own: ``sw.History()``.

    The page (:class:`HistoryView`) and, below it, the comparison of the checked takes."""

    def __init__(self, *, studio: Studio | None = None, on_load: LoadCallback | None = None,
                 page_size: int = PAGE_SIZE, media_dir: str | None = None,
                 root: Path | None = None, **kwargs: Any) -> None:
        view = HistoryView()
        self.compare_box = widgets.VBox()
        self.compare_view: Compare | None = None
        kwargs.setdefault("layout", widgets.Layout(width="100%"))
        widgets.VBox.__init__(self, [view, self.compare_box], **kwargs)
        self.add_class("sora-history-panel")
        view.on_msg(self._on_msg)
        HistoryPage.__init__(self, view, studio=studio, on_load=on_load,
                             page_size=page_size, media_dir=media_dir, root=root,
                             show_compare=self._compare_below)

    def _compare_below(self, jobs: list[Job]) -> Compare:
        view = Compare(jobs, media_dir=self._media_dir, root=self._root)
        close = widgets.Button(description="close compare", icon="times",
                               layout=widgets.Layout(width="auto"))
        close.on_click(lambda _b: self.close_compare())
        self.close_compare()
        self.compare_view = view
        self.compare_box.children = (view, close)
        return view

    def close_compare(self) -> None:
        old = list(self.compare_box.children)
        self.compare_box.children = ()
        self.compare_view = None
        for widget in old:
            widget.close()

    def close(self) -> None:
        HistoryPage.close(self)
        self.close_compare()
        self.view.close()  # type: ignore[attr-defined]
        widgets.VBox.close(self)


def _subscribe(history: HistoryPage, studio: Studio) -> Callable[[], None]:
    """Follow the studio's job changes with a weak reference: a History nobody holds (a
    cell re-run) is not kept alive, nor refreshed, by the studio."""
    ref = weakref.ref(history)

    def listener(job: Job) -> None:
        alive = ref()
        if alive is None:
            unsubscribe()
        else:
            alive.job_changed(job)

    unsubscribe = studio.on_job_change(listener)
    return unsubscribe


def _status_text(job: Job) -> str:
    words = job.status.replace("_", " ")
    if job.status == Status.COMPLETED:
        return words + ("" if job.local_path else " (not saved)")
    if job.status == Status.UNKNOWN:
        return render.UNKNOWN_WORDS
    if job.status in TERMINAL_ERROR_STATUSES:
        return words
    return f"{words} {int(job.progress)}%"
