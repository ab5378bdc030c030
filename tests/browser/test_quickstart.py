"""The README's first command: ``notebooks/quickstart.ipynb`` run top to bottom in JupyterLab."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ._harness import JOB_DEADLINE_MS, Notebook, assert_served_by_jupyter, play_video, shot

pytestmark = pytest.mark.browser

QUICKSTART = Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb"


def _code_cell_index(nb: Notebook, start: str) -> int:
    sources = nb.page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.widgets"
        ".map(c => c.model.type === 'code' ? c.model.sharedModel.source : null)")
    return next(i for i, s in enumerate(sources) if s is not None and s.startswith(start))


def test_quickstart_runs_all_in_jupyterlab(lab: Any, page: Any) -> None:
    shutil.copyfile(QUICKSTART, lab.root / "quickstart.ipynb")
    nb = Notebook(page, lab, "quickstart.ipynb").open()
    nb.run_all()
    nb.wait_executed()
    players = {
        "%sora a golden": (16, 9),        # non-blocking: the live view was replaced
        "puppy.wait": (16, 9),            # the Job's own repr
        "%%sora --ratio 9:16": (9, 16),   # the cell form, portrait, with an image URL
    }
    for start, (w, h) in players.items():
        out = nb.output(_code_cell_index(nb, start))
        video = out.locator("video.sora-video")
        video.wait_for(timeout=JOB_DEADLINE_MS)
        info = play_video(page, video.element_handle())
        assert_served_by_jupyter(info, lab)
        assert (info["videoWidth"] > info["videoHeight"]) == (w > h), (start, info)
    panel = nb.output(_code_cell_index(nb, "import sora_widgets as sw")).locator(".sora-widget")
    assert "paper boat" in panel.locator(".sora-prompt-input textarea").input_value()
    assert nb.output(_code_cell_index(nb, "%sora jobs")).locator("table.sora-jobs").count() == 1
    assert nb.errors_in_outputs() == []
    assert page.errors == [], page.errors
    panel.scroll_into_view_if_needed()
    shot(page, "quickstart-panel")
    nb.cells.last.scroll_into_view_if_needed()
    shot(page, "quickstart-bottom")
