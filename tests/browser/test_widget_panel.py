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
from ._panel import (
    EMULATOR_CELL,
    PANEL,
    emulator_posts,
    emulator_url,
    fill_form,
    prompt_box,
)

pytestmark = pytest.mark.browser

LANDSCAPE = "a lighthouse on a cliff at dusk, waves crashing below, cinematic wide shot"
PORTRAIT = "a tall waterfall in a misty jungle, slow upward pan, golden light"
NEXT_IDEA = "a paper boat drifting down a rain-soaked street at night, macro lens"


def _generate(panel: Any, prompt: str, ratio: str, *, double: bool = False) -> None:
    button = fill_form(panel, prompt, ratio)
    if double:
        button.dblclick()
    else:
        button.click()


def _card(panel: Any, prompt: str) -> Any:
    return panel.locator(".sora-take", has=panel.page.locator(".sora-take-prompt",
                                                              has_text=prompt))


def test_panel_generates_landscape_and_portrait(open_notebook: Any, lab: Any, page: Any) -> None:
    nb = open_notebook("panel.ipynb", ["import sora_widgets as sw\npanel = sw.SoraWidget()\npanel"])
    nb.command("application:toggle-left-area")   # room for two cards side by side
    nb.run_all()
    panel = nb.output(0).locator(PANEL)
    panel.wait_for(timeout=JOB_DEADLINE_MS)
    label = panel.locator("button.sora-generate").inner_text()
    assert "emulator" in label and "free" in label, label

    _generate(panel, LANDSCAPE, "16:9")
    wide = _card(panel, LANDSCAPE)
    wide.wait_for()
    _generate(panel, PORTRAIT, "9:16")
    tall = _card(panel, PORTRAIT)
    tall.wait_for()
    assert panel.locator(".sora-take").first.locator(".sora-take-prompt").inner_text() \
        == PORTRAIT, "the newest card is not first"

    videos = {}
    for name, card in (("16:9", wide), ("9:16", tall)):
        video = card.locator("video.sora-take-video")
        video.wait_for(timeout=JOB_DEADLINE_MS)
        card.and_(panel.locator(".sora-take[data-status='completed']")).wait_for()
        assert "completed" in card.locator(".sora-phase").inner_text()
        videos[name] = play_video(page, video.element_handle())
        assert_served_by_jupyter(videos[name], lab)
    assert videos["16:9"]["videoWidth"] > videos["16:9"]["videoHeight"] > 0, videos
    assert videos["9:16"]["videoHeight"] > videos["9:16"]["videoWidth"] > 0, videos
    assert panel.locator(".sora-take").count() == 2
    assert "local emulator" not in wide.inner_text() + tall.inner_text()   # said once, above
    assert nb.errors_in_outputs() == []
    assert page.errors == [], page.errors

    # The README picture: the user typing the next idea, both players paused on a
    # representative frame, pointer away.
    prompt_box(panel).fill(NEXT_IDEA)
    panel.locator("button.sora-generate:not([disabled])").wait_for()
    for video in panel.locator("video.sora-take-video").element_handles():
        video.evaluate("v => { v.pause(); v.currentTime = 3; }")
    page.wait_for_function(
        "els => els.every(v => !v.seeking && v.readyState >= 2)",
        arg=panel.locator("video.sora-take-video").element_handles())
    page.mouse.move(0, 0)
    panel.scroll_into_view_if_needed()
    # Crop to what is drawn (the panel's box is wider than its form and two cards).
    whole = panel.bounding_box()
    parts = [c.bounding_box() for c in panel.locator(".sora-take, .sora-form").all()]
    right = max(b["x"] + b["width"] for b in parts)
    bottom = max(b["y"] + b["height"] for b in parts)
    path = SCREENSHOTS / "panel.png"
    page.screenshot(path=str(path), clip={
        "x": whole["x"] - 6, "y": whole["y"] - 2,
        "width": right - whole["x"] + 12, "height": bottom - whole["y"] + 10})
    copy_to_docs(path, "screenshot-panel.png")
    shot(page, "panel-page")

    # A double click on Generate must submit once: the second click joins the first job
    # (and says so), it never pays for a second one.
    _generate(panel, NEXT_IDEA, "16:9", double=True)
    _card(panel, NEXT_IDEA).locator("video.sora-take-video").wait_for(timeout=JOB_DEADLINE_MS)
    cards = panel.locator(".sora-take").count()
    assert cards == 3, f"{cards} cards after two clicks and one double click (expected 3)"
    assert page.errors == [], page.errors
    page.mouse.move(0, 0)
    shot(page, "panel-double-click", panel)


#: Elements inside the root whose own text is drawn in a red (error) colour.
RED_TEXT_JS = """root => [...root.querySelectorAll('*')]
    .filter(e => [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()))
    .filter(e => e.offsetParent !== null)
    .map(e => [e, getComputedStyle(e).color.match(/\\d+/g).map(Number)])
    .filter(([e, [r, g, b]]) => r >= 150 && g < 100 && b < 100)
    .map(([e]) => e.textContent.trim())"""


