"""``job.wait()`` in a notebook: live progress in the waiting cell (the engine's hook).

The engine never imports a UI: this module sets ``engine.job.wait_hook`` when the
extension loads (and before each cell, once the engine is imported), so a blocking
``job.wait()`` shows the job's progress where the user is looking, then leaves one short
line ("waited 1:05 for job v_…: completed") in its place.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sora_widgets.ui.magic.kernel import live_widgets

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job
    from sora_widgets.ui.magic.look import Look

# The views are imported when a wait first shows one: ``%load_ext`` stays light (it only
# installs this hook).

__all__ = ["before_cell", "install_wait_hook", "preferred_look", "wait_progress"]


def preferred_look() -> Look:
    """How finished jobs look outside a magic call (``%config SoraMagics.*`` settings)."""
    from sora_widgets.core.settings import preferences
    from sora_widgets.ui.magic.look import Look

    return Look(embed=preferences.embed, autodownload=preferences.autodownload,
                media_dir=preferences.media_dir)


def wait_progress(job: Job, clock: Callable[[], float] | None = None,
                  ) -> Callable[[], None] | None:
    """``engine.wait_hook``: while ``job.wait()`` blocks a notebook cell, show the job's
    live progress there; when the wait ends, leave one short line in its place (the
    result itself is what the cell shows next, e.g. ``job``). ``clock``: for tests."""
    import time

    from sora_widgets.core import words
    from sora_widgets.core.lifecycle import Status
    from sora_widgets.ui import render
    from sora_widgets.ui.magic.live import LiveView, magic_is_waiting, settled
    from sora_widgets.ui.publish import publish

    if threading.current_thread() is not threading.main_thread() or magic_is_waiting():
        return None
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or not live_widgets(shell):
        return None
    view = LiveView(shell, [job], preferred_look(), widgets=True, wait=True,
                    reused={job.local_id: False})
    view.show()
    if view.finished:
        return None
    now = clock or time.monotonic
    started = now()

    def done() -> None:
        look = preferred_look()
        if job.status == Status.COMPLETED and look.autodownload and not look.embed:
            publish(job.local_path, look.media_dir)  # so `job` displayed next plays a copy
        waited = words.duration(now() - started)
        ident = job.id or job.local_id[:8]
        if settled(job) and job.done:
            said = f"waited {waited} for job {ident}: {words.status(job.status)}"
        else:
            said = (f"stopped waiting after {waited}: job {ident} keeps running "
                    "(wait() again, or display it)")
        view.dismiss({"text/html": f"<div class='sora-waited' style='color: #666; "
                                   f"font-size: 12px'>{render.escape(said)}</div>",
                      "text/plain": said})

    return done


def install_wait_hook() -> None:
    """Let ``job.wait()`` show progress in this kernel (once the engine is imported: the
    extension itself stays light to load)."""
    engine = sys.modules.get("sora_widgets.engine.job")
    if engine is not None and getattr(engine, "wait_hook", None) is not wait_progress:
        engine.__dict__["wait_hook"] = wait_progress


def before_cell(*_args: Any) -> None:
    """IPython's ``pre_run_cell``: the engine may have been imported by the last cell."""
    install_wait_hook()
