"""After the kernel is gone: a saved notebook reopened, and its nbconvert HTML export.

One notebook is run in JupyterLab, saved and its kernel shut down (which stops the
embedded emulator, so every link it handed out is dead). Then the saved output must
still play from the copy next to the notebook: reopened in JupyterLab, and exported
with ``nbconvert --to html`` and opened from disk (``file://``) in Chromium.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nbformat
import pytest

from ._harness import (
    JOB_DEADLINE_MS,
    VIDEO_SRC,
    JupyterServer,
    Notebook,
    assert_served_by_jupyter,
    offline_export,
    play_video,
    shot,
)

pytestmark = pytest.mark.browser

NAME = "saved-kite.ipynb"


@dataclass
class Saved:
    path: Path
    src: str            # the relative src of the saved <video>
    relay_link: str     # the emulator's link, dead now


def _emulator_is_gone(link: str) -> bool:
    try:
        with urllib.request.urlopen(link, timeout=5):
            return False
    except (urllib.error.URLError, OSError):
        return True


@pytest.fixture(scope="module")
def saved(browser: Any, lab: JupyterServer, artifacts: Path) -> Iterator[Saved]:
    """Run %sora in Lab, save, shut the kernel down; the notebook file stays in the root."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        lab.write_notebook(NAME, [
            "%load_ext sora_widgets",
            "%sora a red kite over green hills on a windy day -o kite",
            "kite.wait(timeout=60)\nrelay_link = kite.video_url",
        ])
        nb = Notebook(page, lab, NAME).open()
        nb.run_all()
        nb.output(1).locator("video.sora-video").wait_for(timeout=JOB_DEADLINE_MS)
        nb.wait_executed()
        link = nb.page.evaluate("""async () => {
            const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
            const reply = await kernel.requestExecute(
                {code: '', silent: true, user_expressions: {link: 'relay_link'}}).done;
            return reply.content.user_expressions.link.data['text/plain'];
        }""").strip("'\"")
        assert link.startswith("http://127.0.0.1:"), link
        nb.save()
        nb.shutdown_kernel()
        assert _emulator_is_gone(link), f"the emulator still serves {link}"
        shot(page, "saved-before-reopen")
    finally:
        context.close()
        lab.shutdown_kernels()

    path = lab.root / NAME
    stored = nbformat.read(path, as_version=4)
    outputs = stored.cells[1].outputs
    mimes = [sorted(o.get("data", {})) for o in outputs]
    assert all("application/vnd.jupyter.widget-view+json" not in m for m in mimes), \
        f"the saved %sora cell still holds the live widget: {mimes}"
    pages = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert len(pages) == 1, f"expected one HTML output in the saved cell, got {mimes}"
    assert "127.0.0.1" not in pages[0], "the saved output points at the emulator"
    (src,) = VIDEO_SRC.findall(pages[0])
    assert src.startswith("sora_videos/") and (lab.root / src).is_file(), src
    yield Saved(path, src, link)


def test_reopened_notebook_plays_saved_video(saved: Saved, lab: JupyterServer,
                                             page: Any) -> None:
    nb = Notebook(page, lab, NAME).open()
    video = nb.output(1).locator("video.sora-video")
    video.wait_for()
    info = play_video(page, video.element_handle())
    assert_served_by_jupyter(info, lab)
    assert urlsplit(info["currentSrc"]).path == f"/files/{saved.src}", info
    assert info["videoWidth"] > 0, info
    assert "a red kite over green hills" in nb.output(1).inner_text()
    shot(page, "saved-reopened")


def test_nbconvert_html_export_plays_from_disk(saved: Saved, browser: Any) -> None:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_filename(str(saved.path))
    with offline_export(browser, saved.path, body) as (page, export):
        video = page.locator("video.sora-video")
        video.wait_for()
        info = play_video(page, video.element_handle())
        assert info["currentSrc"] == (export.parent / saved.src).as_uri(), info
        assert info["videoWidth"] > 0, info
        assert page.locator("text=a red kite over green hills").count() >= 1
        shot(page, "nbconvert-export")