def test_empty_panel_is_guidance_and_only_a_loaded_image_is_previewed(
        open_notebook: Any, lab: Any, page: Any) -> None:
    from PIL import Image

    Image.new("RGB", (160, 90), (40, 110, 190)).save(lab.root / "first-frame.png")
    nb = open_notebook("panel-empty.ipynb", ["import sora_widgets as sw\nsw.SoraWidget()"])
    nb.run_all()
    panel = nb.output(0).locator(PANEL)
    panel.locator("button.sora-generate").wait_for(timeout=JOB_DEADLINE_MS)
    # Before the user does anything: guidance (placeholder, the reason in words), no red.
    assert page.evaluate(RED_TEXT_JS, panel.element_handle()) == []
    assert panel.locator("button.sora-generate").is_disabled()
    words = " ".join(panel.locator(".sora-generate-reason, .sora-generate-hint")
                     .all_inner_texts()).strip()
    assert "describe" in words.lower(), f"a disabled Generate does not say why beside it: {words!r}"
    assert "Describe the video" in prompt_box(panel).get_attribute("placeholder")
    assert not panel.locator(".sora-restart").is_visible()
    shot(page, "panel-empty", panel)

    field = panel.locator("input.sora-image")
    preview = panel.locator("img.sora-image-preview")
    # A dead link: no thumbnail, and no broken-image icon.
    field.fill("http://127.0.0.1:9/no-such-frame.png")
    field.press("Enter")
    page.wait_for_function(   # tried, failed, and hidden (no broken-image icon)
        "img => (img.getAttribute('src') || '').includes('no-such-frame') && img.complete"
        " && img.naturalWidth === 0 && !img.checkVisibility()", arg=preview.element_handle())
    shot(page, "panel-image-preview-dead", panel.locator(".sora-form"))
    # A live one: the thumbnail of the image itself.
    url = f"{lab.url}/files/first-frame.png"
    field.fill(url)
    field.press("Enter")
    preview.wait_for(state="visible")
    page.wait_for_function("img => img.complete && img.naturalWidth === 160",
                           arg=preview.element_handle())
    shot(page, "panel-image-preview-live", panel.locator(".sora-form"))
    assert page.evaluate(RED_TEXT_JS, panel.element_handle()) == []
    assert page.errors == [], page.errors


BALLOON = "a hot air balloon drifting over green hills at sunrise"
KEYBOARD = "a red tram turning a corner in the snow, evening light"


def test_history_is_live_for_takes_made_elsewhere_and_ctrl_enter_generates(
        open_notebook: Any, lab: Any, page: Any) -> None:
    """History follows a take made by ``sw.generate`` in another cell with no click (the
    panel's own takes, the in-view and double-click checks: test_panel_frontends.py)."""
    nb = open_notebook("panel-live.ipynb", [
        EMULATOR_CELL + "import sora_widgets as sw\n"
        "panel = sw.SoraWidget()\npanel.history.open()\npanel",
        # A take made elsewhere in the kernel (as %sora or sw.generate would).
        f"elsewhere = sw.generate({BALLOON!r})"])
    nb.run_all()
    panel = nb.output(0).locator(PANEL)
    panel.wait_for(timeout=JOB_DEADLINE_MS)
    history = panel.locator(".sora-history")
    history.wait_for(timeout=JOB_DEADLINE_MS)
    relay = emulator_url(nb.output(0).inner_text())

    # With History open, the take finished elsewhere shows completed, with its poster,
    # and nobody clicks anything (no ↻).
    done = history.locator(".sora-history-card[data-status='completed']", has_text=BALLOON)
    done.locator("img.sora-history-poster").wait_for(timeout=JOB_DEADLINE_MS)
    assert done.get_attribute("data-job-id")
    assert done.locator("img.sora-history-poster").evaluate("i => i.naturalWidth") > 0
    done.scroll_into_view_if_needed()
    shot(page, "panel-history-live")

    # The DOM contract the other front-end tests use.
    for selector in ("textarea.sora-prompt", "input.sora-image", "button.sora-generate",
                     "button.sora-ratio[data-ratio='16:9']",
                     "button.sora-ratio[data-ratio='9:16']", ".sora-spend",
                     "button.sora-history-toggle"):
        panel.locator(selector).first.wait_for(state="attached")

    # Ctrl+Enter in the prompt generates; the running take shows in the queue under the
    # form, then its card plays.
    before = emulator_posts(relay)
    fill_form(panel, KEYBOARD, "16:9")
    prompt_box(panel).press("Control+Enter")
    item = panel.locator(".sora-queue .sora-queue-item[data-status]", has_text=KEYBOARD)
    item.wait_for(timeout=JOB_DEADLINE_MS)
    shot(page, "panel-queue")
    video = _card(panel, KEYBOARD).locator("video.sora-take-video")
    video.wait_for(timeout=JOB_DEADLINE_MS)
    info = play_video(page, video.element_handle())
    assert info["videoWidth"] > info["videoHeight"] > 0, info
    item.wait_for(state="detached", timeout=JOB_DEADLINE_MS)
    assert emulator_posts(relay) - before == 1
    assert nb.errors_in_outputs() == []
    assert page.errors == [], page.errors
