"""The live slot of a ``%sora`` call: progress while jobs run, then the final HTML.

One call, one display slot. While jobs run, the slot holds an ipywidgets view
(``IntProgress`` + an ``HTML`` status line) that the engine's events thread updates by
*setting traits only* (output printed or displayed from that thread would land in
whatever cell runs now), plus a one-second ticker for elapsed time and the ETA. When every
job has settled, the slot is replaced (``update_display_data``) by the :class:`Look`'s
plain ``text/html``, and the live widgets are closed, so the saved notebook keeps just
that HTML. The :class:`~sora_widgets.ui.display.Slot` borrows the cell's parent header for
that update, so it lands in the cell that started the jobs. With ``--wait`` everything
happens on the main thread, inside the cell.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from traitlets import All

from sora_widgets.core.errors import SoraError
from sora_widgets.ui import cards, render
from sora_widgets.ui.display import Bundle, Slot
from sora_widgets.ui.magic.look import Look

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from sora_widgets.engine.job import Job

__all__ = ["TICK_SECONDS", "LiveView", "close_widgets", "magic_is_waiting", "settled",
           "show_live", "widget_bundle"]

log = logging.getLogger("sora_widgets.magic")


def magic_is_waiting() -> bool:
    """True while the magic itself waits on its jobs (``--wait``) on this thread:
    ``job.wait()``'s progress hook stays quiet then, the live view already shows it."""
    return bool(getattr(_own_wait, "on", False))


def show_live(shell: InteractiveShell, jobs: Sequence[Job], look: Look, *, widgets: bool,
              wait: bool, reused: Mapping[str, bool] | None = None) -> None:
    """Show ``jobs`` in one live slot (progress, then ``look``'s players); with ``wait``,
    block the cell until every job is finished."""
    view = LiveView(shell, jobs, look, widgets=widgets, wait=wait, reused=reused)
    view.show()
    if wait and not view.finished:
        view.wait()


def widget_bundle(root: Any) -> Bundle:
    """A live ipywidgets view as a display bundle (its text says it needs the kernel)."""
    bundle = dict(root._repr_mimebundle_())
    bundle["text/plain"] = "Sora: live progress (needs the running kernel)"
    return bundle


def close_widgets(made: Sequence[Any]) -> None:
    """Close every model a view made (layouts and styles too), so no state is saved."""
    for widget in reversed(made):
        for part in (widget, getattr(widget, "layout", None), getattr(widget, "style", None)):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()


def settled(job: Job) -> bool:
    """Nothing more will change here: settled (true already while the observers of that
    transition run), or no longer tracked by this process."""
    return job.settled or job.finished


#: How often a live view refreshes elapsed time and the ETA (a daemon thread, traits only).
TICK_SECONDS = 1.0
#: Set while the magic itself waits on its jobs (see :func:`magic_is_waiting`).
_own_wait = threading.local()


