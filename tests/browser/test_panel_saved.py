"""The panel after its kernel is gone: a saved notebook reopened, and its HTML export.

A panel makes two videos (16:9 and 9:16, clicked through as a user does) against a relay
(an emulator started *inside* the kernel, with a key), the notebook is saved and the
kernel shut down, which also stops that relay: every link it handed out is dead. The
panel's live view cannot come back (its widget models died with the kernel); its static
snapshot — written beside the live view and replaced as cards settle — must: reopened in
JupyterLab, both videos play from the copies next to the notebook, and so they do in an
``nbconvert --to html`` export opened from disk. The key is nowhere in the file.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from ._panel import PANEL, click_generate, fill_form

pytestmark = pytest.mark.browser

NAME = "saved-panel.ipynb"
KEY = "sk-vip-PANEL-SNAPSHOT-SENTINEL-5150"
WIDE = "a lighthouse on a cliff at dusk, waves crashing below"
TALL = "a tall waterfall in a misty jungle, slow upward pan"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@dataclass
class Saved:
    path: Path
    srcs: list[str]          # the snapshot's relative video srcs
    relay: str               # the in-kernel relay's base URL, dead now


def _gone(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return False
    except (urllib.error.URLError, OSError):
        return True


@pytest.fixture(scope="module")
def saved(browser: Any, lab: JupyterServer, artifacts: Path) -> Iterator[Saved]:
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        lab.write_notebook(NAME, [
            "import os\n"
            "from sora_widgets.emulator import EmulatorConfig, start_emulator\n"
            "relay = start_emulator(EmulatorConfig(time_scale=0.02))\n"
            f"os.environ['SORA_API_KEY'] = {KEY!r}\n"
            "os.environ['SORA_BASE_URL'] = relay.base_url\n"
            "os.environ['SORA_POLL_SCALE'] = '0.02'",
            "import sora_widgets as sw\npanel = sw.SoraWidget()\npanel",
        ])
        nb = Notebook(page, lab, NAME).open()
        nb.command("application:toggle-left-area")
        nb.run_all()
        out = nb.output(1)
        panel = out.locator(PANEL)
        panel.wait_for(timeout=JOB_DEADLINE_MS)
        assert "$0.90" in panel.locator("button.sora-generate").inner_text()
        click_generate(page, panel, fill_form(panel, WIDE, "16:9"))
        click_generate(page, panel, fill_form(panel, TALL, "9:16"))
        videos = panel.locator(".sora-take video.sora-take-video")
        page.wait_for_function("n => document.querySelectorAll("
                               "'.sora-panel .sora-take video.sora-take-video').length === n",
                               arg=2, timeout=JOB_DEADLINE_MS)
        for video in videos.element_handles():
            play_video(page, video)
        # The snapshot is in the page, in the panel's own cell, hidden while the panel lives.
        snapshot = out.locator(".sora-snapshot")
        page.wait_for_function("() => document.querySelectorAll("
                               "'.sora-snapshot video').length === 2", timeout=JOB_DEADLINE_MS)
        assert snapshot.count() == 1 and not snapshot.is_visible()
        assert panel.is_visible()
        assert not out.locator(".sora-restart").is_visible()
        assert nb.errors_in_outputs() == []
        shot(page, "panel-saved-live")
        relay_url = page.evaluate("""async () => {
            const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
            const reply = await kernel.requestExecute(
                {code: '', silent: true, user_expressions: {url: 'relay.base_url'}}).done;
            return reply.content.user_expressions.url.data['text/plain'];
        }""").strip("'\"")
        assert relay_url.startswith("http://127.0.0.1:"), relay_url
        nb.save()
        nb.shutdown_kernel()
        assert _gone(relay_url + "/v1/videos/x"), f"the relay still answers at {relay_url}"
    finally:
        context.close()
        lab.shutdown_kernels()
    assert errors == [], errors

    path = lab.root / NAME
    stored = nbformat.read(path, as_version=4)
    saved_outputs = json.dumps([c.get("outputs", []) for c in stored.cells])
    saved_outputs += json.dumps(stored.metadata)
    assert KEY not in saved_outputs and KEY[:16] not in saved_outputs, \
        "the API key is in the saved outputs"
    outputs = stored.cells[1].outputs
    assert len(outputs) == 2, [sorted(o.get("data", {})) for o in outputs]
    view, snap = (o["data"] for o in outputs)
    assert WIDGET_VIEW in view and "SoraWidget(children" not in view["text/plain"]
    html = snap["text/html"]
    srcs = VIDEO_SRC.findall(html)
    assert len(srcs) == 2 and all(s.startswith("sora_videos/") for s in srcs), srcs
    assert all((lab.root / s).is_file() for s in srcs)
    assert WIDE in html and TALL in html and "127.0.0.1" not in html
    yield Saved(path, srcs, relay_url)


def test_reopened_panel_shows_its_videos_playing(saved: Saved, lab: JupyterServer,
                                                 page: Any) -> None:
    nb = Notebook(page, lab, NAME).open()
    out = nb.output(1)
    snapshot = out.locator(".sora-snapshot")
    snapshot.wait_for(state="visible")
    videos = snapshot.locator("video.sora-video")
    assert videos.count() == 2
    shapes = []
    for video in videos.element_handles():
        info = play_video(page, video)
        assert_served_by_jupyter(info, lab)
        assert info["readyState"] >= 2 and info["videoWidth"] > 0, info
        shapes.append(info["videoWidth"] > info["videoHeight"])
    assert sorted(shapes) == [False, True], "expected one landscape and one portrait video"
    # Wait for JupyterLab's widget manager to give up on the panel's model (its words go
    # into the first output), then look at what the user sees.
    widget_out = out.locator(".jp-OutputArea-output").first
    page.wait_for_function("e => e.textContent.includes('Error displaying widget')",
                           arg=widget_out.element_handle(), timeout=60_000)
    assert not widget_out.is_visible()
    text = out.inner_text()
    assert WIDE in text and TALL in text
    assert "2 finished jobs" in text
    # The widget's own line ("Error displaying widget: model not found") is hidden by the
    # snapshot's CSS (a trusted notebook: the user saved it) or replaced by its blank HTML
    # fallback (untrusted): either way the user does not see it.
    trusted = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets"
                            ".map(c => c.model.trusted)")
    assert "Error displaying widget" not in text, (
        f"{text}\ncells trusted: {trusted}\n{out.evaluate('e => e.outerHTML')[:6000]}")
    assert "SoraWidget(children" not in text
    snapshot.scroll_into_view_if_needed()
    shot(page, "panel-reopened")


def test_panel_export_plays_its_videos_from_disk(saved: Saved, browser: Any) -> None:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_filename(str(saved.path))
    assert "SoraWidget(children" not in body
    outputs_only, _ = HTMLExporter(exclude_input=True).from_filename(str(saved.path))
    assert KEY not in outputs_only and "<video" in outputs_only
    with offline_export(browser, saved.path, body, height=1000) as (page, export):
        videos = page.locator(".sora-snapshot video.sora-video")
        videos.first.wait_for()
        assert videos.count() == 2
        for video, src in zip(videos.element_handles(), saved.srcs, strict=True):
            info = play_video(page, video)
            assert info["currentSrc"] == (export.parent / src).as_uri(), info
            assert info["videoWidth"] > 0, info
        assert page.locator(f"text={WIDE}").count() >= 1
        page.locator(".sora-snapshot").scroll_into_view_if_needed()
        shot(page, "panel-export")
