"""The ``%sora`` flow in Notebook 7 (``jupyter notebook``, its own server and frontend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ._harness import (
    JOB_DEADLINE_MS,
    NOTEBOOK7_OWN_ERRORS,
    JupyterServer,
    Notebook,
    assert_served_by_jupyter,
    play_video,
    shot,
)

pytestmark = pytest.mark.browser


def test_sora_magic_in_notebook7(notebook7: JupyterServer, page: Any, artifacts: Path) -> None:
    notebook7.write_notebook("nb7-sora.ipynb", [
        "%load_ext sora_widgets",
        "%sora --ratio 9:16 a hummingbird hovering at a red flower, portrait close-up",
    ])
    nb = Notebook(page, notebook7, "nb7-sora.ipynb").open()
    assert "/notebooks/nb7-sora.ipynb" in page.url
    assert page.locator("#jp-NotebookPanel, .jp-NotebookPanel").count() >= 1
    nb.run_by_keyboard(2)
    out = nb.output(1)
    out.locator(".widget-hprogress").wait_for(timeout=JOB_DEADLINE_MS)
    video = out.locator("video.sora-video")
    video.wait_for(timeout=JOB_DEADLINE_MS)
    info = play_video(page, video.element_handle())
    assert info["videoHeight"] > info["videoWidth"] > 0, info
    assert_served_by_jupyter(info, notebook7)
    assert "local emulator — no charge" in out.inner_text()
    assert nb.errors_in_outputs() == []
    ours = [e for e in page.errors if e not in NOTEBOOK7_OWN_ERRORS]
    assert ours == [], page.errors
    shot(page, "notebook7-video")
