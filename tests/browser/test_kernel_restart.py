"""A kernel restart while jobs run: the live views say so instead of freezing.

A ``%sora`` cell and a panel each have a job running (the emulator's timeline slowed to
30-90 s). Their status lines tick every second on their own (elapsed time, "estimating…"
until the engine has an estimate). Then Kernel > Restart: nothing of ours runs any more,
JupyterLab marks the dead kernel's widget views disconnected, and the CSS they carry swaps
the frozen progress for "kernel restarted — run %sora resume" (the panel: run its cell
again). No "Cannot send" error reaches the page.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from ._harness import JOB_DEADLINE_MS, KERNEL_DEADLINE_MS, shot
from ._panel import PANEL, prompt_box

pytestmark = pytest.mark.browser

PHASE_JS = """els => els.map(e => e.textContent)"""


def _phase_texts(out: Any) -> list[str]:
    return list(out.locator(".sora-phase").evaluate_all(PHASE_JS))


def test_kernel_restart_mid_job_turns_live_views_into_the_message(open_notebook: Any,
                                                                  page: Any) -> None:
    nb = open_notebook("restart-mid-job.ipynb", [
        "import os\nos.environ['SORA_EMULATOR_TIME_SCALE'] = '0.5'   # 30-90 s a job",
        "%load_ext sora_widgets\nimport sora_widgets as sw",
        "%sora a glacier calving into a grey sea, slow and patient -o job",
        "panel = sw.SoraWidget(prompt='a tide coming in over black sand, very slowly')\npanel",
    ])
    nb.run_all()
    nb.wait_executed()
    magic, panel_out = nb.output(2), nb.output(3)
    magic.locator(".sora-live .widget-hprogress").wait_for(timeout=JOB_DEADLINE_MS)
    panel = panel_out.locator(PANEL)
    panel.locator("button.sora-generate:not([disabled])").click()
    panel.locator(".sora-queue-item").wait_for(timeout=JOB_DEADLINE_MS)
    panel.locator(".sora-take .sora-bar").wait_for(timeout=JOB_DEADLINE_MS)

    # Elapsed time moves every second by itself (no poll needed), in both views.
    seen: dict[str, set[str]] = {"magic": set(), "panel": set()}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and min(len(v) for v in seen.values()) < 3:
        seen["magic"].update(_phase_texts(magic))
        seen["panel"].update(_phase_texts(panel_out.locator(".sora-take")))
        page.wait_for_timeout(250)
    assert min(len(v) for v in seen.values()) >= 3, f"the status did not tick: {seen}"
    texts = " ".join(seen["magic"] | seen["panel"])
    assert "estimating…" in texts or re.search(r"about \d+s left", texts), texts
    assert not magic.locator(".sora-restart").is_visible()
    assert not panel.locator(".sora-restart").is_visible()
    shot(page, "restart-before")

    nb.page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext"
                     ".restartKernel()")
    # Both live views turn into the restart message...
    for out, words in ((magic, "%sora resume"), (panel_out, "run its cell again")):
        message = out.locator(".sora-restart")
        message.wait_for(state="visible", timeout=KERNEL_DEADLINE_MS)
        text = message.inner_text()
        assert "kernel restarted" in text and words in text, text
    # ...the frozen progress is gone, and the dead panel's form takes no clicks.
    assert not magic.locator(".sora-running").is_visible()
    assert panel.locator(".sora-queue-item").count() >= 1
    assert not panel.locator(".sora-queue-item").first.is_visible()
    assert not panel.locator(".sora-take .sora-bar").first.is_visible()
    assert panel.locator(".sora-form").evaluate("e => getComputedStyle(e).pointerEvents") \
        == "none"
    nb.wait_kernel_idle()
    # A click on the dead panel (a card button, the form) reaches no dead model.
    for button in (panel.locator(".sora-take button").first,
                   panel.locator("button.sora-generate")):
        button.click(force=True)
    prompt_box(panel).click(force=True)
    assert prompt_box(panel).evaluate(
        "e => document.activeElement !== e"), "the dead panel's prompt box took the focus"
    nb.wait_kernel_idle()
    assert not [e for e in page.errors if "Cannot send" in e], page.errors
    panel.scroll_into_view_if_needed()
    shot(page, "restart-after")
