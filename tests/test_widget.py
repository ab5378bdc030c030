"""SoraWidget against the real emulator: no browser, no mocks of the core.

The panel is one anywidget: clicks are its Python API (``generate()``, ``confirm()``,
``press(action, job)``), or — where a test is about the browser's message path — the
messages ``static/panel.js`` sends, through the widget's own handler. What the browser
draws is the traits (``takes``, ``queue``, the form's labels); waits use
``job.wait(timeout=...)`` or a condition polled against a deadline.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets
import pytest

import sora_widgets as sw
from sora_widgets.core.settings import preferences
from sora_widgets.emulator import RunningEmulator
from sora_widgets.engine.job import Job, poller
from sora_widgets.studio import studio as studio_module
from sora_widgets.ui.history import HistoryState
from sora_widgets.ui.panel import media as media_module
from sora_widgets.ui.panel.labels import EARLIER_LABEL, RUNNING_LABEL
from sora_widgets.ui.widget import JobCard, SoraWidget

from .doubles import wait_until
from .history_seed import seed_history

MakePanel = Callable[..., SoraWidget]
Sent = list[tuple[dict[str, Any], list[bytes]]]


@pytest.fixture
def make_panel(studio: studio_module.Studio) -> Iterator[MakePanel]:
    """Build panels; close them (ticker, observers, comms) after the test."""
    made: list[SoraWidget] = []

    def make(*args: Any, **kwargs: Any) -> SoraWidget:
        panel = SoraWidget(*args, **kwargs)
        made.append(panel)
        return panel

    yield make
    for panel in made:
        panel.close()


def finish(card: JobCard, timeout: float = 30.0) -> JobCard:
    """Wait for the job, then for the card to show its video (set by the poller thread)."""
    card.job.wait(timeout=timeout)
    wait_until(lambda: bool(card.item.get("src")))
    return card


def card_text(card: JobCard) -> str:
    return json.dumps(card.item)


def message(panel: SoraWidget, **content: Any) -> None:
    """What panel.js sends (``model.send``), through the widget's own handler."""
    panel._on_msg(panel, content, [])


