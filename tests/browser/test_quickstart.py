"""The shipped notebooks run top to bottom in JupyterLab (the README's first command opens
``notebooks/quickstart.ipynb``): every player plays, nothing errors."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ._harness import JOB_DEADLINE_MS, Notebook, assert_served_by_jupyter, play_video, shot
from ._panel import PANEL, prompt_box

pytestmark = pytest.mark.browser

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _code_cell_index(nb: Notebook, start: str) -> int:
    sources = nb.page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.widgets"
        ".map(c => c.model.type === 'code' ? c.model.sharedModel.source : null)")
    return next(i for i, s in enumerate(sources) if s is not None and s.startswith(start))


def test_quickstart_runs_all_in_jupyterlab(lab: Any, page: Any) -> None:
    shutil.copyfile(NOTEBOOKS / "quickstart.ipynb", lab.root / "quickstart.ipynb")
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
    panel = nb.output(_code_cell_index(nb, "import sora_widgets as sw")).locator(PANEL)
    assert "paper boat" in prompt_box(panel).input_value()
    assert nb.output(_code_cell_index(nb, "%sora jobs")).locator("table.sora-jobs").count() == 1
    assert nb.errors_in_outputs() == []
    assert page.errors == [], page.errors
    panel.scroll_into_view_if_needed()
    shot(page, "quickstart-panel")
    nb.cells.last.scroll_into_view_if_needed()
    shot(page, "quickstart-bottom")


def test_prompt_iteration_runs_all_in_jupyterlab(lab: Any, page: Any) -> None:
    shutil.copyfile(NOTEBOOKS / "prompt-iteration.ipynb", lab.root / "prompt-iteration.ipynb")
    nb = Notebook(page, lab, "prompt-iteration.ipynb").open()
    nb.run_all()
    nb.wait_executed()
    variations = nb.output(_code_cell_index(nb, "%sora -n 3")).locator("video.sora-video")
    side_by_side = nb.output(_code_cell_index(nb, "styles = [")).locator("video.sora-video")
    assert variations.count() == 3 and side_by_side.count() == 3
    for players in (variations, side_by_side):    # 3 in one row: no 2 + 1 hole
        boxes = [v.bounding_box() for v in players.all()]
        assert len({round(b["y"]) for b in boxes}) == 1, f"not side by side: {boxes}"
    for cell in ("%sora -n 3", "styles = ["):        # the emulator's words once per output
        # (DOM text: Lab may skip laying out an off-screen cell, leaving innerText empty)
        text = nb.output(_code_cell_index(nb, cell)) \
            .locator(".sora-cost, .sora-grid-head, .sora-grid").all_text_contents()
        assert " ".join(text).count("local emulator — no charge") == 1, (cell, text)
    for video in (variations.first, side_by_side.last):
        assert_served_by_jupyter(play_video(page, video.element_handle()), lab)
    shown = nb.output(_code_cell_index(nb, "best = next(")).locator("video.sora-video")
    shown.wait_for()
    assert_served_by_jupyter(play_video(page, shown.element_handle()), lab)
    assert nb.errors_in_outputs() == []
    assert page.errors == [], page.errors
    variations.first.scroll_into_view_if_needed()
    shot(page, "prompt-iteration-variations")
    side_by_side.first.scroll_into_view_if_needed()
    shot(page, "prompt-iteration-side-by-side")
