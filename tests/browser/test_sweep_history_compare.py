"""Sweeps, History and Compare in JupyterLab (Debian Chromium), on the embedded emulator.

This file starts its own JupyterLab (its own journal): the History test seeds 200 earlier
jobs, which must not leak into the other browser tests' journal.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.history_seed import seed_history

from ._harness import (
    JOB_DEADLINE_MS,
    KERNEL_DEADLINE_MS,
    JupyterServer,
    Notebook,
    assert_served_by_jupyter,
    play_video,
    serving,
    shot,
)
from ._panel import PANEL, prompt_box

pytestmark = pytest.mark.browser

_PANEL = "window.jupyterapp.shell.currentWidget"
ANIMALS = ("fox", "owl", "cat", "heron")


@pytest.fixture(scope="module")
def lab13(tmp_path_factory: pytest.TempPathFactory,
          request: pytest.FixtureRequest) -> Iterator[JupyterServer]:
    """A JupyterLab of its own: its history is seeded with 200 jobs."""
    with serving("lab", tmp_path_factory.mktemp("lab13"), request.config,
                 "JupyterLab (issue 13)") as server:
        yield server


def snap(page: Any, name: str, target: Any = None) -> None:
    """A screenshot, also kept in screenshots/issue13/ (another browser session run
    meanwhile clears the top folder)."""
    path = shot(page, name, target)
    keep = path.parent / "issue13"
    keep.mkdir(exist_ok=True)
    shutil.copyfile(path, keep / path.name)


def open_in(server: JupyterServer, page: Any, name: str, cells: list[str]) -> Notebook:
    server.write_notebook(name, cells)
    return Notebook(page, server, name).open()


# -- the magic's sweep ------------------------------------------------------------------------


def test_a_2x2_sweep_shows_a_labelled_grid_whose_four_videos_play(
        lab13: JupyterServer, page: Any) -> None:
    nb = open_in(lab13, page, "sweep.ipynb", [
        "%load_ext sora_widgets",
        "%sora a {red|blue} fox {running|sleeping} through snow",
    ])
    nb.command("application:toggle-left-area")
    nb.run_by_keyboard(2)
    out = nb.output(1)
    quote = out.locator(".sora-sweep-quote")
    quote.wait_for(timeout=JOB_DEADLINE_MS)
    assert "4 jobs ({red|blue} × {running|sleeping}): 4 new" in quote.inner_text()
    grid = out.locator(".sora-sweep")
    grid.locator("video.sora-video").nth(3).wait_for(timeout=JOB_DEADLINE_MS)
    assert grid.locator("video.sora-video").count() == 4
    assert grid.locator(".sora-sweep-row").all_inner_texts() == ["red", "blue"]
    assert grid.locator(".sora-sweep-col").all_inner_texts() == ["running", "sleeping"]
    cells = grid.locator(".sora-sweep-cell")
    expected = ["a red fox running through snow", "a red fox sleeping through snow",
                "a blue fox running through snow", "a blue fox sleeping through snow"]
    for i, prompt in enumerate(expected):
        assert prompt in cells.nth(i).inner_text()
    for i in range(4):
        video = cells.nth(i).locator("video.sora-video")
        poster = video.get_attribute("poster") or ""
        assert poster.startswith("data:image/jpeg;base64,"), poster[:40]
        info = play_video(page, video.element_handle())
        assert_served_by_jupyter(info, lab13)
        assert info["videoWidth"] > info["videoHeight"] > 0, info
    page.evaluate("() => document.querySelectorAll('video.sora-video').forEach(v => {"
                  " v.pause(); v.currentTime = 4; })")
    page.wait_for_function("() => [...document.querySelectorAll('video.sora-video')]"
                           ".every(v => !v.seeking && v.readyState >= 2)")
    assert nb.errors_in_outputs() == []
    assert page.errors == [], page.errors
    out.scroll_into_view_if_needed()
    snap(page, "sweep-2x2-grid", out)


# -- History in the panel -------------------------------------------------------------------


def _prompt(i: int) -> str:
    special = " with a zebra" if i % 50 == 7 else ""
    return f"history {ANIMALS[i % 4]} number {i}{special}"


def _open_history(nb: Notebook, page: Any) -> tuple[Any, float]:
    """Click "History"; wait for a page of cards with every poster loaded; the time."""
    panel = nb.output(0).locator(PANEL)
    panel.wait_for(timeout=KERNEL_DEADLINE_MS)
    started = time.perf_counter()
    panel.locator("button.sora-history-toggle").click()
    history = panel.locator(".sora-history")
    history.locator(".sora-history-card").nth(11).wait_for(timeout=JOB_DEADLINE_MS)
    page.wait_for_function(
        """() => { const imgs = [...document.querySelectorAll('img.sora-history-poster')];
            return imgs.length >= 12 && imgs.every(i => i.complete && i.naturalWidth > 0); }""",
        timeout=JOB_DEADLINE_MS)
    return panel, time.perf_counter() - started


def test_history_of_200_jobs_pages_posters_searches_stars_and_loads_the_form(
        lab13: JupyterServer, page: Any) -> None:
    # Newer than anything the other tests of this file made (the journal is shared).
    seed_history(lab13.home, 200, prompt=_prompt,
                 ratio=lambda i: "9:16" if i % 4 == 3 else "16:9", start=time.time() + 60)
    cells = ["import sora_widgets as sw\npanel = sw.SoraWidget()\npanel"]
    nb = open_in(lab13, page, "history.ipynb", cells)
    nb.command("application:toggle-left-area")
    nb.run_all()
    panel, seconds = _open_history(nb, page)
    print(f"History of 200 jobs: first page with posters in {seconds:.2f} s")
    history = panel.locator(".sora-history")
    cards = history.locator(".sora-history-card")
    assert cards.count() == 12
    assert page.evaluate("() => document.querySelectorAll('video').length") == 0, (
        "History made players before any was opened")
    first = cards.first.locator(".sora-history-prompt").inner_text()
    assert first == _prompt(199), f"not newest first: {first!r}"
    src = page.evaluate("() => document.querySelector('img.sora-history-poster').currentSrc")
    assert src.startswith(f"{lab13.url}/files/") and "/sora_videos/" in src, src
    history.locator("button.sora-history-next").click()
    history.locator(".sora-history-card", has_text=_prompt(187)).wait_for()
    assert history.locator(".sora-history-summary").inner_text().startswith("13–24")
    history.locator(".sora-history-pager").scroll_into_view_if_needed()
    snap(page, "history-page-2")

    # A search narrows it (debounced typing, answered by the kernel's journal query).
    history.locator("input.sora-history-search").fill("zebra")
    page.wait_for_function(
        """() => { const c = [...document.querySelectorAll('.sora-history-card')];
            return c.length === 4 && c.every(x => x.innerText.includes('zebra')); }""",
        timeout=JOB_DEADLINE_MS)
    zebras = [cards.nth(i).locator(".sora-history-prompt").inner_text() for i in range(4)]
    assert zebras == [_prompt(i) for i in (157, 107, 57, 7)]

    # Star one; open one (a single player appears); load one into the form.
    target = cards.nth(1)
    target.locator("button.sora-history-star").click()
    target.locator("button.sora-history-star.sora-on").wait_for()
    cards.nth(2).locator("button.sora-history-open").click()
    video = cards.nth(2).locator("video.sora-history-video")
    video.wait_for(timeout=JOB_DEADLINE_MS)
    info = play_video(page, video.element_handle())
    assert_served_by_jupyter(info, lab13)
    assert page.evaluate("() => document.querySelectorAll('video').length") == 1
    cards.nth(3).locator("button.sora-history-load").click()
    textarea = prompt_box(panel)
    page.wait_for_function("([t, v]) => t.value === v",
                           arg=[textarea.element_handle(), _prompt(7)])
    # The loaded job's ratio is selected (7 % 4 == 3: portrait).
    panel.locator("button.sora-ratio.sora-on[data-ratio='9:16'][aria-pressed='true']") \
        .wait_for(timeout=10_000)
    assert nb.errors_in_outputs() == [] and page.errors == [], page.errors
    snap(page, "history-search-star-load", panel)

    # The star is in the journal: a restarted kernel and a reloaded page still show it.
    page.evaluate(f"() => {_PANEL}.sessionContext.restartKernel()")
    nb.wait_kernel_idle()
    page.reload()
    nb = Notebook(page, lab13, "history.ipynb").open()
    nb.run_all()
    panel, _ = _open_history(nb, page)
    history = panel.locator(".sora-history")
    history.locator("input.sora-history-starred-only").check()
    page.wait_for_function(
        "() => document.querySelectorAll('.sora-history-card').length === 1",
        timeout=JOB_DEADLINE_MS)
    card = history.locator(".sora-history-card")
    assert card.locator(".sora-history-prompt").inner_text() == _prompt(107)
    assert card.locator("button.sora-history-star.sora-on").count() == 1
    assert page.errors == [], page.errors
    snap(page, "history-starred-after-restart", panel)


# -- compare --------------------------------------------------------------------------------

TIMES_JS = ("() => [...document.querySelectorAll('video.sora-compare-video')]"
            ".map(v => v.currentTime)")


def _in_step(page: Any, samples: int = 5) -> list[float]:
    """The largest gap between the players over a few animation frames."""
    gaps = []
    for _ in range(samples):
        times = page.evaluate(TIMES_JS)
        gaps.append(max(times) - min(times))
        page.evaluate("() => new Promise(r => setTimeout(r, 120))")
    return gaps


def test_compare_keeps_two_players_in_step_after_play_and_after_a_seek(
        lab13: JupyterServer, page: Any) -> None:
    nb = open_in(lab13, page, "compare.ipynb", [
        "import sora_widgets as sw\n"
        "a = sw.generate('a red kite over a grey sea', wait=True)\n"
        "b = sw.generate('a blue kite over a grey sea at dawn', wait=True)\n"
        "b.star()\n"
        "sw.compare(a, b)",
    ])
    nb.command("application:toggle-left-area")
    nb.run_all()
    out = nb.output(0)
    videos = out.locator("video.sora-compare-video")
    videos.nth(1).wait_for(timeout=JOB_DEADLINE_MS)
    page.wait_for_function(
        """() => { const v = [...document.querySelectorAll('video.sora-compare-video')];
            return v.length === 2 && v.every(x => x.readyState >= 2); }""",
        timeout=JOB_DEADLINE_MS)
    for handle in videos.element_handles():
        src = handle.evaluate("v => v.currentSrc")
        assert src.startswith(f"{lab13.url}/files/") and "/sora_videos/" in src, src
    boxes = [v.bounding_box() for v in videos.all()]
    assert boxes[0]["width"] == boxes[1]["width"] and boxes[0]["height"] == boxes[1]["height"]
    # Each caption is its prompt (the second shows what changed: removed words struck).
    captions = out.locator(".sora-compare-prompt").evaluate_all(
        "els => els.map(e => [...e.children].filter(s => !s.classList.contains("
        "'sora-diff-del')).map(s => s.textContent).join(''))")
    assert captions == ["a red kite over a grey sea", "a blue kite over a grey sea at dawn"]
    texts = "els => els.map(e => e.textContent)"
    assert out.locator(".sora-diff-add").evaluate_all(texts) == ["blue ", "at dawn"]
    assert out.locator(".sora-diff-del").evaluate_all(texts) == ["red "]
    assert out.locator(".sora-compare-star.sora-on").count() == 1

    out.locator("button.sora-compare-play").click()
    page.wait_for_function(f"() => ({TIMES_JS})().every(t => t > 1.5)", timeout=30_000)
    gaps = _in_step(page)
    print("gaps after play:", gaps)
    assert max(gaps) < 0.3, gaps
    assert page.evaluate("() => [...document.querySelectorAll('video.sora-compare-video')]"
                         ".every(v => !v.paused)")

    # The user seeks the second player with its own control: the first follows.
    videos.nth(1).evaluate("v => { v.currentTime = 7; }")
    page.wait_for_function(
        f"() => {{ const t = ({TIMES_JS})(); return t.every(x => x > 7.2 && x < 11)"
        " && Math.abs(t[0] - t[1]) < 0.3; }", timeout=30_000)
    gaps = _in_step(page)
    print("gaps after a seek:", gaps)
    assert max(gaps) < 0.3, gaps

    # The shared slider seeks both, and pause pauses both.
    out.locator("button.sora-compare-play").click()
    page.wait_for_function("() => [...document.querySelectorAll('video.sora-compare-video')]"
                           ".every(v => v.paused)", timeout=10_000)
    out.locator("input.sora-compare-seek").evaluate(
        "r => { r.value = '3'; r.dispatchEvent(new Event('input')); }")
    page.wait_for_function(
        f"() => ({TIMES_JS})().every(t => Math.abs(t - 3) < 0.1)", timeout=10_000)
    assert nb.errors_in_outputs() == [] and page.errors == [], page.errors
    out.scroll_into_view_if_needed()
    snap(page, "compare-in-step", out)
