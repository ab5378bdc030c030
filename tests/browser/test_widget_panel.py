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
    _generate(panel, PORTRAIT, "9:16")
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
    assert panel.locator(".sora-card").count() == 2
    assert "local emulator" not in wide.inner_text() + tall.inner_text()   # said once, below
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

    # A double click on Generate must submit once: the second click joins the first job
    # (and says so), it never pays for a second one.
    _generate(panel, NEXT_IDEA, "16:9", double=True)
    _card(panel, NEXT_IDEA).locator("video.sora-video").wait_for(timeout=JOB_DEADLINE_MS)
    cards = panel.locator(".sora-card").count()
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


def test_empty_panel_is_guidance_and_an_unloadable_image_a_placeholder(
        open_notebook: Any, lab: Any, page: Any) -> None:
    from PIL import Image

    Image.new("RGB", (160, 90), (40, 110, 190)).save(lab.root / "first-frame.png")
    nb = open_notebook("panel-empty.ipynb", ["import sora_widgets as sw\nsw.SoraWidget()"])
    nb.run_all()
    panel = nb.output(0).locator(".sora-widget")
    panel.locator("button.sora-generate").wait_for(timeout=JOB_DEADLINE_MS)
    # Before the user does anything: guidance (placeholder, tooltip), no red words.
    assert page.evaluate(RED_TEXT_JS, panel.element_handle()) == []
    assert panel.locator(".sora-notice").count() == 0
    assert panel.locator("button.sora-generate").is_disabled()
    assert "Describe the video" in panel.locator(".sora-prompt-input textarea") \
        .get_attribute("placeholder")
    assert not panel.locator(".sora-restart").is_visible()
    shot(page, "panel-empty", panel)

    field = panel.locator(".sora-image-input input")
    previews = {}
    for name, url in (("dead", "http://127.0.0.1:9/no-such-frame.png"),
                      ("live", f"{lab.url}/files/first-frame.png")):
        field.fill(url)
        field.press("Enter")                       # continuous_update=False: commit it
        preview = panel.locator(f".sora-image-preview[title='{url}']")
        preview.wait_for()
        assert panel.locator(".sora-image-preview img").count() == 0   # no broken icon
        assert url.split("//")[1] in preview.locator(".sora-image-url").inner_text()
        previews[name] = shot(page, f"panel-image-preview-{name}", preview)
    # The dead link leaves the neutral box with its URL; the live image covers both.
    assert previews["dead"].read_bytes() != previews["live"].read_bytes()
    assert page.evaluate(RED_TEXT_JS, panel.element_handle()) == []
    assert page.errors == [], page.errors


BALLOON = "a hot air balloon drifting over green hills at sunrise"
HERON = "a grey heron lifting off a misty pond, slow motion"
KEYBOARD = "a red tram turning a corner in the snow, evening light"


def test_takes_land_by_the_form_history_is_live_and_a_double_click_pays_once(
        open_notebook: Any, lab: Any, page: Any) -> None:
    import json
    import re
    import urllib.request

    nb = open_notebook("panel-live.ipynb", [
        "import sora_widgets as sw\nfrom sora_widgets.studio.studio import default_studio\n"
        "print('EMULATOR', default_studio().emulator_url())\n"
        "panel = sw.SoraWidget()\npanel.history.open()\npanel",
        # A take made elsewhere in the kernel (as %sora or sw.generate would).
        f"elsewhere = sw.generate({BALLOON!r})"])
    nb.run_all()
    panel = nb.output(0).locator(".sora-panel")
    panel.wait_for(timeout=JOB_DEADLINE_MS)
    history = panel.locator(".sora-history")
    history.wait_for(timeout=JOB_DEADLINE_MS)
    emulator = re.search(r"EMULATOR (\S+)", nb.output(0).inner_text())
    assert emulator, nb.output(0).inner_text()

    def posts() -> int:
        with urllib.request.urlopen(f"{emulator.group(1)}/_emulator/stats", timeout=10) as r:
            return int(json.load(r)["posts"])

    # With History open, the take finished elsewhere shows completed, with its poster,
    # and nobody clicks anything (no ↻).
    done = history.locator(".sora-history-card[data-status='completed']", has_text=BALLOON)
    done.locator("img.sora-history-poster").wait_for(timeout=JOB_DEADLINE_MS)
    assert done.get_attribute("data-job-id")
    shot(page, "panel-history-live", history)

    # The DOM contract the other front-end tests use.
    for selector in ("textarea.sora-prompt", "input.sora-image", "button.sora-generate",
                     "button.sora-ratio[data-ratio='16:9']",
                     "button.sora-ratio[data-ratio='9:16']", ".sora-spend"):
        panel.locator(selector).first.wait_for()

    before = posts()
    panel.locator(".sora-prompt-input textarea").fill(HERON)
    button = panel.locator("button.sora-generate")
    button.and_(panel.locator("button:not([disabled])")).wait_for()
    assert "earlier" not in button.inner_text()
    button.dblclick()
    card = _card(panel, HERON)
    card.wait_for()
    # The take's card is in view right after the click (under the form, above History).
    box = card.bounding_box()
    height = page.evaluate("() => window.innerHeight")
    assert box is not None and 0 <= box["y"] < height, (box, height)
    assert "earlier" not in button.inner_text() and "reused" not in button.inner_text()
    video = card.locator("video.sora-video")
    video.wait_for(timeout=JOB_DEADLINE_MS)
    info = play_video(page, video.element_handle())
    assert info["videoWidth"] > 0, info
    take = panel.locator(".sora-takes .sora-take[data-status='completed']", has_text=HERON)
    take.locator("video").wait_for()
    assert take.get_attribute("data-job-id")
    assert "reused" not in take.locator(".sora-take-money").inner_text().lower()
    assert posts() - before == 1, "a double click sent more than one POST"
    assert _card(panel, HERON).count() == 1
    texts = panel.locator(".sora-card").all_inner_texts()
    assert not [t for t in texts if "reused" in t.lower()], texts
    page.mouse.move(0, 0)
    shot(page, "panel-double-click-joined", panel)

    # Ctrl+Enter in the prompt generates; the running take shows in the queue under the
    # form, then its card plays.
    prompt = panel.locator(".sora-prompt-input textarea")
    prompt.fill(KEYBOARD)
    button.and_(panel.locator("button:not([disabled])")).wait_for()
    prompt.press("Control+Enter")
    item = panel.locator(".sora-queue .sora-queue-item[data-status]", has_text=KEYBOARD)
    item.wait_for(timeout=JOB_DEADLINE_MS)
    shot(page, "panel-queue", panel)
    _card(panel, KEYBOARD).locator("video.sora-video").wait_for(timeout=JOB_DEADLINE_MS)
    item.wait_for(state="detached", timeout=JOB_DEADLINE_MS)
    assert posts() - before == 2
    assert nb.errors_in_outputs() == []
    assert page.errors == [], page.errors
