"""The shipped notebooks run top to bottom, headless, with no key (the embedded emulator).

Each is executed with nbclient in a temporary copy of ``notebooks/`` (the kernel's working
directory, where ``sora_videos/`` is written) with a private SORA_WIDGETS_HOME, and must
finish without an error output and with at least one playable ``<video>`` whose file
exists. ``prompt-iteration`` is run a second time in a fresh kernel, as a user does after
a restart: it must be answered entirely from the journal (not one new job).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow   # whole notebooks run headless in a kernel

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
VIDEO_SRC = re.compile(r"<video[^>]*\ssrc=['\"]([^'\"]+)['\"]")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of notebooks/ and the kernel's environment: no key, a private home, fast jobs."""
    for name in ("SORA_API_KEY", "SORA_BASE_URL", "SORA_BUDGET_USD", "SORA_MODEL",
                 "SORA_PRICE_USD", "SORA_POLL_SCALE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SORA_WIDGETS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SORA_EMULATOR_TIME_SCALE", "0.01")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    work = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, work)
    yield work


def _execute(path: Path) -> Any:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=180, allow_errors=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def _errors(nb: Any) -> list[str]:
    found = []
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"cell {index}: {out.get('ename')}: {out.get('evalue')}")
            elif out.get("output_type") == "stream" and out.get("name") == "stderr":
                found.append(f"cell {index} stderr: {out.get('text')}")
    return found


def _video_sources(nb: Any) -> list[str]:
    return [src for cell in nb.cells for out in cell.get("outputs", [])
            for src in VIDEO_SRC.findall(out.get("data", {}).get("text/html", ""))]


def _cell(nb: Any, start: str) -> Any:
    return next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(start))


def _journal_size(home: Path) -> int:
    from sora_widgets.journal import SqliteJournal as Journal

    journal = Journal(home / "journal.sqlite3")
    try:
        return len(journal.history())
    finally:
        journal.close()


def _check(nb: Any, workdir: Path) -> list[str]:
    assert _errors(nb) == []
    sources = _video_sources(nb)
    assert sources, "no <video> in any output"
    for src in sources:
        assert src.startswith("sora_videos/"), src
        assert (workdir / src).stat().st_size > 10_000, src
    html = "".join(out.get("data", {}).get("text/html", "")
                   for cell in nb.cells for out in cell.get("outputs", []))
    assert "local emulator — no charge" in html
    return sources


def test_quickstart_runs_headless(workdir: Path) -> None:
    nb = _execute(workdir / "quickstart.ipynb")
    sources = _check(nb, workdir)
    portrait = [o["data"]["text/html"] for o in _cell(nb, "%%sora --ratio 9:16").outputs
                if "text/html" in o.get("data", {})]
    assert portrait and "width='270' height='480'" in portrait[0], \
        "the %%sora --ratio 9:16 cell shows no portrait player"
    # The cached re-run of the first prompt plays the same video as the first job.
    assert len(set(sources)) < len(sources), sources


def test_prompt_iteration_runs_headless_and_again_from_the_journal(workdir: Path) -> None:
    nb = _execute(workdir / "prompt-iteration.ipynb")
    _check(nb, workdir)
    grid = "".join(o["data"].get("text/html", "") for o in _cell(nb, "%sora -n 3").outputs
                   if "data" in o)
    assert len(VIDEO_SRC.findall(grid)) == 3, "-n 3 did not show three players"
    made = _journal_size(Path(workdir.parent / "home"))
    assert made == 3 + 3, f"{made} jobs: -n 3 plus 3 styles, one of them cached, expected 6"

    again = _execute(workdir / "prompt-iteration.ipynb")     # a fresh kernel: a restart
    _check(again, workdir)
    assert _journal_size(Path(workdir.parent / "home")) == made, \
        "re-running the notebook after a restart submitted new jobs"
