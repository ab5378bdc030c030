"""SoraWidget against the real emulator: no browser, no mocks of the core.

Clicks go through the buttons' own handlers (``Button.click()``); waits use
``job.wait(timeout=...)`` or a condition polled against a deadline.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ipywidgets
import pytest

import sora_widgets as sw
from sora_widgets.emulator import RunningEmulator
from sora_widgets.engine.job import Job, poller
from sora_widgets.studio import studio as studio_module
from sora_widgets.ui.widget import JobCard, SoraWidget

from .doubles import wait_until

MakePanel = Callable[..., SoraWidget]
SRC = re.compile(r"<video[^>]*\ssrc='([^']*)'")


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


def player_html(card: JobCard) -> str:
    return "".join(o["data"].get("text/html", "") for o in card.player.outputs)


def video_src(card: JobCard) -> str | None:
    match = SRC.search(player_html(card))
    return match.group(1) if match else None


def finish(card: JobCard, timeout: float = 30.0) -> JobCard:
    """Wait for the job, then for the card to show its video (set by the poller thread)."""
    card.job.wait(timeout=timeout)
    wait_until(lambda: video_src(card) is not None)
    return card


def card_text(card: JobCard) -> str:
    return card.header.value + card.status.value + card.details.value + player_html(card)


def test_generate_shows_a_card_that_completes_with_a_playable_video(
        make_panel: MakePanel) -> None:
    panel = make_panel()
    assert isinstance(panel, ipywidgets.VBox)
    assert "prompt" in panel.prompt_input.placeholder
    assert panel.generate_button.description == "Generate (emulator, free)"
    panel.prompt_input.value = "a lighthouse at dusk"
    panel.ratio_input.value = "9:16"
    assert not panel.generate_button.disabled

    panel.generate_button.click()
    assert len(panel.cards) == 1 and panel.gallery.children == (panel.cards[0],)
    card = panel.cards[0]
    setters: list[str] = []
    card.player.observe(lambda _c: setters.append(threading.current_thread().name), "outputs")
    finish(card)

    src = video_src(card)
    assert src is not None and not src.startswith("/") and "://" not in src
    assert (Path.cwd() / src).is_file()
    assert "width='180' height='320'" in player_html(card)      # portrait thumbnail
    assert f"href='{src}'" in player_html(card)                  # download link
    assert (card.bar.value, card.bar.bar_style) == (100, "success")
    assert "completed" in card.status.value
    assert card.job.id is not None and card.job.id in card.details.value
    # Said once per panel (the spend line), not on every card.
    assert "local emulator" not in card_text(card)
    assert "local emulator — no charge" in panel.spend_line.value
    assert panel.jobs == [card.job]
    assert setters and setters[-1] == "sora-widgets-events"   # the engine's events thread
    assert card.regenerate_button.layout.display == "none"


def test_several_jobs_run_at_once_newest_first(make_panel: MakePanel) -> None:
    panel = make_panel()
    for prompt in ("a red kite", "a blue kite", "a green kite"):
        panel.prompt_input.value = prompt
        panel.generate_button.click()
    assert [job.prompt for job in panel.jobs] == ["a green kite", "a blue kite", "a red kite"]
    assert sum(not job.done for job in panel.jobs) >= 2        # all submitted, none awaited
    for card in panel.cards:
        finish(card)
    assert all(card.bar.bar_style == "success" for card in panel.cards)


def test_invalid_inputs_disable_generate_with_the_reason(make_panel: MakePanel) -> None:
    panel = make_panel()
    assert panel.generate_button.disabled
    assert panel.notice.value == ""          # guidance, not a red error, before any input
    assert "Describe" in panel.generate_button.tooltip

    panel.image_input.value = "not a url"
    assert panel.generate_button.disabled
    assert "image" in panel.notice.value and "http" in panel.notice.value
    assert panel.image_preview.value == ""
    panel.image_input.value = ""
    assert panel.notice.value == ""              # emptied again: guidance, not an error
    panel.image_input.value = "not a url"

    panel.prompt_input.value = "a cat"
    assert panel.generate_button.disabled                        # the image is still bad
    panel.image_input.value = "javascript:alert(1)"
    assert panel.generate_button.disabled and panel.image_preview.value == ""

    panel.generate_button.click()                                # a click that slips through
    assert panel.cards == []

    panel.image_input.value = "https://example.com/cat.png?a='><script>x</script>"
    assert not panel.generate_button.disabled and panel.notice.value == ""
    preview = panel.image_preview.value
    assert "sora-image-preview" in preview and "sora-image-url" in preview
    assert "<img" not in preview and "<script>" not in preview and "&#x27;&gt;" in preview


def test_double_click_submits_once(relay: RunningEmulator, make_panel: MakePanel) -> None:
    panel = make_panel(prompt="a paper boat in the rain")
    assert panel.generate_button.description == "Generate ($0.90)"
    panel.generate_button.click()
    panel.generate_button.click()
    assert len(panel.cards) == 1
    assert "already running" in panel.notice.value
    finish(panel.cards[0])
    assert relay.stats()["posts"] == 1
    assert "$0.90" in panel.spend_line.value


def test_cached_result_offers_regenerate_anyway(relay: RunningEmulator,
                                                make_panel: MakePanel) -> None:
    panel = make_panel(prompt="a clock melting", aspect_ratio="9:16")
    panel.generate_button.click()
    first = finish(panel.cards[0])
    assert relay.stats()["posts"] == 1

    panel.generate_button.click()                                # identical, finished: cache
    assert panel.cards == [first] and first.cached
    assert relay.stats()["posts"] == 1
    assert first.regenerate_button.layout.display is None
    assert first.regenerate_button.description == "regenerate anyway ($0.90)"
    assert "reused — no new charge" in first.details.value
    assert "reused — no new charge" in panel.notice.value

    other = make_panel(prompt="a clock melting", aspect_ratio="9:16")   # e.g. after a restart
    other.generate_button.click()
    assert other.jobs == [first.job] and other.cards[0].cached
    assert video_src(other.cards[0]) is not None

    first.regenerate_button.click()
    first.regenerate_button.click()                              # the button is gone now
    assert len(panel.cards) == 2 and panel.cards[1] is first
    fresh = finish(panel.cards[0])
    assert fresh.job is not first.job and not fresh.cached
    assert first.regenerate_button.layout.display == "none"
    assert relay.stats()["posts"] == 2


def test_reuse_prompt_loads_the_card_into_the_form(make_panel: MakePanel) -> None:
    panel = make_panel(prompt="a fox in snow", aspect_ratio="9:16",
                       image="https://example.com/fox.png")
    assert panel.prompt_input.value == "a fox in snow"
    assert "url('https://example.com/fox.png')" in panel.image_preview.value
    panel.generate_button.click()
    card = panel.cards[0]
    panel.prompt_input.value = "something else"
    panel.ratio_input.value = "16:9"
    panel.image_input.value = ""

    card.reuse_button.click()
    assert panel.prompt_input.value == "a fox in snow"
    assert panel.ratio_input.value == "9:16"
    assert panel.image_input.value == "https://example.com/fox.png"
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
            assert panel.prompt_input.value == "a train crossing a bridge"
            assert panel.ratio_input.value == "9:16"
            card = finish(panel.cards[0])
            assert (Path.cwd() / str(video_src(card))).is_file()
            by_id = make_panel(jobs=[str(past.id)])
            assert by_id.jobs == [past] and video_src(by_id.cards[0]) is not None
        finally:
            panel.close()
    finally:
        restarted.close()


def test_non_vip_key_shows_the_vip_message(relay: RunningEmulator, make_panel: MakePanel,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_API_KEY", "nonvip-ordinary-key-123")
    panel = make_panel(prompt="a dragon")
    panel.generate_button.click()
    card = panel.cards[0]
    with pytest.raises(sw.PermissionDeniedError):
        card.job.wait(timeout=30)
    wait_until(lambda: card.bar.bar_style == "danger")
    assert "VIP group" in card.details.value
    assert "sora-error" in card.details.value
    assert card.player.outputs == ()
    assert "nonvip-ordinary-key-123" not in card_text(card)


def test_prompt_markup_is_escaped_in_the_card(make_panel: MakePanel) -> None:
    payload = "<script>window.pwned=1</script><img src=x onerror=alert(1)>"
    panel = make_panel(prompt=payload)
    panel.generate_button.click()
    card = finish(panel.cards[0])
    text = card_text(card)
    assert "<script" not in text and "<img" not in text
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in card.header.value


def _all_state_text(panel: SoraWidget) -> str:
    def tree(widget: Any) -> Iterator[Any]:
        yield widget
        for child in getattr(widget, "children", ()):
            yield from tree(child)

    states = [w.get_state() for w in tree(panel)]
    manager = ipywidgets.Widget.get_manager_state(drop_defaults=False)
    return json.dumps([manager, states], default=str) + repr(panel)


def test_widget_state_never_contains_the_api_key(relay: RunningEmulator, make_panel: MakePanel,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-vip-SENTINEL-q7Zx-9wKj-LEAKCHECK"
    monkeypatch.setenv("SORA_API_KEY", key)
    panel = make_panel(prompt="a lantern on a lake")
    panel.generate_button.click()
    job: Job = finish(panel.cards[0]).job
    assert job.status == "completed"
    blob = _all_state_text(panel)
    assert "a lantern on a lake" in blob and str(job.id) in blob    # the state is all there
    pieces = {key[i:i + 8] for i in range(len(key) - 7)}
    assert not [piece for piece in pieces if piece in blob]


# -- the first hour (issue 12) ------------------------------------------------------------------

RED = re.compile(r"#b3261e|#d32f2f|#611a15|color:\s*red|sora-error")


def _html_values(widget: Any) -> list[str]:
    found = [widget.value] if isinstance(widget, ipywidgets.HTML) else []
    for child in getattr(widget, "children", ()):
        found += _html_values(child)
    return found


def test_an_empty_panel_shows_no_red_text(make_panel: MakePanel) -> None:
    panel = make_panel()
    values = _html_values(panel)
    assert values and not [v for v in values if RED.search(v) and "sora-restart" not in v]
    assert panel.notice.value == "" and panel.generate_button.disabled
    panel.prompt_input.value = "   "                 # whitespace is still "nothing yet"
    assert panel.notice.value == ""


def test_a_dead_kernel_turns_the_panel_into_the_restart_message(make_panel: MakePanel) -> None:
    panel = make_panel()
    assert {"sora-widget", "sora-live"} <= set(panel._dom_classes)
    assert panel.children[0] is panel.restart_notice
    assert "sora-restart" in panel.restart_notice._dom_classes
    assert "kernel restarted" in panel.restart_notice.value
    # The CSS that shows it once JupyterLab marks the views disconnected ships with the panel.
    assert ".sora-live.jupyter-widgets-disconnected .sora-restart" in \
        panel.restart_notice.value


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
    assert "SoraWidget(children" not in view["text/plain"]       # nbconvert's fallback
    display_id = snapshot_out["transient"]["display_id"]
    first = snapshot_out["data"]["text/html"]
    assert f"sora-snapshot-{panel._uid}" in first and f"sora-live-{panel._uid}" in \
        panel._dom_classes
    assert "0 finished jobs" in first and "<video" not in first

    for prompt, ratio in (("a kite at dawn", "16:9"), ("a tall tower", "9:16")):
        panel.prompt_input.value = prompt
        panel.ratio_input.value = ratio
        panel.generate_button.click()
    for card in panel.cards:
        finish(card)

    def latest() -> str:
        updates = [o for o in shell.display_pub.outputs
                   if (o.get("transient") or {}).get("display_id") == display_id]
        return str(updates[-1]["data"]["text/html"])

    wait_until(lambda: len(re.findall(r"<video", latest())) == 2)
    html = latest()
    srcs = re.findall(r"<video[^>]*\ssrc='([^']*)'", html)
    assert sorted(srcs) == sorted(str(video_src(c)) for c in panel.cards)
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
    panel.generate_button.click()
    card = panel.cards[0]
    assert not card.job.done
    # While the take runs, the button never offers an "earlier result".
    assert "earlier" not in panel.generate_button.description
    assert "reused" not in panel.generate_button.description
    panel.generate_button.click()          # the second click of a double-click
    assert panel.cards == [card] and not card.cached
    assert "joined the take started" in panel.notice.value
    assert "reused" not in panel.notice.value.lower()
    assert not card.job.reused             # %sora jobs would list it as reused
    finish(card)
    assert relay.stats()["posts"] == 1
    assert "reused" not in card.details.value.lower()
    assert "$0.90" in card.details.value   # its charge, said once
    assert card.regenerate_button.layout.display == "none"


def test_an_identical_request_running_elsewhere_is_joined_not_reused(
        relay: RunningEmulator, make_panel: MakePanel) -> None:
    elsewhere = sw.generate("a comet over a field")     # e.g. %sora in another cell
    panel = make_panel(prompt="a comet over a field")
    if not elsewhere.done:
        assert "earlier" not in panel.generate_button.description
    panel.generate_button.click()
    card = panel.cards[0]
    assert card.job is elsewhere
    if not card.cached:                   # joined while running: its charge, never "reused"
        assert "joined the take started" in panel.notice.value
    finish(card)
    assert relay.stats()["posts"] == 1
    if not card.cached:
        assert "reused" not in card.details.value.lower()


def test_a_take_finished_before_the_click_is_reused_and_the_button_says_free(
        relay: RunningEmulator, make_panel: MakePanel) -> None:
    done = sw.generate("a kettle boiling", wait=True, timeout=30)
    panel = make_panel(prompt="a kettle boiling")
    assert panel.generate_button.description == "Show the earlier take — free"
    panel.generate_button.click()
    assert panel.cards[0].job is done and panel.cards[0].cached
    assert "reused — no new charge" in panel.cards[0].details.value.lower()
    assert relay.stats()["posts"] == 1


# -- the queue and the keyboard (issue 22) -------------------------------------------------------

def send_key(panel: SoraWidget, **content: Any) -> None:
    """What panel.js sends (``model.send``), through the widget's own handler."""
    panel.queue._handle_custom_msg(content, [])