class LiveView:
    """One display slot: live progress while jobs run, then the final HTML in its place.

    The live part is ipywidgets (in a kernel): traits set from the engine's events thread
    and from a one-second ticker (elapsed time, ETA). If the kernel restarts, JupyterLab
    marks those views disconnected and CSS turns them into "kernel restarted — run
    ``%sora resume``" (nothing of ours runs any more to say it)."""

    def __init__(self, shell: InteractiveShell, jobs: Sequence[Job], look: Look, *,
                 widgets: bool, wait: bool, reused: Mapping[str, bool] | None = None) -> None:
        self.shell = shell
        self.jobs = list(jobs)
        self.look = look
        self._use_widgets = widgets
        self._background = not wait
        self._lock = threading.RLock()
        self._finished = False
        self._slot: Slot | None = None
        self._bars: dict[str, tuple[Any, Any]] = {}
        self._widgets: list[Any] = []
        self._stop = threading.Event()
        #: Reused in *this* call (the handle's ``cached`` flag may change later).
        self.reused = dict(reused) if reused is not None else {
            j.local_id: bool(j.reused) for j in self.jobs}

    @property
    def finished(self) -> bool:
        return self._finished

    def show(self) -> None:
        """Display the slot (main thread); already settled jobs go straight to the result."""
        if all(settled(j) for j in self.jobs):
            self._finished = True
            self._slot = Slot(self.shell, self.look.bundle(self.jobs, self.reused))
            return
        if self._use_widgets:
            self._slot = Slot(self.shell, widget_bundle(self._build_widgets()))
        else:
            self._slot = Slot(self.shell, self.look.status(self.jobs, self.reused))
        for job in self.jobs:  # observe after displaying: an update never precedes its slot
            job.observe(self._on_change, names=All)
            self._refresh(job)
        if self._use_widgets:
            threading.Thread(target=self._tick, daemon=True,
                             name="sora-widgets-magic-ticker").start()
        if self._background and all(settled(j) for j in self.jobs):
            self._finish()

    def wait(self) -> None:
        """``--wait``: block (Ctrl-C leaves the jobs running), then finish on the main thread."""
        _own_wait.on = True
        try:
            for job in self.jobs:
                with contextlib.suppress(SoraError):  # failures are shown, not raised
                    job.wait()
        except KeyboardInterrupt:
            with self._lock:
                self._background = True
            print("Interrupted: the job keeps running (and is paid for); its result "
                  "will replace the progress above.")
            if not all(settled(j) for j in self.jobs):
                return
        finally:
            _own_wait.on = False
        self._finish()

    def dismiss(self, bundle: Bundle) -> None:
        """End the live view with ``bundle`` in its place (``job.wait()``'s progress)."""
        if self._end():
            self._replace(bundle)

    def _end(self) -> bool:
        """Stop the ticker and the observers once; False if the view had already ended."""
        with self._lock:
            if self._finished:
                return False
            self._finished = True
        self._stop.set()
        self._unobserve()
        return True

    def _replace(self, bundle: Bundle) -> None:
        assert self._slot is not None
        self._slot.update(bundle)
        close_widgets(self._widgets)

    # -- widgets (created on the main thread, then only their traits change) -----------------

    def _build_widgets(self) -> Any:
        import ipywidgets as w

        header, _ = render.badge_plan(self.jobs, said=self.look.badge_said)
        cells = []
        for job in self.jobs:
            status = w.HTML(value=self._status(job))
            bar = w.IntProgress(value=int(job.progress), min=0, max=100, bar_style="",
                                layout=w.Layout(width="320px", max_width="100%"))
            self._bars[job.local_id] = (bar, status)
            cell = w.VBox([status, bar], layout=w.Layout(min_width="0"))
            cells.append(cell)
            self._widgets += [status, bar, cell]
        restart = w.HTML(value=cards.restart_html("magic"))
        restart.add_class("sora-restart")
        parts: list[Any] = []
        if len(cells) == 1:
            body = cells[0]
        else:
            if header:
                head = w.HTML(value=render.grid_html([], header=header))
                parts.append(head)
                self._widgets.append(head)
            columns = render.grid_columns(len(cells))
            body = w.GridBox(cells, layout=w.Layout(
                grid_template_columns=f"repeat({columns}, minmax(0, 1fr))", grid_gap="12px"))
        body.add_class("sora-running")
        root = w.VBox([*parts, body, restart])
        root.add_class("sora-live")
        if len(cells) > 1:
            self._widgets.append(body)
        self._widgets += [restart, root]
        return root

    def _status(self, job: Job) -> str:
        _, badge = render.badge_plan(self.jobs, said=self.look.badge_said)
        return render.status_html(job, bar=False, badge=badge,
                                  reused=self.reused.get(job.local_id))

    def _refresh(self, job: Job, *, status_only: bool = False) -> None:
        with self._lock:
            pair = self._bars.get(job.local_id)
            if pair is None or self._finished:
                return
            bar, status = pair
            if not status_only:
                bar.value = int(job.progress)
                bar.bar_style = render.bar_style(job)
            status.value = self._status(job)

    def _tick(self) -> None:
        """Elapsed time and the ETA move every second, not only when a poll lands."""
        while not self._stop.wait(TICK_SECONDS):
            if self._finished:
                return
            try:
                for job in self.jobs:
                    if not job.done:
                        self._refresh(job, status_only=True)
            except Exception:   # a widget closed under us: the view is over
                log.debug("live view ticker stopped", exc_info=True)
                return

    # -- the engine's events thread ---------------------------------------------------------

    def _on_change(self, change: dict[str, Any]) -> None:
        """Runs on the engine's events thread: traits only, and never raise."""
        try:
            self._refresh(change["owner"])
            if self._background and all(settled(j) for j in self.jobs):
                self._finish()
        except Exception:
            log.exception("could not update the %%sora output")

    def _unobserve(self) -> None:
        for job in self.jobs:
            with contextlib.suppress(ValueError):
                job.unobserve(self._on_change, names=All)

    def _finish(self) -> None:
        """Replace the live slot by the final HTML, in the cell that started the jobs."""
        if self._end():
            self._replace(self.look.bundle(self.jobs, self.reused))
