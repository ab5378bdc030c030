"""``%sora`` in JupyterLab: live progress, a playing video, the 403 message, escaping."""

from __future__ import annotations

from typing import Any

import pytest

from ._harness import (
    JOB_DEADLINE_MS,
    assert_served_by_jupyter,
    describe_video,
    play_video,
    shot,
)
from ._panel import PANEL

pytestmark = pytest.mark.browser

#: Records every width the progress bars of the page's outputs take (installed before Run).
WATCH_PROGRESS_JS = """() => {
    window.__bars = [];
    window.__barSeen = false;
    const sample = () => {
        for (const bar of document.querySelectorAll(
                '.jp-OutputArea .widget-hprogress .progress-bar')) {
            window.__barSeen = true;
            const width = parseFloat(bar.style.width);
            const last = window.__bars[window.__bars.length - 1];
            if (!Number.isNaN(width) && width !== last) window.__bars.push(width);
        }
    };
    new MutationObserver(sample).observe(document.body,
        {subtree: true, childList: true, attributes: true, attributeFilter: ['style']});
}"""


def test_sora_magic_progress_then_video_plays(open_notebook: Any, lab: Any, page: Any) -> None:
    nb = open_notebook("magic-puppy.ipynb", [
        "%load_ext sora_widgets",
        "%sora a golden retriever puppy running through sunflowers, slow motion",
    ])
    page.evaluate(WATCH_PROGRESS_JS)
    nb.run_by_keyboard(2)
    out = nb.output(1)
    # The cell returns at once with a live progress bar (an ipywidgets IntProgress)...
    out.locator(".widget-hprogress").wait_for(timeout=JOB_DEADLINE_MS)
    shot(page, "magic-progress")
    # ...that the poller thread advances, then the final HTML replaces it by the player.
    video = out.locator("video.sora-video")
    video.wait_for(timeout=JOB_DEADLINE_MS)
    bars = page.evaluate("window.__bars")
    print("progress widths seen:", bars)
    assert page.evaluate("window.__barSeen"), "no progress bar was ever shown"
    intermediate = [w for w in bars if 0 < w < 100]
    assert intermediate, f"the progress bar never showed a value between 0 and 100: {bars}"
    assert bars == sorted(bars), f"the progress bar went backwards: {bars}"
    assert out.locator(".widget-hprogress").count() == 0, "the live bar stayed after completion"

    info = play_video(page, video.element_handle())
    assert info["videoWidth"] > info["videoHeight"] > 0, info
    assert_served_by_jupyter(info, lab)
    text = out.inner_text()
    assert "golden retriever puppy" in text and "local emulator — no charge" in text, text
    assert nb.errors_in_outputs() == []
    assert page.errors == [], page.errors
    shot(page, "magic-video-playing")


VIP_KEY_SENTINEL = "nonvip-browser-test-SENTINEL-7f3a"


def test_sora_magic_403_shows_vip_message(open_notebook: Any, page: Any) -> None:
    nb = open_notebook("magic-403.ipynb", [
        "import os\n"
        "from sora_widgets.emulator import EmulatorConfig, start_emulator\n"
        "relay = start_emulator(EmulatorConfig(time_scale=0.02))\n"
        f"os.environ['SORA_API_KEY'] = {VIP_KEY_SENTINEL!r}\n"
        "os.environ['SORA_BASE_URL'] = relay.base_url",
        "%load_ext sora_widgets",
        "%sora a cat in a space helmet floating past the moon",
    ])
    nb.run_all()
    out = nb.output(2)
    box = out.locator(".sora-error")
    box.wait_for(timeout=JOB_DEADLINE_MS)
    text = out.inner_text()
    assert "this key is not in the VIP group" in text, text
    assert VIP_KEY_SENTINEL not in text, "the API key appears in the output"
    assert out.locator("video").count() == 0
    assert nb.errors_in_outputs() == []
    shot(page, "magic-403")


PAYLOADS = [
    '<img src=x onerror="window.__pwned=1">',
    "<script>window.__pwned=1</script>",
    "\"'><svg onload=\"window.__pwned=1\">",
]
PROMPT = "a fox " + " ".join(PAYLOADS)

#: Any element an injected payload would have created inside an output.
INJECTED_JS = """() => [...document.querySelectorAll('.jp-OutputArea *')]
    .filter(e => e.hasAttribute('onerror') || e.hasAttribute('onload')
                 || (e.tagName === 'SCRIPT' && e.textContent.includes('__pwned'))
                 || (e.tagName === 'IMG' && e.getAttribute('src') === 'x'))
    .map(e => e.outerHTML)"""


def test_html_payload_prompt_shows_as_text(open_notebook: Any, page: Any) -> None:
    page.add_init_script("window.__pwned = undefined;")
    nb = open_notebook("magic-xss.ipynb", [
        "%load_ext sora_widgets\nimport sora_widgets as sw",
        "%%sora -o fox\n" + PROMPT,
        "fox.wait(timeout=60)\nfox",
        "%sora jobs",
        f"panel = sw.SoraWidget(prompt={PROMPT!r})\npanel",
    ])
    nb.run_all()
    nb.wait_executed()
    for cell in (1, 2):
        nb.output(cell).locator("video.sora-video").wait_for(timeout=JOB_DEADLINE_MS)
    panel = nb.output(4).locator(PANEL)
    panel.locator("button.sora-generate:not([disabled])").click()
    panel.locator(".sora-take video.sora-take-video").wait_for(timeout=JOB_DEADLINE_MS)
    nb.output(3).locator("table.sora-jobs").wait_for()
    # An <img src=x> would fire onerror at once; give any payload a moment to run anyway.
    page.wait_for_timeout(500)

    assert page.evaluate("window.__pwned") is None, "a payload in the prompt ran"
    assert page.evaluate(INJECTED_JS) == []
    for cell in (1, 2):
        text = nb.output(cell).inner_text()
        for payload in PAYLOADS:
            assert payload in text, f"cell {cell} does not show {payload!r} as text: {text!r}"
    history = nb.output(3).inner_text()       # the table clips prompts to 80 characters
    assert PROMPT[:80] in history, history
    header = panel.locator(".sora-take .sora-take-prompt").first.inner_text()
    assert PROMPT in header, header
    assert nb.errors_in_outputs() == []
    shot(page, "magic-xss", nb.root)
    # The player still works with such a prompt.
    describe = describe_video(nb.output(1).locator("video.sora-video").element_handle())
    assert describe["error"] is None, describe


def test_cached_rerun_says_reused(open_notebook: Any, page: Any) -> None:
    prompt = "a red kite tugging at its string above a windy beach"
    nb = open_notebook("magic-reused.ipynb", [
        "%load_ext sora_widgets",
        f"%sora --wait {prompt}",
        f"%sora --wait {prompt}",
    ])
    nb.run_all()
    nb.wait_executed()
    first, again = nb.output(1), nb.output(2)
    again.locator("video.sora-video").wait_for(timeout=JOB_DEADLINE_MS)
    assert first.locator(".sora-reused").count() == 0
    badge = again.locator(".sora-reused")
    assert badge.is_visible() and badge.inner_text() == "reused — no new charge"
    same = [o.locator("video.sora-video").get_attribute("src").split("?")[0]
            for o in (first, again)]                  # (Lab adds a cache-busting query)
    assert same[0] == same[1], same                   # the same video, not a new one
    assert nb.errors_in_outputs() == []
    again.scroll_into_view_if_needed()
    shot(page, "magic-reused")