def test_the_queue_under_the_form_lists_running_takes_newest_first(
        make_panel: MakePanel) -> None:
    panel = make_panel()
    children = list(panel.children)
    assert children.index(panel.queue) < children.index(panel.gallery)
    assert children.index(panel.gallery) < children.index(panel.history.bar)
    for prompt in ("a slow river", "a fast river"):
        panel.prompt_input.value = prompt
        panel.generate_button.click()
    items = panel.queue.items
    assert [i["prompt"] for i in items] == ["a fast river", "a slow river"]
    assert all(i["status"] and isinstance(i["progress"], int) and i["words"] for i in items)
    assert {i["id"] for i in items} == {c.job.local_id for c in panel.cards}
    for card in panel.cards:
        finish(card)
    wait_until(lambda: panel.queue.items == [])


def test_stop_tracking_in_the_queue_cancels_locally(relay: RunningEmulator,
                                                    make_panel: MakePanel) -> None:
    panel = make_panel(prompt="an owl turning its head")
    panel.generate_button.click()
    job = panel.cards[0].job
    wait_until(lambda: job.id is not None)
    send_key(panel, action="cancel", id=job.local_id)
    assert not job.tracking
    assert panel.queue.items == []
    assert relay.stats()["posts"] == 1


def test_ctrl_enter_generates_and_escape_dismisses_a_confirmation(
        relay: RunningEmulator, make_panel: MakePanel,
        monkeypatch: pytest.MonkeyPatch) -> None:
    panel = make_panel()
    send_key(panel, action="generate", prompt="a tram in the snow")   # Ctrl/Cmd+Enter
    assert [c.job.prompt for c in panel.cards] == ["a tram in the snow"]
    assert panel.prompt_input.value == "a tram in the snow"

    monkeypatch.setenv("SORA_CONFIRM_USD", "1")
    panel.prompt_input.value = "a {red|blue} tram"
    panel.generate_button.click()
    assert panel.confirm_button.layout.display is None and panel.queue.confirming
    send_key(panel, action="dismiss")                                 # Escape
    assert panel.confirm_button.layout.display == "none" and not panel.queue.confirming
    assert len(panel.cards) == 1
    finish(panel.cards[0])
    assert relay.stats()["posts"] == 1                       # nothing of the sweep was sent


