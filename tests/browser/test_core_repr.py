"""The core alone in JupyterLab: a ``Job``'s ``_repr_html_`` plays its video."""

from __future__ import annotations

from typing import Any

import pytest

from ._harness import JOB_DEADLINE_MS, assert_served_by_jupyter, files_path, play_video, shot

pytestmark = pytest.mark.browser


def test_job_repr_plays_in_jupyterlab(open_notebook: Any, lab: Any, page: Any) -> None:
    # In a sub-folder whose name needs quoting: the relative src must resolve beside it.
    nb = open_notebook("projects/my demo/core-repr.ipynb", [
        "import sora_widgets as sw\n"
        "job = sw.generate('a paper boat drifting down a rainy street, macro lens')\n"
        "job.wait(timeout=60)\n"
        "job",
    ])
    nb.run_all()
    video = nb.output(0).locator("video.sora-video")
    video.wait_for(timeout=JOB_DEADLINE_MS)
    info = play_video(page, video.element_handle())
    assert info["videoWidth"] > info["videoHeight"] > 0, info
    assert_served_by_jupyter(info, lab)
    assert files_path(info).startswith("/files/projects/my demo/sora_videos/"), info
    assert (lab.root / files_path(info).removeprefix("/files/")).is_file()
    text = nb.output(0).inner_text()
    assert "local emulator — no charge" in text, text
    assert nb.errors_in_outputs() == []
    shot(page, "core-repr")


def test_harness_sees_error_outputs(open_notebook: Any) -> None:
    """The `errors_in_outputs() == []` checks of the other tests are not vacuous."""
    nb = open_notebook("harness-errors.ipynb", [
        "import sys\nprint('to stderr', file=sys.stderr)",
        "1 / 0",
    ])
    nb.run_all()
    # JupyterLab renders tracebacks with the stderr mime type.
    nb.output(1).locator("[data-mime-type='application/vnd.jupyter.stderr']").wait_for()
    errors = nb.errors_in_outputs()
    assert len(errors) == 2 and "ZeroDivisionError" in errors[1], errors