def capture_sends(panel: SoraWidget, monkeypatch: pytest.MonkeyPatch) -> Sent:
    """Every message the kernel sends the panel's front end (content, buffers)."""
    sent: Sent = []
    original = panel.send

    def send(content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
        sent.append((content, [bytes(b) for b in buffers or []]))
        original(content, buffers)

    monkeypatch.setattr(panel, "send", send)
    return sent


def test_generate_shows_a_card_that_completes_with_a_playable_video(
        make_panel: MakePanel) -> None:
    panel = make_panel()
    assert isinstance(panel, anywidget.AnyWidget)
    assert "your prompt" in panel._esm                 # the prompt box's placeholder
    assert panel.generate_label == "Generate · free (emulator)"
    panel.prompt = "a lighthouse at dusk"
    panel.aspect_ratio = "9:16"
    assert not panel.generate_disabled

    setters: list[str] = []
    panel.observe(lambda _c: setters.append(threading.current_thread().name),
                  ["live_takes", "settled_takes"])
    panel.generate()
    assert len(panel.cards) == 1 and panel.takes == [panel.cards[0].item]
    card = panel.cards[0]
    finish(card)

    src = card.item["src"]
    assert src == card.src and not src.startswith("/") and "://" not in src
    assert (Path.cwd() / src).is_file()
    assert card.item["ratio"] == "9:16"                          # a portrait player
    assert card.item["poster"] and (Path.cwd() / card.item["poster"]).is_file()
    assert (card.item["progress"], card.item["tone"]) == (100, "success")
    assert card.item["status"] == "completed" and "completed" in card.item["phase"]
    assert card.job.id is not None and card.item["task"] == card.job.id
    assert panel.takes[0] == card.item                           # what the browser draws
    # Said once per panel (the spend line), not on every card.
    assert "local emulator" not in card_text(card)
    assert "local emulator — no charge" in panel.spend
    assert panel.jobs == [card.job]
    assert setters and setters[-1] == "sora-widgets-events"   # the engine's events thread
    assert not card.item["reused"]                            # no "regenerate anyway"


def test_several_jobs_run_at_once_newest_first(make_panel: MakePanel) -> None:
    panel = make_panel()
    for prompt in ("a red kite", "a blue kite", "a green kite"):
        panel.prompt = prompt
        panel.generate()
    assert [job.prompt for job in panel.jobs] == ["a green kite", "a blue kite", "a red kite"]
    assert [t["prompt"] for t in panel.takes] == ["a green kite", "a blue kite", "a red kite"]
    assert sum(not job.done for job in panel.jobs) >= 2        # all submitted, none awaited
    for card in panel.cards:
        finish(card)
    assert all(card.item["tone"] == "success" for card in panel.cards)


def test_invalid_inputs_disable_generate_with_the_reason(make_panel: MakePanel) -> None:
    panel = make_panel()
    assert panel.generate_disabled
    assert panel.reason == ""          # guidance, not a red error, before any input
    assert "Describe" in panel.generate_tooltip

    panel.image = "not a url"
    assert panel.generate_disabled
    assert "image" in panel.reason and "http" in panel.reason
    assert panel.reason_tone == "error"
    assert panel.image_preview == ""
    panel.image = ""
    assert panel.reason == ""              # emptied again: guidance, not an error
    panel.image = "not a url"

    panel.prompt = "a cat"
    assert panel.generate_disabled                        # the image is still bad
    panel.image = "javascript:alert(1)"
    assert panel.generate_disabled and panel.image_preview == ""

    panel.generate()                                      # a click that slips through
    assert panel.cards == []

    url = "https://example.com/cat.png?a='><script>x</script>"
    panel.image = url
    assert not panel.generate_disabled and panel.reason == ""
    # The thumbnail is the URL itself: panel.js sets it as an <img>'s src property
    # (never markup), and only an http(s) URL gets there.
    assert panel.image_preview == url


def test_double_click_submits_once(relay: RunningEmulator, make_panel: MakePanel) -> None:
    panel = make_panel(prompt="a paper boat in the rain")
    assert panel.generate_label == "Generate · $0.90"
    panel.generate()
    panel.generate()
    assert len(panel.cards) == 1
    assert "already running" in panel.reason and panel.reason_tone == "info"
    finish(panel.cards[0])
    assert relay.stats()["posts"] == 1
    assert "$0.90" in panel.spend


def test_cached_result_offers_regenerate_anyway(relay: RunningEmulator,
                                                make_panel: MakePanel) -> None:
    panel = make_panel(prompt="a clock melting", aspect_ratio="9:16")
    panel.generate()
    first = finish(panel.cards[0])
    assert relay.stats()["posts"] == 1

    panel.generate()                                             # identical, finished: cache
    assert panel.cards == [first] and first.cached
    assert relay.stats()["posts"] == 1
    assert first.item["reused"]                                  # "regenerate anyway" shown
    assert first.item["regenerate_label"] == "regenerate anyway · $0.90"
    assert first.item["reused_words"] == "reused — no new charge"
    assert "reused — no new charge" in panel.reason

    other = make_panel(prompt="a clock melting", aspect_ratio="9:16")   # e.g. after a restart
    other.generate()
    assert other.jobs == [first.job] and other.cards[0].cached
    assert other.cards[0].item["src"]

    panel.press("regenerate", first.job)
    panel.press("regenerate", first.job)                         # the button is gone now
    assert len(panel.cards) == 2 and panel.cards[1] is first
    fresh = finish(panel.cards[0])
    assert fresh.job is not first.job and not fresh.cached
    assert not first.item["reused"] and not fresh.item["reused"]
    assert relay.stats()["posts"] == 2


def test_reuse_prompt_loads_the_card_into_the_form(make_panel: MakePanel) -> None:
    panel = make_panel(prompt="a fox in snow", aspect_ratio="9:16",
                       image="https://example.com/fox.png")
    assert panel.prompt == "a fox in snow"
    assert panel.image_preview == "https://example.com/fox.png"
    panel.generate()
    card = panel.cards[0]
    assert card.item["image"] == "https://example.com/fox.png"   # the card shows its image
    panel.prompt = "something else"
    panel.aspect_ratio = "16:9"
    panel.image = ""

    panel.press("reuse", card.job)
    assert panel.prompt == "a fox in snow"
    assert panel.aspect_ratio == "9:16"
    assert panel.image == "https://example.com/fox.png"
    finish(card)


def test_from_job_links_a_panel_to_a_past_job_after_a_restart(
        studio: studio_module.Studio, make_panel: MakePanel,
        monkeypatch: pytest.MonkeyPatch) -> None:
    job = sw.generate("a train crossing a bridge", aspect_ratio="9:16")
    wait_until(lambda: job.id is not None)
    poller().stop()                                   # the kernel dies while the job runs
    restarted = studio_module.Studio()
    monkeypatch.setattr(studio_module, "_default", restarted)
    try:
        past = sw.jobs()[0]
        assert past is not job and past.id == job.id
        panel = SoraWidget.from_job(past)
        try:
            assert panel.jobs == [past]
            assert panel.prompt == "a train crossing a bridge"
            assert panel.aspect_ratio == "9:16"
            card = finish(panel.cards[0])
            assert (Path.cwd() / card.item["src"]).is_file()
            by_id = make_panel(jobs=[str(past.id)])
            assert by_id.jobs == [past] and by_id.cards[0].item["src"]
        finally:
            panel.close()
    finally:
        restarted.close()


def test_non_vip_key_shows_the_vip_message(relay: RunningEmulator, make_panel: MakePanel,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_API_KEY", "nonvip-ordinary-key-123")
    panel = make_panel(prompt="a dragon")
    panel.generate()
    card = panel.cards[0]
    with pytest.raises(sw.PermissionDeniedError):
        card.job.wait(timeout=30)
    wait_until(lambda: card.item["tone"] == "danger")
    assert "VIP group" in card.item["error_title"] + card.item["error"]
    assert card.item["error_title"]                     # drawn as the error box
    assert card.item["src"] == "" and card.item["poster"] == ""
    assert "nonvip-ordinary-key-123" not in card_text(card)


def test_prompt_markup_is_text_in_the_card_and_escaped_in_the_snapshot(
        make_panel: MakePanel) -> None:
    payload = "<script>window.pwned=1</script><img src=x onerror=alert(1)>"
    panel = make_panel(prompt=payload)
    panel.generate()
    card = finish(panel.cards[0])
    # The item carries the prompt as plain text; panel.js (with History's and Compare's
    # front ends in the same module) never parses a string as markup.
    assert card.item["prompt"] == payload
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write",
                         panel._esm)
    html = panel.snapshot_html()                       # the saved notebook's HTML
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html


def _all_state_text(panel: SoraWidget) -> str:
    state = panel.get_state()
    manager = ipywidgets.Widget.get_manager_state(drop_defaults=False)
    items = [card.item for card in panel.cards]
    return json.dumps([manager, state, items], default=str) + repr(panel) + \
        panel.snapshot_html()


def test_widget_state_never_contains_the_api_key(relay: RunningEmulator, make_panel: MakePanel,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-vip-SENTINEL-q7Zx-9wKj-LEAKCHECK"
    monkeypatch.setenv("SORA_API_KEY", key)
    panel = make_panel(prompt="a lantern on a lake")
    panel.generate()
    job: Job = finish(panel.cards[0]).job
    assert job.status == "completed"
    assert panel.history.open() is not None            # History's state too
    wait_until(lambda: any(c["id"] == job.local_id
                           for c in panel.history_view.get("cards", [])))
    blob = _all_state_text(panel)
    assert "a lantern on a lake" in blob and str(job.id) in blob    # the state is all there
    pieces = {key[i:i + 8] for i in range(len(key) - 7)}
    assert not [piece for piece in pieces if piece in blob]
    # Trait by trait, as the browser gets them.
    for name, value in panel.get_state().items():
        text = json.dumps(value, default=str)
        assert not [piece for piece in pieces if piece in text], name


# -- the first hour (issue 12) ------------------------------------------------------------------


def test_an_empty_panel_shows_no_red_text(make_panel: MakePanel) -> None:
    panel = make_panel()
    # Nothing in the error line; the guidance is the muted hint, not an error.
    assert panel.reason == "" and panel.generate_disabled and panel.hint
    assert panel.confirm_label == "" and panel.takes == [] and panel.queue == []
    panel.prompt = "   "                 # whitespace is still "nothing yet"
    assert panel.reason == "" and panel.hint


def test_a_dead_kernel_turns_the_panel_into_the_restart_message(make_panel: MakePanel) -> None:
    panel = make_panel()
    assert {"sora-live", f"sora-live-{panel.uid}"} <= set(panel._dom_classes)
    assert panel.uid and panel.uid == panel._uid
    # panel.js draws the restart line in the .sora-live root; the CSS that shows it once
    # the host marks the views disconnected ships with the panel.
    assert "kernel restarted" in panel._esm and "sora-restart" in panel._esm
    assert re.search(r"\.jupyter-widgets-disconnected \.sora-restart\s*\{\s*display: block",
                     panel._css)


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    monkeypatch.setattr(ip, "display_pub", CapturingDisplayPublisher())
    yield ip


def test_the_panel_keeps_a_snapshot_of_its_settled_cards(
        relay: RunningEmulator, make_panel: MakePanel, shell: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-vip-SNAPSHOT-SENTINEL-0042"
    monkeypatch.setenv("SORA_API_KEY", key)
    panel = make_panel()
    shell.user_ns["panel"] = panel
    shell.run_cell("panel", store_history=False)
    widget_out, snapshot_out = shell.display_pub.outputs
    view = widget_out["data"]
    assert "application/vnd.jupyter.widget-view+json" in view
    assert "SoraWidget(" not in view["text/plain"]               # nbconvert's fallback
    display_id = snapshot_out["transient"]["display_id"]
    first = snapshot_out["data"]["text/html"]
    assert f"sora-snapshot-{panel.uid}" in first and f"sora-live-{panel.uid}" in \
        panel._dom_classes
    assert "0 finished jobs" in first and "<video" not in first

    for prompt, ratio in (("a kite at dawn", "16:9"), ("a tall tower", "9:16")):
        panel.prompt = prompt
        panel.aspect_ratio = ratio
        panel.generate()
    for card in panel.cards:
        finish(card)

    def latest() -> str:
        updates = [o for o in shell.display_pub.outputs
                   if (o.get("transient") or {}).get("display_id") == display_id]
        return str(updates[-1]["data"]["text/html"])

    wait_until(lambda: len(re.findall(r"<video", latest())) == 2)
    html = latest()
    srcs = re.findall(r"<video[^>]*\ssrc='([^']*)'", html)
    assert sorted(srcs) == sorted(c.item["src"] for c in panel.cards)
    assert all((Path.cwd() / src).is_file() for src in srcs)
    assert "width='180' height='320'" in html and "width='320' height='180'" in html
    assert "2 finished jobs" in html and "a kite at dawn" in html and "$0.90" in html
    everything = json.dumps(shell.display_pub.outputs)
    assert key not in everything and key[:12] not in everything
    assert panel.snapshot_html() == html


# -- money words (issue 22) ---------------------------------------------------------------------

def test_a_double_click_is_one_take_charged_once_never_labelled_reused(
        relay: RunningEmulator, make_panel: MakePanel) -> None:
    panel = make_panel(prompt="a heron taking off")
    panel.generate()
    card = panel.cards[0]
    assert not card.job.done
    # While the take runs, the button never offers an "earlier result".
    assert "earlier" not in panel.generate_label
    assert "reused" not in panel.generate_label
    panel.generate()          # the second click of a double-click
    assert panel.cards == [card] and not card.cached
    assert card.joined and card.item["joined"].startswith("joined the take started")
    assert "joined the take started" in panel.reason
    assert "reused" not in panel.reason.lower()
    assert not card.job.reused             # %sora jobs would list it as reused
    finish(card)
    assert relay.stats()["posts"] == 1
    assert not [c for c in panel.cards if c.item["reused"]]
    assert not [t for t in panel.takes if t["reused"]]
    assert "reused" not in card.item["money"].lower()
    assert card.money == "$0.90"           # its charge, said once


def test_the_generate_label_offers_the_earlier_take_only_once_it_completed(
        relay: RunningEmulator, make_panel: MakePanel) -> None:
    panel = make_panel(prompt="a swan on a still pond")
    seen: list[tuple[str, bool]] = []       # each label, and whether every take was done

    def record(change: Any) -> None:
        seen.append((change["new"], all(c.job.done for c in panel.cards)))

    panel.observe(record, "generate_label")
    panel.generate()
    card = panel.cards[0]
    assert not card.job.done
    panel.generate()                                       # joined: still the running take
    card.job.wait(timeout=30)
    wait_until(lambda: panel.generate_label == EARLIER_LABEL)
    assert EARLIER_LABEL == "Show the earlier take — free"
    # While it ran, a click would join it (free), and the label said so.
    assert (RUNNING_LABEL, False) in seen
    assert [label for label, done in seen if "earlier" in label and not done] == []
    assert relay.stats()["posts"] == 1


def test_an_identical_request_running_elsewhere_is_joined_not_reused(
        relay: RunningEmulator, make_panel: MakePanel) -> None:
    elsewhere = sw.generate("a comet over a field")     # e.g. %sora in another cell
    panel = make_panel(prompt="a comet over a field")
    if not elsewhere.done:
        assert "earlier" not in panel.generate_label
    panel.generate()
    card = panel.cards[0]
    assert card.job is elsewhere
    if not card.cached:                   # joined while running: its charge, never "reused"
        assert "joined the take started" in panel.reason
        assert card.joined and not card.item["reused"]
    finish(card)
    assert relay.stats()["posts"] == 1
    if not card.cached:
        assert not card.item["reused"] and "reused" not in card.item["money"].lower()


def test_a_take_finished_before_the_click_is_reused_and_the_button_says_free(
        relay: RunningEmulator, make_panel: MakePanel) -> None:
    done = sw.generate("a kettle boiling", wait=True, timeout=30)
    panel = make_panel(prompt="a kettle boiling")
    assert panel.generate_label == "Show the earlier take — free"
    panel.generate()
    assert panel.cards[0].job is done and panel.cards[0].cached
    assert panel.cards[0].item["reused"] and not panel.cards[0].item["joined"]
    assert relay.stats()["posts"] == 1


# -- the queue and the keyboard (issue 22) -------------------------------------------------------


def test_the_queue_under_the_form_lists_running_takes_newest_first(
        make_panel: MakePanel) -> None:
    panel = make_panel()
    # panel.js draws, top to bottom: the form, the queue, the takes, History.
    order = [panel._esm.index(f"{part}(m, root);")
             for part in ("form", "queue", "takes", "history")]
    assert order == sorted(order)
    for prompt in ("a slow river", "a fast river"):
        panel.prompt = prompt
        panel.generate()
    items = panel.queue
    assert [i["prompt"] for i in items] == ["a fast river", "a slow river"]
    assert all(i["status"] and isinstance(i["progress"], int) and i["words"] for i in items)
    assert {i["id"] for i in items} == {c.job.local_id for c in panel.cards}
    for card in panel.cards:
        finish(card)
    wait_until(lambda: panel.queue == [])


def test_stop_tracking_in_the_queue_cancels_locally(relay: RunningEmulator,
                                                    make_panel: MakePanel,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    panel = make_panel(prompt="an owl turning its head")
    panel.generate()
    job = panel.cards[0].job
    wait_until(lambda: job.id is not None)
    sent = capture_sends(panel, monkeypatch)
    message(panel, action="cancel", id=job.local_id, seq=3)
    assert not job.tracking
    assert panel.queue == []
    assert sent == [({"ack": 3}, [])]           # the front end's button waits for this
    assert relay.stats()["posts"] == 1


def test_ctrl_enter_generates_and_escape_dismisses_a_confirmation(
        relay: RunningEmulator, make_panel: MakePanel,
        monkeypatch: pytest.MonkeyPatch) -> None:
    panel = make_panel()
    # Ctrl/Cmd+Enter: the page's form goes with the click (a key can beat the sync).
    message(panel, action="generate", form={"prompt": "a tram in the snow", "image": "",
                                            "seed": ""})
    assert [c.job.prompt for c in panel.cards] == ["a tram in the snow"]
    assert panel.prompt == "a tram in the snow"

    monkeypatch.setenv("SORA_CONFIRM_USD", "1")
    panel.prompt = "a {red|blue} tram"
    panel.generate()
    assert panel.confirm_label == "Confirm: pay $1.80"
    assert panel.reason_tone == "warning"
    message(panel, action="dismiss")                                 # Escape
    assert panel.confirm_label == ""
    assert len(panel.cards) == 1
    finish(panel.cards[0])
    assert relay.stats()["posts"] == 1                       # nothing of the sweep was sent


def test_a_card_carries_its_job_and_status_for_the_dom_contract(make_panel: MakePanel) -> None:
    """panel.js puts ``id`` and ``status`` on each take as data-job-id / data-status (the
    browser tests find takes by them)."""
    panel = make_panel(prompt="a windmill at noon")
    panel.generate()
    card = finish(panel.cards[0])
    assert card.item["id"] == card.job.local_id
    assert card.item["status"] == "completed" and card.item["done"]
    assert "node.dataset.jobId = item.id" in panel._esm
    assert "node.dataset.status = item.status" in panel._esm


def test_a_generate_disabled_for_an_empty_form_says_why_in_words(make_panel: MakePanel) -> None:
    panel = make_panel()
    assert panel.generate_disabled
    assert "describe the video first" in panel.hint       # beside it, not a tooltip
    assert panel.reason == ""                              # not an error
    panel.prompt = "a cat"
    assert panel.hint == "" and not panel.generate_disabled


def test_a_running_take_of_another_relay_is_not_joined(
        relay: RunningEmulator, make_panel: MakePanel,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from .conftest import VIP_KEY

    key, base = VIP_KEY, relay.base_url
    monkeypatch.delenv("SORA_API_KEY")
    monkeypatch.delenv("SORA_BASE_URL")
    panel = make_panel(prompt="a lamp post in fog")
    panel.generate()                  # on the embedded emulator
    local = panel.cards[0].job
    monkeypatch.setenv("SORA_API_KEY", str(key))
    monkeypatch.setenv("SORA_BASE_URL", base)
    panel.prompt = "a lamp post in fog "   # the user touches the form
    panel.prompt = "a lamp post in fog"
    panel.generate()                  # the paid relay: a new take
    assert len(panel.cards) == 2 and panel.cards[1].job is local
    assert not panel.cards[0].joined
    finish(panel.cards[0])
    assert relay.stats()["posts"] == 1


# -- videos over the widget's messages (hosts with no file route: marimo) -------------------------


def test_a_media_message_sends_a_published_video_in_chunks(
        make_panel: MakePanel, monkeypatch: pytest.MonkeyPatch) -> None:
    panel = make_panel(prompt="a bell ringing")
    panel.generate()
    card = finish(panel.cards[0])
    sent = capture_sends(panel, monkeypatch)
    monkeypatch.setattr(media_module, "CHUNK_BYTES", 4096)
    for src in (card.item["src"], card.item["poster"]):
        sent.clear()
        message(panel, action="media", src=src, seq=5)
        raw = (Path.cwd() / src).read_bytes()
        count = math.ceil(len(raw) / 4096)
        assert count > 1
        pieces = [(c, b) for c, b in sent if c.get("media") == src]
        assert [c for c, _ in pieces] == [{"media": src, "index": i, "count": count}
                                          for i in range(count)]
        assert all(len(b) == 1 for _, b in pieces)
        assert b"".join(b[0] for _, b in pieces) == raw
        assert sent[-1] == ({"ack": 5}, [])


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A media file outside the notebook's published folder (a symlink target)."""
    path = tmp_path / "private" / "secret.mp4"
    path.parent.mkdir()
    path.write_bytes(b"not for the browser " * 100)
    return path


@pytest.mark.parametrize("case", ["parent", "parents inside", "absolute", "absolute inside",
                                  "symlink out", "not media", "backslash", "drive",
                                  "nul byte", "not a string", "missing"])
def test_a_media_message_for_anything_but_published_media_sends_no_bytes(
        make_panel: MakePanel, monkeypatch: pytest.MonkeyPatch, outside: Path,
        case: str) -> None:
    panel = make_panel()
    folder = Path.cwd() / preferences.media_dir
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(b"a published clip")
    (folder / "notes.txt").write_text("published, but not media")
    os.symlink(outside, folder / "link.mp4")
    src = {
        "parent": "../../etc/passwd",
        "parents inside": f"{preferences.media_dir}/../../private/secret.mp4",
        "absolute": str(outside),
        "absolute inside": str(folder / "clip.mp4"),
        "symlink out": f"{preferences.media_dir}/link.mp4",
        "not media": f"{preferences.media_dir}/notes.txt",
        "backslash": "\\etc\\passwd",
        "drive": "C:/Windows/win.ini",
        "nul byte": f"{preferences.media_dir}/clip.mp4\x00.txt",
        "not a string": {"src": f"{preferences.media_dir}/clip.mp4"},
        "missing": f"{preferences.media_dir}/gone.mp4",
    }[case]
    sent = capture_sends(panel, monkeypatch)
    message(panel, action="media", src=src)
    assert sent == [({"media": src, "error": "not published media"}, [])]
    # The same message for the published clip does send it (the refusal is not blanket).
    sent.clear()
    message(panel, action="media", src=f"{preferences.media_dir}/clip.mp4")
    assert [b for _, b in sent] == [[b"a published clip"]]


# -- History and the comparison as parts of the one widget ---------------------------------------


def test_a_history_set_message_changes_only_the_editable_names(
        home: Path, make_panel: MakePanel) -> None:
    seed_history(home, 4, prompt=lambda i: f"a {'fox' if i % 2 else 'owl'} number {i}")
    panel = make_panel()
    page = panel.history.open()
    assert page is not None and panel.history_open
    before = dict(panel.history_view)
    assert len(before["cards"]) == 4 and before["can_load"]
    locked = sorted(set(HistoryState().traits(sync=True)) - set(HistoryState.EDITABLE))
    assert {"cards", "players", "selected", "can_load", "summary"} <= set(locked)
    hostile = {"cards": [{"id": "x", "prompt": "<b>forged</b>"}], "can_load": False,
               "players": {"x": "../../etc/passwd"}, "selected": ["x"],
               "summary": "forged", "message": "forged", "has_next": True,
               "status_options": [], "_esm": "alert(1)", "unknown": 1}
    assert set(locked) <= set(hostile) | {"_esm"}
    message(panel, target="history", action="set", values=hostile)
    assert panel.history_view == before
    assert page.view.selected == [] and page.view.players == {}

    # An editable name goes through (the filters and the page), a bad value is refused.
    message(panel, target="history", action="set", values={"query": "fox", "page": "two"})
    assert page.view.query == "fox" and page.view.page == 0
    assert [c["prompt"] for c in panel.history_view["cards"]] == [
        "a fox number 3", "a fox number 1"]


def test_the_panels_history_open_close_and_vary_line_are_traits(
        home: Path, make_panel: MakePanel) -> None:
    ids = seed_history(home, 2, prompt=lambda i: f"a heron number {i}")
    panel = make_panel()
    assert panel.history.page is None and panel.history_view == {}   # not read yet
    message(panel, action="history", open=True)                      # the History button
    assert panel.history_open and panel.history_view["cards"]
    message(panel, target="history", action="vary", id=ids[-1])
    assert panel.vary_line == "a heron number 1" and panel.history.parent_id == ids[-1]
    message(panel, action="forget")                                  # "forget" beside it
    assert panel.vary_line == "" and panel.history.parent_id is None
    message(panel, action="history", open=False)
    assert not panel.history_open


def test_closing_a_panel_twice_is_quiet(home: Path, make_panel: MakePanel) -> None:
    """``Widget.__del__`` closes a panel again after the user (or the notebook) closed it:
    with History open, the second close raised from the garbage collector."""
    seed_history(home, 1, prompt=lambda i: f"a crane number {i}")
    panel = make_panel()
    assert panel.history.open() is not None
    panel.close()
    panel.close()
    assert panel.history_view == {}


def test_a_tick_counts_as_the_cards_progress_redraw() -> None:
    """The panel's one-second tick redraws a running card with its latest progress: the
    card's own progress throttle then drops its pending redraw, so one take's progress
    moves at most once a second, tick and throttle together (it moved twice before)."""
    import threading

    from sora_widgets.ui.throttle import Throttle

    runs: list[int] = []
    throttle = Throttle(lambda: runs.append(1), interval=0.2)
    throttle()                       # runs at once
    throttle()                       # within the interval: a trailing run is pending
    throttle.ran()                   # the tick drew it: that trailing run is dropped
    # A later run on the same timer thread: once it ran, the dropped run's time is past.
    passed = threading.Event()
    sentinel = Throttle(passed.set, interval=0.6)
    sentinel()
    passed.clear()
    sentinel()
    assert passed.wait(10)
    assert runs == [1]
