"""The ``SoraWidget`` panel clicked through in JupyterLab; takes the README screenshot."""

from __future__ import annotations

from typing import Any

import pytest

from ._harness import (
    JOB_DEADLINE_MS,
    SCREENSHOTS,
    assert_served_by_jupyter,
    copy_to_docs,
    play_video,
    shot,
)

pytestmark = pytest.mark.browser

LANDSCAPE = "a lighthouse on a cliff at dusk, waves crashing below, cinematic wide shot"
PORTRAIT = "a tall waterfall in a misty jungle, slow upward pan, golden light"
NEXT_IDEA = "a paper boat drifting down a rain-soaked street at night, macro lens"


def _generate(panel: Any, prompt: str, ratio_label: str, *, double: bool = False) -> None:
    panel.locator(".sora-prompt-input textarea").fill(prompt)
    toggle = panel.locator(".widget-toggle-buttons button", has_text=ratio_label)
    toggle.click()
    toggle.and_(panel.locator("button.mod-active")).wait_for()
    button = panel.locator("button.sora-generate")
    button.and_(panel.locator("button:not([disabled])")).wait_for()
    if double:
        button.dblclick()
    else:
        button.click()


def _card(panel: Any, prompt: str) -> Any:
    return panel.locator(".sora-card", has=panel.page.locator(".sora-prompt", has_text=prompt))


def test_panel_generates_landscape_and_portrait(open_notebook: Any, lab: Any, page: Any) -> None:
    nb = open_notebook("panel.ipynb", ["import sora_widgets as sw\npanel = sw.SoraWidget()\npanel"])
    nb.command("application:toggle-left-area")   # room for two cards side by side
    nb.run_all()
    panel = nb.output(0).locator(".sora-widget")
    panel.wait_for(timeout=JOB_DEADLINE_MS)
    label = panel.locator("button.sora-generate").inner_text()
    assert "emulator, free" in label, label

    _generate(panel, LANDSCAPE, "16:9")
    wide = _card(panel, LANDSCAPE)
    wide.wait_for()
    # A double click on Generate must submit once: the second click joins the first job.
    _generate(panel, PORTRAIT, "9:16", double=True)
    tall = _card(panel, PORTRAIT)
    tall.wait_for()
    assert panel.locator(".sora-card").first.locator(".sora-prompt").inner_text() == PORTRAIT, \
        "the newest card is not first"

    videos = {}
    for name, card in (("16:9", wide), ("9:16", tall)):
        video = card.locator("video.sora-video")
        video.wait_for(timeout=JOB_DEADLINE_MS)
        card.locator(".progress-bar-success").wait_for()
        assert "completed" in card.locator(".sora-phase").inner_text()
        videos[name] = play_video(page, video.element_handle())
        assert_served_by_jupyter(videos[name], lab)
    assert videos["16:9"]["videoWidth"] > videos["16:9"]["videoHeight"] > 0, videos
    assert videos["9:16"]["videoHeight"] > videos["9:16"]["videoWidth"] > 0, videos
    cards = panel.locator(".sora-card").count()
    assert cards == 2, f"{cards} cards after one click and one double click (expected 2)"
    assert nb.errors_in_outputs() == []
    assert page.errors == [], page.errors

    # The README picture: the user typing the next idea, both players paused on a
    # representative frame, pointer away.
    panel.locator(".sora-prompt-input textarea").fill(NEXT_IDEA)
    panel.locator("button.sora-generate:not([disabled])").wait_for()
    for video in panel.locator("video.sora-video").element_handles():
        video.evaluate("v => { v.pause(); v.currentTime = 3; }")
    page.wait_for_function(
        "els => els.every(v => !v.seeking && v.readyState >= 2)",
        arg=panel.locator("video.sora-video").element_handles())
    page.mouse.move(0, 0)
    panel.scroll_into_view_if_needed()
    # Crop to what is drawn (the panel's box is wider than its form and two cards).
    whole = panel.bounding_box()
    parts = [c.bounding_box() for c in panel.locator(".sora-card, .sora-prompt-input").all()]
    right = max(b["x"] + b["width"] for b in parts)
    bottom = max(b["y"] + b["height"] for b in parts)
    path = SCREENSHOTS / "panel.png"
    page.screenshot(path=str(path), clip={
        "x": whole["x"] - 6, "y": whole["y"] - 2,
        "width": right - whole["x"] + 12, "height": bottom - whole["y"] + 10})
    copy_to_docs(path, "screenshot-panel.png")
    shot(page, "panel-page")
