"""The panel in marimo: ``marimo run --headless`` of an app, driven in Chromium.

Two ways a marimo user shows it: wrapped, ``mo.ui.anywidget(sw.SoraWidget(...))``, and the
bare widget as a cell's last value. Each: the panel renders (the prompt passed from Python
in its box), one click on Generate, and the take ends with a video that really plays. marimo
has no Jupyter file server: the panel brings the video over the widget's own messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ._harness import JOB_DEADLINE_MS, shot
from ._marimo import marimo_app
from ._panel import PANEL, click_generate, generate_button, prompt_box, take, wait_playing

pytestmark = pytest.mark.browser

PROMPT = "a hummingbird hovering at a red flower, close-up, soft morning light"
CELLS = {
    "wrapped": f"panel = mo.ui.anywidget(sw.SoraWidget(prompt={PROMPT!r}))\npanel",
    "bare": f"widget = sw.SoraWidget(prompt={PROMPT!r}, aspect_ratio='9:16')\nwidget",
}


@pytest.mark.parametrize("shape", sorted(CELLS))
def test_panel_in_marimo_generates_and_plays(shape: str, tmp_path: Path, page: Any,
                                             request: pytest.FixtureRequest) -> None:
    cells = ["import sora_widgets as sw", CELLS[shape]]
    with marimo_app(tmp_path, f"panel_{shape}.py", cells, request.config) as app:
        page.goto(app.url)
        panel = page.locator(PANEL)
        panel.wait_for(timeout=JOB_DEADLINE_MS)
        assert panel.count() == 1
        assert prompt_box(panel).input_value() == PROMPT
        ratio = "9:16" if shape == "bare" else "16:9"
        panel.locator(f"button.sora-ratio.sora-on[data-ratio='{ratio}']").wait_for()
        button = panel.locator("button.sora-generate:not([disabled])")
        button.wait_for(timeout=JOB_DEADLINE_MS)
        assert "free" in button.inner_text().lower(), button.inner_text()
        job = click_generate(page, panel, generate_button(panel))["id"]
        info = wait_playing(page, take(panel, job))
        assert str(info["currentSrc"]).startswith("blob:"), (
            f"the video did not come over the widget's messages: {info}")
        wide = info["videoWidth"] > info["videoHeight"] > 0
        tall = info["videoHeight"] > info["videoWidth"] > 0
        assert (tall if shape == "bare" else wide), info
        assert page.errors == [], page.errors
        page.mouse.move(0, 0)
        shot(page, f"panel-marimo-{shape}")
        shot(page, f"panel-marimo-{shape}-panel", panel)
