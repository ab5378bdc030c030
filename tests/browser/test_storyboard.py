"""``%%sora --storyboard`` in JupyterLab: the quote first, live rows per shot, then the
stitched film playing across the cut between shots, with the shots listed under it."""

from __future__ import annotations

from typing import Any

import pytest

from sora_widgets.core.lifecycle import Status

from ._harness import JOB_DEADLINE_MS, assert_served_by_jupyter, describe_video, shot

pytestmark = pytest.mark.browser

SHOTS = ["a red paper boat sets sail on a pond", "the paper boat reaches a tiny island"]

#: Notes whether the live rows of a storyboard were ever on the page (installed before Run).
WATCH_LIVE_JS = """() => {
    window.__liveSeen = false;
    new MutationObserver(() => {
        if (document.querySelector('.jp-OutputArea .sora-storyboard-live .widget-hprogress'))
            window.__liveSeen = true;
    }).observe(document.body, {subtree: true, childList: true});
}"""


def test_storyboard_cell_ends_with_the_film_playing_and_the_shots_under_it(
        open_notebook: Any, lab: Any, page: Any) -> None:
    nb = open_notebook("storyboard.ipynb", [
        "%load_ext sora_widgets",
        "%%sora --storyboard\n" + "\n\n".join(SHOTS),
    ])
    page.evaluate(WATCH_LIVE_JS)
    nb.run_by_keyboard(2)
    out = nb.output(1)
    # The quote comes first, before anything is sent.
    cost = out.locator(".sora-cost")
    cost.wait_for(timeout=JOB_DEADLINE_MS)
    assert cost.inner_text() == "Storyboard of 2 shots: 2 new · local emulator — no charge"
    # While the shots are made: one row per shot with its progress.
    live = out.locator(".sora-storyboard-live")
    live.wait_for(timeout=JOB_DEADLINE_MS)
    assert live.locator(".sora-shot-row").count() == 2
    shot(page, "storyboard-progress", nb.output(1))
    # The film replaces the live rows once both shots are made and stitched.
    film = out.locator("video.sora-film")
    film.wait_for(timeout=2 * JOB_DEADLINE_MS)
    assert page.evaluate("window.__liveSeen"), "the shots' live progress was never shown"
    assert out.locator(".sora-storyboard-live").count() == 0, "the live rows stayed"

    handle = film.element_handle()
    page.wait_for_function("v => v.readyState >= 1 && v.duration > 0", arg=handle,
                           timeout=30_000)
    duration = handle.evaluate("v => v.duration")
    assert 23.5 < duration < 24.5, f"the film is not two 12 s clips long: {duration}"
    # Play across the cut: from 11.5 s, the second shot must be reached and played.
    problem = handle.evaluate(
        """async v => {
            v.scrollIntoView({block: 'center'});
            v.muted = true;
            v.currentTime = 11.5;
            await new Promise(r => v.addEventListener('seeked', r, {once: true}));
            try { await v.play(); return null; } catch (e) { return String(e); }
        }""")
    assert problem is None, f"film.play() failed: {problem}; {describe_video(handle)}"
    page.wait_for_function("v => v.currentTime > 12.5 && !v.paused && v.readyState >= 2",
                           arg=handle, timeout=30_000)
    info = describe_video(handle)
    assert info["videoWidth"] > info["videoHeight"] > 0 and info["error"] is None, info
    assert_served_by_jupyter(info, lab)
    assert "/sora_videos/storyboard-" in str(info["currentSrc"])

    # The shots, in order, under the film, each with its own clip.
    shots = out.locator("li.sora-shot")
    assert shots.count() == 2
    for index, prompt in enumerate(SHOTS):
        text = shots.nth(index).inner_text()
        assert f"Shot {index + 1}" in text and prompt in text, text
        assert Status.COMPLETED.value in text, text
    assert out.locator("video.sora-shot-video").count() == 2
    below = film.evaluate(
        "(v, li) => !!(v.compareDocumentPosition(li) & Node.DOCUMENT_POSITION_FOLLOWING)",
        shots.first.element_handle())
    assert below, "the shots are not listed under the film"
    caption = out.locator(".sora-film-caption").inner_text()
    assert "film of 2 shots · 24 s" in caption, caption
    assert nb.errors_in_outputs() == []
    assert page.errors == [], page.errors
    shot(page, "storyboard-film-playing", nb.output(1))
