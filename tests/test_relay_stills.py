"""Posters from the relay's stills (issue 23, item 7): on a style that renders them (openai:
``GET /v1/videos/{id}/content?variant=thumbnail|spritesheet``, with the key, on the relay's
own origin), the saved video's poster is the relay's thumbnail and its spritesheet is kept
beside it; a still that is missing, not an image, too big or too slow gives way to the
poster decoded from the video (PyAV), logged without the key. The other styles render
none: nothing is asked for, the poster is decoded.

A recording proxy in front of the emulator sees every request the package sends, and may
answer a still itself (the emulator always renders good ones).
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

import sora_widgets as sw
from sora_widgets.core.errors import APIError
from sora_widgets.media.frames import poster
from sora_widgets.relay import rules
from sora_widgets.relay.client import SoraClient
from sora_widgets.studio import studio as studio_module

from .conftest import TEST_TIME_SCALE, VIP_KEY
from .doubles import Answer, RecordingProxy, Request, ScriptedRelay
from .doubles.styles import Styled, styled_relay

STILL = "variant="


@pytest.fixture
def answer_stills() -> list[Callable[[Request], Answer] | None]:
    """What the proxy answers to a still request in place of the emulator (None: forward)."""
    return [None]


@pytest.fixture
def openai(studio: studio_module.Studio, monkeypatch: pytest.MonkeyPatch,
           answer_stills: list[Callable[[Request], Answer] | None]) -> Iterator[Styled]:
    """A paid openai-style relay behind a recording proxy."""
    def answer(request: Request) -> Answer | None:
        own = answer_stills[0]
        return own(request) if own is not None and STILL in request.path else None

    with styled_relay("openai", monkeypatch, key=VIP_KEY, time_scale=TEST_TIME_SCALE,
                      front=lambda port: RecordingProxy(port, answer)) as relay:
        yield relay


def stills_sent(relay: Styled) -> list[Request]:
    proxy: RecordingProxy = relay.front
    return proxy.matching(STILL)


def relay_still(relay: Styled, task_id: str, variant: str) -> bytes:
    """The still as the emulator renders it (asked directly, not through the proxy)."""
    answer = httpx.get(f"{relay.emu.base_url}/v1/videos/{task_id}/content",
                       params={"variant": variant}, timeout=30,
                       headers={"Authorization": f"Bearer {VIP_KEY}"})
    answer.raise_for_status()
    return answer.content


def decoded_poster(video: Path, tmp_path: Path) -> bytes:
    """The poster PyAV decodes from ``video`` (deterministic: the same bytes each time)."""
    return poster(video, tmp_path / "decoded.poster.jpg").read_bytes()


def leftovers(video: Path) -> list[str]:
    """Half-fetched stills left in the videos folder (there must be none)."""
    return sorted(p.name for p in video.parent.iterdir() if p.name.startswith("."))


def jpeg(width: int = 64, height: int = 36) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(out, "JPEG")
    return out.getvalue()


# -- the relay's stills ---------------------------------------------------------------------


def test_the_relays_thumbnail_is_the_poster_and_its_spritesheet_is_kept(
        openai: Styled, tmp_path: Path) -> None:
    job = sw.generate("a heron at dawn").wait(timeout=30)
    assert job.local_path is not None and job.id is not None
    assert job.poster_path is not None and job.spritesheet_path is not None
    assert job.poster_path.parent == job.spritesheet_path.parent == job.local_path.parent
    assert job.poster_path.read_bytes() == relay_still(openai, job.id, "thumbnail")
    assert job.spritesheet_path.read_bytes() == relay_still(openai, job.id, "spritesheet")
    assert job.poster_path.read_bytes() != decoded_poster(job.local_path, tmp_path)
    sent = stills_sent(openai)
    assert sorted(r.path.rpartition("=")[2] for r in sent) == ["spritesheet", "thumbnail"]
    assert all(r.authorization == f"Bearer {VIP_KEY}" for r in sent)
    assert leftovers(job.local_path) == []
    # Recorded the way the poster is: a new kernel's handle finds both beside the video.
    fresh = studio_module.Studio()
    try:
        (again,) = fresh.jobs()
        assert again is not job
        assert (again.poster_path, again.spritesheet_path) == (job.poster_path,
                                                               job.spritesheet_path)
    finally:
        fresh.close()


def _picture_too_big() -> bytes:
    out = io.BytesIO()          # 49 M pixels of one bit: a small file, a huge picture
    Image.new("1", (7000, 7000)).save(out, "PNG")
    return out.getvalue()


BAD_STILLS: dict[str, Callable[[], Answer]] = {
    "missing": lambda: Answer(404, b'{"error": {"message": "no thumbnail for this video"}}'),
    "not an image": lambda: Answer(200, b"<html>an error page</html>", content_type="image/webp"),
    "cut short": lambda: Answer(200, jpeg(640, 360)[:400], content_type="image/jpeg"),
    # A good JPEG, then padding past the cap (a decoder ignores what follows the image).
    "a huge file": lambda: Answer(200, jpeg() + bytes(rules.MAX_STILL_BYTES),
                                  content_type="image/jpeg"),
    "a huge picture": lambda: Answer(200, _picture_too_big(), content_type="image/png"),
}


@pytest.mark.parametrize("case", sorted(BAD_STILLS))
def test_a_bad_still_gives_way_to_the_decoded_poster(
        case: str, openai: Styled, answer_stills: list[Callable[[Request], Answer] | None],
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = BAD_STILLS[case]()
    answer_stills[0] = lambda request: bad
    caplog.set_level(logging.INFO, logger="sora_widgets")
    job = sw.generate("a heron at dawn").wait(timeout=30)
    assert job.status == "completed" and job.local_path is not None
    assert job.poster_path is not None and job.spritesheet_path is None
    assert job.poster_path.read_bytes() == decoded_poster(job.local_path, tmp_path)
    assert len(stills_sent(openai)) == 2 and leftovers(job.local_path) == []
    logged = caplog.text
    assert "thumbnail" in logged and "spritesheet" in logged and VIP_KEY not in logged


def test_a_slow_still_gives_way_to_the_decoded_poster(
        openai: Styled, answer_stills: list[Callable[[Request], Answer] | None],
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hold(request: Request) -> Answer:
        release.wait(30)
        return Answer(200, jpeg(), content_type="image/jpeg")

    answer_stills[0] = hold
    monkeypatch.setattr(rules, "STILL_TIMEOUT", 1.0)
    try:
        job = sw.generate("a heron at dawn").wait(timeout=30)
        assert job.poster_path is not None and job.spritesheet_path is None
        assert job.poster_path.read_bytes() == decoded_poster(job.local_path, tmp_path)
        assert len(stills_sent(openai)) == 2 and leftovers(job.local_path) == []
    finally:
        release.set()


def test_the_key_goes_to_the_relay_only(
        openai: Styled, answer_stills: list[Callable[[Request], Answer] | None]) -> None:
    """A still the relay redirects to a storage host is fetched there without the key."""
    image = jpeg()
    with ScriptedRelay(lambda request: Answer(200, image, content_type="image/jpeg")) as cdn:
        answer_stills[0] = lambda request: Answer(
            302, b"", headers={"Location": f"{cdn.base_url}/stills/{len(cdn.requests)}.jpg"})
        job = sw.generate("a heron at dawn").wait(timeout=30)
        assert job.poster_path is not None and job.spritesheet_path is not None
        assert job.poster_path.read_bytes() == job.spritesheet_path.read_bytes() == image
        assert len(cdn.requests) == 2
        for request in cdn.requests:
            assert request.header("Authorization") is None
            assert VIP_KEY not in str(request.headers) and VIP_KEY not in request.path
    assert all(r.authorization == f"Bearer {VIP_KEY}" for r in stills_sent(openai))


def test_the_sync_client_bounds_a_still_too(tmp_path: Path) -> None:
    huge = b"\xff" * (rules.MAX_STILL_BYTES + 1)
    with ScriptedRelay(lambda request: Answer(200, huge, content_type="image/jpeg")) as relay, \
            SoraClient(VIP_KEY, relay.base_url, style="openai") as client, \
            pytest.raises(APIError, match=r"the thumbnail is .* more than the 8 MB cap"):
        client.fetch_still("video_1", "thumbnail", tmp_path / "thumb.webp")
    assert list(tmp_path.iterdir()) == []


# -- styles without stills ------------------------------------------------------------------


@pytest.mark.parametrize("style", ["artifex", "router"])
def test_no_still_is_asked_for_where_the_style_renders_none(
        style: str, studio: studio_module.Studio, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    with styled_relay(style, monkeypatch, key=VIP_KEY, time_scale=TEST_TIME_SCALE,
                      front=RecordingProxy) as relay:
        job = sw.generate("a heron at dawn").wait(timeout=30)
        proxy: RecordingProxy = relay.front
        paths = [r.path for r in proxy.sent]
    assert job.local_path is not None and paths
    assert not [p for p in paths if STILL in p or "thumbnail" in p or "spritesheet" in p]
    assert job.poster_path is not None and job.spritesheet_path is None
    assert job.poster_path.read_bytes() == decoded_poster(job.local_path, tmp_path)


def test_history_scrubs_the_relays_spritesheet_on_hover(
        openai: Styled, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A History card carries the published spritesheet and its grid (the emulator's 10
    frames in 5 columns read as 5 x 2), which history.js shows frame by frame on hover; a
    take with no sheet (a style that renders none) carries none."""
    from sora_widgets.media.posters import sprite_grid
    from sora_widgets.ui.history import History

    monkeypatch.chdir(tmp_path)
    job = sw.generate("a heron at dawn").wait(timeout=30)
    assert sprite_grid(job.spritesheet_path, job.aspect_ratio) == (5, 2)
    history = History()
    try:
        (card,) = history.view.cards
        sprites = card["sprites"]
        assert (sprites["cols"], sprites["rows"]) == (5, 2)
        assert sprites["src"].startswith("sora_videos/")
        assert job.spritesheet_path is not None
        assert (tmp_path / sprites["src"]).read_bytes() == job.spritesheet_path.read_bytes()
    finally:
        history.close()
    not_a_sheet = tmp_path / "garbage.jpg"
    not_a_sheet.write_bytes(b"not an image")
    assert sprite_grid(not_a_sheet, "16:9") is None
    assert sprite_grid(None, "16:9") is None
    strip = tmp_path / "strip.jpg"
    strip.write_bytes(jpeg(64 * 8, 36))          # one row of 8 tiles of 64x36
    assert sprite_grid(strip, "16:9") == (8, 1)