def test_a_card_carries_its_job_and_status_for_the_dom_contract(make_panel: MakePanel) -> None:
    panel = make_panel(prompt="a windmill at noon")
    assert "sora-panel" in panel._dom_classes
    assert "sora-ratio-input" in panel.ratio_input._dom_classes
    panel.generate_button.click()
    card = finish(panel.cards[0])
    classes = set(card._dom_classes)
    assert {"sora-take", f"sora-take-{card.job.local_id}", "sora-status-completed"} <= classes
    assert not [c for c in classes if c.startswith("sora-status-") and "completed" not in c]
    assert "sora-take-money" in card.details._dom_classes
    assert "sora-takes" in panel.gallery._dom_classes


def test_a_generate_disabled_for_an_empty_form_says_why_in_words(make_panel: MakePanel) -> None:
    panel = make_panel()
    assert panel.generate_button.disabled
    assert "describe the video first" in panel.hint.value       # beside it, not a tooltip
    assert not RED.search(panel.hint.value)
    panel.prompt_input.value = "a cat"
    assert panel.hint.value == "" and not panel.generate_button.disabled


def test_a_running_take_of_another_relay_is_not_joined(
        relay: RunningEmulator, make_panel: MakePanel,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from .conftest import VIP_KEY

    key, base = VIP_KEY, relay.base_url
    monkeypatch.delenv("SORA_API_KEY")
    monkeypatch.delenv("SORA_BASE_URL")
    panel = make_panel(prompt="a lamp post in fog")
    panel.generate_button.click()                  # on the embedded emulator
    local = panel.cards[0].job
    monkeypatch.setenv("SORA_API_KEY", str(key))
    monkeypatch.setenv("SORA_BASE_URL", base)
    panel.prompt_input.value = "a lamp post in fog "   # the user touches the form
    panel.prompt_input.value = "a lamp post in fog"
    panel.generate_button.click()                  # the paid relay: a new take
    assert len(panel.cards) == 2 and panel.cards[1].job is local
    finish(panel.cards[0])
    assert relay.stats()["posts"] == 1
