"""The magic in a real kernel: a headless notebook run, its HTML export, and cell routing.

Each test starts the venv's ``python3`` kernel in a temporary notebook directory, with
no API key (the embedded emulator answers) and a private SORA_WIDGETS_HOME.
"""

from __future__ import annotations

import html
import re
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.manager import start_new_kernel
from nbclient import NotebookClient
from nbconvert import HTMLExporter

pytestmark = pytest.mark.slow   # whole notebooks run headless in a kernel

FAST = "0.003"
VIDEO_SRC = re.compile(r"<video[^>]*\ssrc=['\"]([^'\"]+)['\"]")


@pytest.fixture
def notebook_dir(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The kernel's environment: the `home` fixture's (no key, private home), faster jobs."""
    monkeypatch.setenv("SORA_EMULATOR_TIME_SCALE", FAST)
    path = home.parent / "notebooks"
    path.mkdir()
    return path


def _html_outputs(cell: Any) -> list[str]:
    return [out["data"]["text/html"] for out in cell.get("outputs", [])
            if "text/html" in out.get("data", {})]


def test_headless_notebook_keeps_playable_videos_in_run_and_export(notebook_dir: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext sora_widgets"),
        nbformat.v4.new_code_cell("%sora --wait a red panda eating bamboo <b>yum</b>"),
        nbformat.v4.new_code_cell("%%sora --wait --ratio 9:16\na tall waterfall\nin the jungle"),
    ]
    NotebookClient(nb, kernel_name="python3", timeout=120,
                   resources={"metadata": {"path": str(notebook_dir)}}).execute()
    sources = []
    for cell, portrait in ((nb.cells[1], False), (nb.cells[2], True)):
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        assert not errors, errors
        # The live widget was replaced in place by plain HTML: nothing else is left.
        assert all("application/vnd.jupyter.widget-view+json" not in o.get("data", {})
                   for o in cell.outputs)
        (page,) = _html_outputs(cell)
        assert "local emulator — no charge" in page
        assert ("width='270' height='480'" in page) is portrait
        (src,) = VIDEO_SRC.findall(page)
        assert src.startswith("sora_videos/") and (notebook_dir / src).stat().st_size > 10_000
        sources.append(src)
    assert "&lt;b&gt;yum&lt;/b&gt;" in _html_outputs(nb.cells[1])[0]

    nbformat.write(nb, notebook_dir / "demo.ipynb")
    body, _ = HTMLExporter().from_notebook_node(nb)
    exported = notebook_dir / "demo.html"
    exported.write_text(body, encoding="utf-8")
    found = [html.unescape(s) for s in VIDEO_SRC.findall(body)]
    assert found == sources
    for src in found:
        assert (exported.parent / src).is_file()
    assert "<b>yum</b>" not in body


def _until_idle(client: Any, msg_id: str, seen: list[dict[str, Any]]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        msg = client.get_iopub_msg(timeout=60)
        seen.append(msg)
        if (msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"
                and msg["parent_header"].get("msg_id") == msg_id):
            return
    raise AssertionError("the cell did not finish")


def _slot(seen: list[dict[str, Any]], cell: str) -> str:
    """The display id of the live slot a cell displayed."""
    msg = next(m for m in seen if m["msg_type"] == "display_data"
               and m["parent_header"].get("msg_id") == cell
               and "display_id" in m["content"].get("transient", {}))
    assert "application/vnd.jupyter.widget-view+json" in msg["content"]["data"]
    return str(msg["content"]["transient"]["display_id"])


def test_background_result_lands_in_the_cell_that_shows_it(notebook_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """JupyterLab routes an output by its parent header: each update carries its slot's cell.

    Cell B re-shows cell A's running job, so the poller's coroutine (whose context came
    from A) must borrow B's parent for B's slot: without it, B's update would go to A.
    """
    monkeypatch.setenv("SORA_EMULATOR_TIME_SCALE", "0.01")  # still running when B shows it
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(notebook_dir))
    try:
        seen: list[dict[str, Any]] = []
        _until_idle(kc, kc.execute("%load_ext sora_widgets"), seen)
        cell_a = kc.execute("%sora -o job a heron at dawn")
        _until_idle(kc, cell_a, seen)
        # {name} only: the magic never evaluates an expression such as {job.local_id}.
        _until_idle(kc, kc.execute("jid = job.local_id"), seen)
        cell_b = kc.execute("%sora show {jid}")
        _until_idle(kc, cell_b, seen)
        slots = {_slot(seen, cell_a): cell_a, _slot(seen, cell_b): cell_b}
        cell_c = kc.execute("job.wait(60); print('waited')")
        _until_idle(kc, cell_c, seen)

        def updates() -> list[dict[str, Any]]:
            return [m for m in seen if m["msg_type"] == "update_display_data"
                    and m["content"]["transient"]["display_id"] in slots]

        deadline = time.monotonic() + 30     # sent by the events thread: maybe after C
        while len(updates()) < 2 and time.monotonic() < deadline:
            seen.append(kc.get_iopub_msg(timeout=30))
        assert len(updates()) == 2
        # C's wait() showed the job's progress in C itself, then one line in its place.
        waited = [m for m in seen if m["msg_type"] == "update_display_data"
                  and m["content"]["transient"]["display_id"] not in slots]
        assert waited and all(m["parent_header"]["msg_id"] == cell_c for m in waited)
        assert "waited" in waited[-1]["content"]["data"]["text/plain"]
        for update in updates():
            owner = slots[update["content"]["transient"]["display_id"]]
            assert update["parent_header"]["msg_id"] == owner  # not C, which was running
            (src,) = VIDEO_SRC.findall(update["content"]["data"]["text/html"])
            assert (notebook_dir / src).is_file()
        streams = [m for m in seen if m["msg_type"] == "stream"]
        assert streams and all(m["parent_header"]["msg_id"] == cell_c for m in streams)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
