"""``sw.compare``: what its widget state carries (relative sources, captions, no key), the
files it publishes, and what its front end may do with strings (text only)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

import sora_widgets as sw
from sora_widgets.core.errors import SoraError
from sora_widgets.emulator import RunningEmulator
from sora_widgets.studio.studio import Studio
from sora_widgets.ui.compare import STATIC, Compare

from .conftest import VIP_KEY


def state_text(widget: Compare) -> str:
    return json.dumps(widget.get_state(), default=str)


def test_compare_publishes_both_takes_and_captions_them_against_the_first(
        relay: RunningEmulator, studio: Studio, home: Path) -> None:
    first = sw.generate("a red fox <b>running</b> in snow", wait=True)
    second = sw.generate("a red fox <b>sleeping</b> in snow", aspect_ratio="9:16", wait=True)
    first.star()
    view = sw.compare(first, second.local_id)      # a Job or an id
    assert isinstance(view, sw.Compare)
    assert [item["id"] for item in view.items] == [first.local_id, second.local_id]
    for item, job in zip(view.items, (first, second), strict=True):
        assert item["src"].startswith("sora_videos/") and item["src"].endswith(".mp4")
        assert item["poster"].startswith("sora_videos/") and item["poster"].endswith(".jpg")
        assert (Path.cwd() / item["src"]).read_bytes() == job.local_path.read_bytes()
        assert (Path.cwd() / item["poster"]).is_file()
        assert item["ratio"] == job.aspect_ratio and item["cost"] == "$0.90"
    assert view.items[0]["caption"] == [["same", "a red fox <b>running</b> in snow"]]
    # Words and punctuation are compared apart: only the word that changed is marked.
    assert view.items[1]["caption"] == [["same", "a red fox <b>"], ["del", " running "],
                                        ["add", "sleeping"], ["same", "</b> in snow"]]
    assert view.starred == {first.local_id: True, second.local_id: False}
    # Equal-size players; mixed ratios share a square box.
    assert view.box == {"width": 360, "height": 360}
    assert sw.compare(first, first).box == {"width": 360, "height": 202}

    state = state_text(view)
    assert VIP_KEY not in state
    assert str(home) not in state, "a path of the data dir reached the browser"


def test_a_star_from_the_front_end_is_saved_at_once(studio: Studio) -> None:
    a = sw.generate("a lighthouse at dusk", wait=True)
    b = sw.generate("a lighthouse at dawn", wait=True)
    view = Compare([a, b])
    view._handle_custom_msg({"action": "star", "id": b.local_id, "on": True}, [])
    assert b.starred and view.starred[b.local_id]
    assert studio.journal().get(b.local_id).starred
    view._handle_custom_msg({"action": "star", "id": "someone-else", "on": True}, [])
    view._handle_custom_msg({"action": "delete-everything", "id": a.local_id}, [])
    assert not a.starred and [j.local_id for j in view.jobs] == [a.local_id, b.local_id]


def test_only_completed_takes_can_be_compared(relay: RunningEmulator, studio: Studio) -> None:
    relay.config.failure_rate = 1.0
    failed = sw.generate("a take that fails")
    with pytest.raises(SoraError):
        failed.wait(30)
    with pytest.raises(SoraError, match="only completed takes"):
        sw.compare(failed)
    with pytest.raises(ValueError, match="at least one"):
        Compare([])


@pytest.mark.parametrize("name", ["common.js", "compare.js", "history.js"])
def test_front_ends_put_strings_in_the_dom_as_text_only(name: str) -> None:
    """No HTML parsing of kernel strings: no innerHTML & co, no eval, no string handlers."""
    source = (STATIC / name).read_text()
    code = re.sub(r"//.*", "", source)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "setAttribute(\"on", "srcdoc", "createContextualFragment"):
        assert sink not in code, f"{name} uses {sink}"
    # Every src/poster an element gets was resolved (and checked) by resolveSrc.
    for assigned in re.findall(r"\.(?:src|poster) = (\w+)", code):
        assert re.search(rf"(?:const|let) (?:\[[^\]]*\b{assigned}\b[^\]]*\]|{assigned}) = "
                         r"(?:await )?(?:Promise\.all\(\[\s*)?resolveSrc", code), assigned


def test_the_front_end_resolves_relative_sources_and_refuses_other_schemes() -> None:
    """common.js under node: what safeSrc lets through, and resolveSrc's use of the
    widget manager's resolveUrl (JupyterLab's: the notebook's /files/ URL)."""
    script = (STATIC / "common.js").read_text() + r"""
const lab = {widget_manager: {resolveUrl: async (u) => "http://lab/files/nb%20dir/" + u}};
const plain = {widget_manager: {}};
const cases = ["sora_videos/a.mp4", "https://cdn.example/v.mp4", "javascript:alert(1)",
  "data:text/html,<b>", "/etc/passwd", "../up.mp4", "a/../../b.mp4", "//evil.example/x",
  "file:///x", "sora_videos/a\n.mp4", "", null, 42];
(async () => {
  const out = {};
  for (const c of cases) out[String(c)] = [safeSrc(c), await resolveSrc(lab, c),
                                           await resolveSrc(plain, c)];
  console.log(JSON.stringify(out));
})();
"""
    run = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["sora_videos/a.mp4"] == ["sora_videos/a.mp4",
                                        "http://lab/files/nb%20dir/sora_videos/a.mp4",
                                        "sora_videos/a.mp4"]
    assert out["https://cdn.example/v.mp4"] == ["https://cdn.example/v.mp4"] * 3
    for bad in ("javascript:alert(1)", "data:text/html,<b>", "/etc/passwd", "../up.mp4",
                "a/../../b.mp4", "//evil.example/x", "file:///x", "sora_videos/a\n.mp4",
                "", "null", "42"):
        assert out[bad] == [None, None, None], (bad, out[bad])


def test_a_still_copy_goes_with_the_widget_for_exports(studio: Studio) -> None:
    a = sw.generate("a <script>alert(1)</script> kite", wait=True)
    b = sw.generate("a <script>alert(1)</script> kite at dusk", wait=True)
    view = sw.compare(a, b)
    data = view._repr_mimebundle_()
    bundle = data[0] if isinstance(data, tuple) else data
    assert "application/vnd.jupyter.widget-view+json" in bundle
    html = bundle["text/html"]
    assert html.count("<video ") == 2 and "<script>" not in html
    assert "&lt;script&gt;" in html and "at dusk</ins>" in html
    for item in view.items:
        assert f"src='{item['src']}'" in html and f"poster='{item['poster']}'" in html
