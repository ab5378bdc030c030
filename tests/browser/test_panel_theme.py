"""The panel's text contrast in JupyterLab's light and dark themes (WCAG AA, computed).

One panel shows every part at once: the form with a prompt typed, a finished take
(player, money line, buttons, note field), a take still running in the queue (the
emulator's timeline slowed for it), and History open with both cards. In JupyterLab Light
and then JupyterLab Dark (switched by the app's own ``apputils:change-theme``), every
visible text inside ``.sora-panel`` is measured from computed styles: its colour against
what is drawn behind it (the first opaque backgrounds up the tree, with opacity). Each must
reach 4.5:1 (3:1 for large text: 24 px, or 18.66 px bold). The failure lists the worst.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ._harness import JOB_DEADLINE_MS, JupyterServer, Notebook, shot
from ._panel import (
    PANEL,
    click_generate,
    contrast_failures,
    fill_form,
    take,
    wait_playing,
)

pytestmark = pytest.mark.browser

FINISHED = "a fox trotting through fresh snow in a birch forest, morning light"
RUNNING = "a slow tide filling rock pools under a grey sky, long exposure"
TYPING = "a paper boat drifting down a rain-soaked street at night, macro lens"
LIGHT, DARK = "JupyterLab Light", "JupyterLab Dark"


def _use_theme(nb: Notebook, theme: str) -> None:
    """Switch JupyterLab's theme and wait until its stylesheet is applied and the splash
    screen Lab shows meanwhile is gone."""
    nb.command("apputils:change-theme", {"theme": theme})
    nb.page.wait_for_function(
        """([name, light]) => document.body.dataset.jpThemeName === name
            && document.body.dataset.jpThemeLight === String(light)
            && !document.querySelector('#jupyterlab-splash')
            && getComputedStyle(document.body).getPropertyValue('--jp-layout-color0').trim()
               !== ''""",
        arg=[theme, theme == LIGHT], timeout=30_000)
    nb.page.evaluate("() => new Promise(r => requestAnimationFrame(() => "
                     "requestAnimationFrame(r)))")


@pytest.fixture
def themed(lab: JupyterServer, page: Any) -> Iterator[Notebook]:
    """The panel's notebook open in Lab; the theme (saved in Lab's settings, so shared with
    every later test) is set back to light afterwards."""
    name = "panel-theme.ipynb"
    lab.write_notebook(name, ["import sora_widgets as sw\npanel = sw.SoraWidget()\npanel"])
    page.set_viewport_size({"width": 1400, "height": 1900})   # the whole panel in view
    nb = Notebook(page, lab, name).open()
    try:
        yield nb
    finally:
        _use_theme(nb, LIGHT)


def test_panel_text_contrast_in_light_and_dark(themed: Notebook, page: Any) -> None:
    nb = themed
    _use_theme(nb, LIGHT)
    nb.run_all()
    panel = nb.output(0).locator(PANEL)
    panel.wait_for(timeout=JOB_DEADLINE_MS)
    panel.locator("button.sora-history-toggle").click()
    panel.locator(".sora-history").wait_for()

    finished = click_generate(page, panel, fill_form(panel, FINISHED, "16:9"))["id"]
    card = take(panel, finished)
    wait_playing(page, card)
    card.locator("video.sora-take-video").evaluate("v => { v.pause(); v.currentTime = 3; }")
    # The next take runs for minutes: it stays in the queue (and History) while we look.
    nb.execute("import os\nos.environ['SORA_EMULATOR_TIME_SCALE'] = '1'")
    running = click_generate(page, panel, fill_form(panel, RUNNING, "9:16"))["id"]
    panel.locator(f".sora-queue-item[data-job-id='{running}']").wait_for()
    panel.locator(f".sora-history-card[data-job-id='{finished}'][data-status='completed'] "
                  "img.sora-history-poster").wait_for(timeout=JOB_DEADLINE_MS)
    panel.locator(f".sora-history-card[data-job-id='{running}']").wait_for(
        timeout=JOB_DEADLINE_MS)
    fill_form(panel, TYPING, "16:9")
    page.mouse.move(0, 0)

    reports = []
    failed = False
    for theme, label in ((LIGHT, "light"), (DARK, "dark")):
        _use_theme(nb, theme)
        panel.scroll_into_view_if_needed()
        failing, report = contrast_failures(page, panel, theme)
        failed = failed or bool(failing)
        reports.append(report)
        shot(page, f"panel-theme-{label}", panel)
        shot(page, f"panel-theme-{label}-page")
    assert panel.locator(f".sora-queue-item[data-job-id='{running}']").count() == 1, \
        "the running take left the queue before both themes were measured"
    assert not failed, "\n".join(reports)
    assert page.errors == [], page.errors
