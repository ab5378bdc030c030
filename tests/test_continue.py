"""Continuing a clip from its last frame, and stitching clips: against the real emulator.

The paid path goes through a recording proxy (a real loopback HTTP server in front of the
emulator), so the tests read the exact bytes of every POST the package sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import sora_widgets as sw
from sora_widgets.core.errors import SoraError, ValidationError
from sora_widgets.core.lifecycle import Status
from sora_widgets.emulator import RunningEmulator
from sora_widgets.media.frames import last_frame, probe
from sora_widgets.studio import studio as studio_module
from sora_widgets.ui.widget import SoraWidget

from .conftest import TEST_TIME_SCALE, VIP_KEY
from .doubles import RecordingProxy, wait_until
from .doubles.images import decode_data_uri, difference, first_frame
from .scripts import storyboard_uploader

#: JPEG at quality 90 of the same picture: a mean difference of a few levels at most.
SAME_PICTURE = 4.0
#: The emulator draws its clock on frame 0 and H.264 compresses it: still close.
SHOWN_IN_FRAME_0 = 12.0


@pytest.fixture
def proxy(emulator: RunningEmulator, studio: studio_module.Studio,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingProxy]:
    """The paid path (a key), through a proxy that records every request."""
    recorder = RecordingProxy(emulator.port)
    monkeypatch.setenv("SORA_API_KEY", VIP_KEY)
    monkeypatch.setenv("SORA_BASE_URL", recorder.base_url)
    monkeypatch.setenv("SORA_POLL_SCALE", str(TEST_TIME_SCALE))
    yield recorder
    recorder.stop()


def decoded_frames(video: Path) -> list[Any]:
    """Every frame of a clip in order, decoded independently of ``frames``."""
    with av.open(str(video)) as container:
        return [frame.to_image() for frame in container.decode(video=0)]


@pytest.mark.parametrize(("ratio", "shape"), [("16:9", 16 / 9), ("9:16", 9 / 16)])
def test_continuation_posts_the_last_frame_as_a_data_uri(
        proxy: RecordingProxy, emulator: RunningEmulator, ratio: str, shape: float) -> None:
    parent = sw.generate("a lighthouse at dusk, waves below", aspect_ratio=ratio, wait=True,
                         timeout=60)
    assert parent.local_path is not None
    child = parent.continue_with("the lamp turns on and sweeps the sea", wait=True,
                                 timeout=60)

    posts = proxy.posts()
    assert len(posts) == 2
    assert "image" not in posts[0].json
    body = posts[1].json
    assert body["prompt"] == "the lamp turns on and sweeps the sea"
    assert body["aspect_ratio"] == ratio
    mime, sent = decode_data_uri(body["image"])
    assert mime == "image/jpeg" and sent.format == "JPEG"
    assert abs(sent.width / sent.height - shape) < 0.01, sent.size
    # The parent's frames, decoded here one by one: the picture sent is the last one (of
    # all the clip's frames, the last is the closest to it).
    decoded = decoded_frames(parent.local_path)
    assert sent.size == decoded[-1].size
    distances = [difference(sent, frame) for frame in decoded]
    assert distances[-1] < SAME_PICTURE
    assert min(range(len(distances)), key=distances.__getitem__) == len(decoded) - 1
    # The emulator started the new clip on it: continuity is visible.
    assert child.local_path is not None
    assert difference(first_frame(child.local_path), sent) < SHOWN_IN_FRAME_0
    # Lineage, kept in the journal (a fresh handle reads it back).
    assert child.parent_id == parent.local_id
    assert child.aspect_ratio == ratio
    assert emulator.task(str(child.id)).first_frame  # type: ignore[union-attr]


def test_continuing_again_reuses_the_same_job_for_free(proxy: RecordingProxy,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    parent = sw.generate("a paper boat on a puddle", wait=True, timeout=60)
    child = parent.continue_with("the boat drifts into a gutter", wait=True, timeout=60)
    again = parent.continue_with("the boat drifts into a gutter", wait=True, timeout=60)
    assert again.local_id == child.local_id and again.reused
    assert len(proxy.posts()) == 2
    # After a restart too: the request (the same last frame) finds the recorded job.
    studio_module.default_studio().close()
    fresh = studio_module.Studio()
    monkeypatch.setattr(studio_module, "_default", fresh)
    try:
        old_parent = fresh.get(parent.local_id)
        assert fresh.get(child.local_id).parent_id == parent.local_id
        repeat = old_parent.continue_with("the boat drifts into a gutter")
        assert repeat.local_id == child.local_id
        assert len(proxy.posts()) == 2
    finally:
        fresh.close()


def test_a_clip_that_is_not_finished_cannot_be_continued(proxy: RecordingProxy,
                                                          emulator: RunningEmulator) -> None:
    emulator.config.time_scale = 1.0        # 60-180 s: certainly still running
    running = sw.generate("a slow sunrise")
    wait_until(lambda: running.id is not None, 10, "the first POST answered")
    with pytest.raises(SoraError, match="only a completed clip can be continued"):
        running.continue_with("the sun is up")
    assert len(proxy.posts()) == 1
    running.cancel()


def test_image_uploader_sends_a_link_instead(proxy: RecordingProxy,
                                             emulator: RunningEmulator,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """SORA_IMAGE_UPLOADER=module:function: the frame goes up there, its URL in the POST
    (the emulator fetches loopback links, so the new clip still starts on the frame)."""
    parent = sw.generate("a red kite over a hill", wait=True, timeout=60)
    assert parent.local_path is not None
    monkeypatch.setenv("SORA_IMAGE_UPLOADER", "tests.scripts.storyboard_uploader:upload")
    child = parent.continue_with("the kite string snaps", wait=True, timeout=60)
    url = proxy.posts()[1].json["image"]
    assert url == storyboard_uploader.uploaded()[-1][0]
    assert url.startswith("http://127.0.0.1:")
    assert child.local_path is not None
    assert difference(first_frame(child.local_path), last_frame(parent.local_path)) \
        < SHOWN_IN_FRAME_0
    # An uploader that returns no http(s) link: refused, nothing sent.
    monkeypatch.setenv("SORA_IMAGE_UPLOADER", "tests.scripts.storyboard_uploader:bad_upload")
    with pytest.raises(ValidationError, match="no http"):
        parent.continue_with("the kite falls")
    monkeypatch.setenv("SORA_IMAGE_UPLOADER", "no-colon-here")
    with pytest.raises(ValidationError, match="module:function"):
        parent.continue_with("the kite falls")
    assert len(proxy.posts()) == 2


# -- stitch -------------------------------------------------------------------------------------


def test_stitch_of_two_12_second_clips_is_24_seconds_in_order(studio: studio_module.Studio,
                                                               tmp_path: Path) -> None:
    first = sw.generate("a train leaves the station", wait=True, timeout=60)
    second = sw.generate("the train crosses a bridge", wait=True, timeout=60)
    assert first.local_path is not None and second.local_path is not None
    film = sw.stitch([first, second], tmp_path / "film.mp4")
    assert film == tmp_path / "film.mp4"
    info = probe(film)
    assert abs(info.duration - 24.0) < 0.1, info
    one, two = probe(first.local_path), probe(second.local_path)
    assert abs(one.duration - 12.0) < 0.1 and abs(two.duration - 12.0) < 0.1
    assert info.frames == (one.frames or 0) + (two.frames or 0)
    # In order: the film starts on the first clip, and 12 s in it shows the second one's start.
    with av.open(str(film)) as container:
        decoded = [frame.to_image() for frame in container.decode(video=0)]
    assert difference(decoded[0], first_frame(first.local_path)) < SAME_PICTURE
    assert difference(decoded[one.frames or 0], first_frame(second.local_path)) < SAME_PICTURE
    # Ids work too (task id or local id), and the film is replaced.
    again = sw.stitch([second.id or "", first.local_id], tmp_path / "film.mp4")
    with av.open(str(again)) as container:
        head = next(iter(container.decode(video=0))).to_image()
    assert difference(head, first_frame(second.local_path)) < SAME_PICTURE


def test_stitch_refuses_clips_that_are_not_completed(emulator: RunningEmulator,
                                                     studio: studio_module.Studio,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.setenv("SORA_EMULATOR_TIME_SCALE", "1.0")   # 60-180 s: still running
    done = sw.generate("a finished clip", wait=False)
    with pytest.raises(SoraError, match="only completed clips can be stitched"):
        sw.stitch([done], tmp_path / "x.mp4")
    with pytest.raises(ValidationError):
        sw.stitch([], tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()
    done.cancel()


# -- %sora continue ---------------------------------------------------------------------------


@pytest.fixture
def ip(studio: studio_module.Studio,
       monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[InteractiveShell, Any]]:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "sora_widgets")
    pub = CapturingDisplayPublisher()
    monkeypatch.setattr(shell, "display_pub", pub)
    yield shell, pub
    shell.user_ns.pop("first", None)
    shell.user_ns.pop("nxt", None)


def test_sora_continue_magic(ip: tuple[InteractiveShell, Any], home: Path) -> None:
    shell, pub = ip
    shell.run_cell("%sora -o first --wait a harbour at dawn, fishing boats")
    first = shell.user_ns["first"]
    assert first.status == Status.COMPLETED
    result = shell.run_cell(f'%sora continue {first.id} "the boats leave the harbour" '
                            "--wait -o nxt")
    assert result.error_in_exec is None, result.error_in_exec
    nxt = shell.user_ns["nxt"]
    assert nxt.parent_id == first.local_id and nxt.status == Status.COMPLETED
    assert nxt.prompt == "the boats leave the harbour"
    assert nxt.request.images[0].startswith("data:image/jpeg;base64,")
    html = pub.outputs[-1]["data"]["text/html"]
    assert "sora-video" in html and "the boats leave the harbour" in html
    # The continuation frame (an inline image of MBs in the request) is not in the output
    # (the player's small poster still may be).
    assert nxt.request.images[0][22:200] not in json.dumps(pub.outputs)
    assert (Path.cwd() / "sora_videos").is_dir()
    stats = studio_module.default_studio()._emulators
    assert sum(e.stats()["posts"] for e in stats.values()) == 2
    bad = shell.run_cell('%sora continue no-such-job "more"')
    assert isinstance(bad.error_in_exec, UsageError)
    assert "no job 'no-such-job'" in str(bad.error_in_exec)


# -- the panel's "continue" -----------------------------------------------------------------------


def test_panel_continue_action(studio: studio_module.Studio) -> None:
    panel = SoraWidget()
    try:
        panel.prompt = "a snowman in a garden"
        panel.generate()
        (card,) = panel.cards
        assert not card.item["can_continue"]                    # not before it is finished
        card.job.wait(timeout=60)
        wait_until(lambda: card.item["can_continue"], 15, "continue shown")
        assert card.item["continue_label"] == "continue · free (emulator)"
        panel.prompt = ""
        panel.press("continue", card.job)
        assert len(panel.cards) == 1                             # nothing sent
        assert "write the new prompt" in panel.reason            # what happens next: ask
        panel.prompt = "the snowman melts in the sun"
        panel.press("continue", card.job)
        new = panel.cards[0]
        assert new is not card and new.job.parent_id == card.job.local_id
        assert new.job.request.images[0].startswith("data:image/jpeg;base64,")
        assert new.job.aspect_ratio == card.job.aspect_ratio
        new.job.wait(timeout=60)
        assert new.job.status == Status.COMPLETED
    finally:
        panel.close()
