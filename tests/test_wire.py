"""The wire adapters (``sora_widgets/wire``): bodies, answers, hints, synonyms, and where
the key goes. Over real loopback HTTP: the emulator in each style, and a small recording
server standing for a gateway whose video lives on a CDN.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from sora_widgets.core.errors import BadRequestError, NotFoundError
from sora_widgets.core.lifecycle import RelayStatus, relay_status_of
from sora_widgets.core.models import VideoRequest
from sora_widgets.core.retry import Backoff
from sora_widgets.emulator import EmulatorConfig, start_emulator
from sora_widgets.relay.client import SoraClient, parse_task
from sora_widgets.relay.openai import content_url
from sora_widgets.relay.styles import STYLES, adapter_for, poll_hint_seconds

from .conftest import VIP_KEY
from .doubles import Answer, Request, ScriptedRelay

FAST = Backoff(base=0.01, cap=0.05)
#: The gateway words of issue 15, and what each means.
SYNONYMS = {
    "pending": RelayStatus.QUEUED, "submitted": RelayStatus.QUEUED,
    "processing": RelayStatus.IN_PROGRESS, "running": RelayStatus.IN_PROGRESS,
    "succeeded": RelayStatus.COMPLETED, "success": RelayStatus.COMPLETED,
    "finished": RelayStatus.COMPLETED,
    "error": RelayStatus.FAILED, "cancelled": RelayStatus.FAILED, "expired": RelayStatus.FAILED,
}


def png_data_uri(size: tuple[int, int] = (64, 36)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def quick(style: str, **changes: Any) -> EmulatorConfig:
    values: dict[str, Any] = {"style": style, "time_scale": 0.01, "seed": 5,
                              "queue_seconds": (1.0, 1.0), "run_seconds": (6.0, 6.0),
                              "stall_probability": 0.0}
    values.update(changes)
    return EmulatorConfig(**values)


def wait_final(client: SoraClient, task_id: str, timeout: float = 15.0) -> list[Any]:
    """Every snapshot of the task until a final one (a deadline, no sleep-and-hope)."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = client.retrieve(task_id)
        seen.append(snap)
        if snap.is_final:
            return seen
        time.sleep(0.01)
    raise AssertionError(f"not final in time: {seen[-1:]}")


# -- request bodies -------------------------------------------------------------------------


def test_artifex_body_is_the_relay_page_shape(home: Path) -> None:
    request = VideoRequest.create("a fox", style="artifex", aspect_ratio="9:16",
                                  image=["https://e.com/a.png", "https://e.com/b.png"])
    assert adapter_for("artifex").submit_body(request) == {"json": {
        "model": "sora-2", "prompt": "a fox", "aspect_ratio": "9:16", "duration": 12,
        "image": ["https://e.com/a.png", "https://e.com/b.png"]}}


def test_openai_body_sends_only_the_sdk_fields_with_seconds_as_text(home: Path) -> None:
    wire = adapter_for("openai")
    plain = VideoRequest.create("a fox", style="openai", model="sora-2-pro", size="1024x1792",
                                seconds=12)
    assert wire.submit_body(plain) == {"json": {"model": "sora-2-pro", "prompt": "a fox",
                                                "size": "1024x1792", "seconds": "12"}}
    linked = VideoRequest.create("a fox", style="openai", image="https://e.com/a.png")
    assert wire.submit_body(linked)["json"]["input_reference"] == "https://e.com/a.png"
    # An inline image (a local file, a last frame) goes as a multipart file part.
    uri = png_data_uri()
    inline = VideoRequest.create("a fox", style="openai", image=uri)
    body = wire.submit_body(inline)
    assert set(body) == {"data", "files"} and body["data"]["seconds"] == "4"
    name, data, mime = body["files"]["input_reference"]
    assert (name, mime) == ("input_reference.png", "image/png")
    assert data == base64.b64decode(uri.split(",", 1)[1])
    built = httpx.Client().build_request("POST", "http://relay.test/v1/videos", **body)
    assert built.headers["content-type"].startswith("multipart/form-data; boundary=")
    content = built.read()
    assert b'name="input_reference"; filename="input_reference.png"' in content
    assert b'name="seconds"\r\n\r\n4\r\n' in content


def test_a_request_goes_only_to_its_own_style(home: Path) -> None:
    client = SoraClient(VIP_KEY, "http://127.0.0.1:9", style="openai", warn_cleartext=False)
    with pytest.raises(Exception) as info:
        client.submit(VideoRequest.create("x", style="artifex"))
    assert "artifex style" in str(info.value) and "nothing was sent" in str(info.value)
    assert client.style == "openai" and "style='openai'" in repr(client)
    with pytest.raises(Exception, match="artifex, openai"):
        adapter_for("grpc")
    assert STYLES == ("artifex", "openai", "router")


# -- answers --------------------------------------------------------------------------------


def test_openai_answer_has_no_link_and_points_at_content(home: Path) -> None:
    payload = {"id": "video_abc", "object": "video", "model": "sora-2", "status": "succeeded",
               "progress": 100, "created_at": 1, "completed_at": 1714200180,
               "expires_at": 1714203780, "size": "1280x720", "seconds": "8",
               "remixed_from_video_id": None, "error": None}
    response = httpx.Response(200, json=payload, headers={"openai-poll-after-ms": "1500"},
                              request=httpx.Request("GET", "https://gw.example/v1/videos/x"))
    snap = parse_task(response, None, adapter_for("openai"), "https://gw.example/api")
    assert snap.relay_status is RelayStatus.COMPLETED and snap.is_final
    assert snap.video_url is None
    assert snap.fetch_url == "https://gw.example/api/v1/videos/video_abc/content"
    assert (snap.expires_at, snap.poll_after, snap.completed_at) == (1714203780.0, 1.5,
                                                                    1714200180.0)
    assert content_url("https://gw.example/", "a/b") == \
        "https://gw.example/v1/videos/a%2Fb/content"


def test_artifex_answer_fetches_its_video_url(home: Path) -> None:
    payload = {"id": "v_1", "status": "completed", "video_url": "https://cdn.example/v.mp4"}
    response = httpx.Response(200, json=payload,
                              request=httpx.Request("GET", "https://relay.example/v1/videos/v"))
    snap = parse_task(response, None, adapter_for("artifex"), "https://relay.example")
    assert snap.fetch_url == snap.video_url == "https://cdn.example/v.mp4"
    assert snap.poll_after is None and snap.expires_at is None


@pytest.mark.parametrize(("raw", "seconds"), [("1500", 1.5), ("0", 0.0), (None, None),
                                              ("soon", None), ("-5", None), ("nan", None),
                                              ("99999999", 600.0)])
def test_poll_hint_header(raw: str | None, seconds: float | None) -> None:
    headers = httpx.Headers({} if raw is None else {"openai-poll-after-ms": raw})
    assert poll_hint_seconds(headers) == seconds


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(("word", "meaning"), sorted(SYNONYMS.items()))
def test_every_synonym_maps_through_each_adapter(style: str, word: str,
                                                 meaning: RelayStatus) -> None:
    for spelled in (word, word.upper(), f" {word} "):
        snap = adapter_for(style).snapshot({"id": "t", "status": spelled}, base_url="http://r")
        assert snap.relay_status is meaning
    assert relay_status_of(word) is meaning


@pytest.mark.parametrize("style", STYLES)
def test_a_word_never_seen_is_kept_raw_not_guessed(style: str) -> None:
    for word in ("moderating", "unknown", "paused", "queued_for_review", "partial_success"):
        snap = adapter_for(style).snapshot({"id": "t", "status": word}, base_url="http://r")
        assert snap.status == word and snap.relay_status is None and not snap.is_final


# -- against the emulator -------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_every_synonym_over_http(style: str) -> None:
    """Each gateway word, answered by the emulator in each style, read as what it means."""
    words = {status.value: [w for w, m in SYNONYMS.items() if m is status]
             for status in RelayStatus}
    seen: dict[str, RelayStatus | None] = {}
    with start_emulator(quick(style)) as emu, SoraClient(VIP_KEY, emu.base_url, style=style,
                                                         backoff=FAST) as client:
        for round_ in range(3):
            mapping: dict[str, str | list[str]] = {
                status: names[round_ % len(names)] for status, names in words.items()}
            emu.config.status_synonyms = mapping
            tasks = []
            for fails in (0.0, 1.0):
                emu.config.failure_rate = fails
                tasks.append(client.submit(
                    VideoRequest.create(f"round {round_}", style=style) if style != "router"
                    # checked by the router emulator itself (the catalogue is helper G's)
                    else VideoRequest(f"round {round_}", model="google/veo-3.1", duration=8,
                                      style="router")))
            for queued in tasks:
                seen[str(queued.status)] = queued.relay_status
                for snap in wait_final(client, queued.id):
                    seen[str(snap.status)] = snap.relay_status
    assert {w: m for w, m in seen.items() if w in SYNONYMS} == SYNONYMS


@pytest.mark.parametrize(("client_style", "relay_style", "foreign"), [
    ("artifex", "openai", "aspect_ratio"), ("openai", "artifex", "size")])
def test_the_wrong_style_gets_400_and_creates_nothing(home: Path, client_style: str,
                                                      relay_style: str, foreign: str) -> None:
    with start_emulator(quick(relay_style)) as emu, \
            SoraClient(VIP_KEY, emu.base_url, style=client_style) as client:
        with pytest.raises(BadRequestError) as info:
            client.submit(VideoRequest.create("a fox", style=client_style))
        assert info.value.status_code == 400 and foreign in str(info.value)
        assert emu.stats()["tasks_created"] == 0
        # Every field of the other style is refused, one at a time.
        fields = ("aspect_ratio", "duration", "image") if relay_style == "openai" \
            else ("size", "seconds", "input_reference")
        for name in fields:
            value = {"aspect_ratio": "16:9", "duration": 12, "image": "https://e.com/a.png",
                     "size": "1280x720", "seconds": "8",
                     "input_reference": "https://e.com/a.png"}[name]
            body = {"model": "sora-2", "prompt": "a fox", name: value}
            answer = httpx.post(f"{emu.base_url}/v1/videos", json=body,
                                headers={"Authorization": f"Bearer {VIP_KEY}"})
            assert answer.status_code == 400, name
            assert answer.json()["error"]["param"] == name
        assert emu.stats()["tasks_created"] == 0


def test_openai_content_download_with_the_key_and_multipart_upload(
        home: Path, tmp_path: Path) -> None:
    with start_emulator(quick("openai", strict_reference_size=True)) as emu, \
            SoraClient(VIP_KEY, emu.base_url, style="openai", backoff=FAST) as client:
        request = VideoRequest.create("a fox", style="openai", image=png_data_uri((1280, 720)),
                                      seconds=8)
        done = wait_final(client, client.submit(request).id)[-1]
        assert done.relay_status is RelayStatus.COMPLETED and done.video_url is None
        assert done.fetch_url is not None and done.fetch_url.endswith("/content")
        assert done.expires_at is not None and done.expires_at > time.time()
        path = client.download(done.fetch_url, tmp_path / "clip.mp4")
        assert path.read_bytes()[4:8] == b"ftyp" and emu.stats()["video_downloads"] == 1
        # Expired content: 410, a clear error, no file.
        emu.expire_links()
        with pytest.raises(NotFoundError, match="410"):
            client.download(done.fetch_url, tmp_path / "late.mp4")
        assert not (tmp_path / "late.mp4").exists()


# -- where the key goes ---------------------------------------------------------------------


@pytest.fixture
def gateway() -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    """A gateway on 127.0.0.1 whose videos live on a 'CDN' at localhost (another origin);
    ``seen`` lists (path, Authorization header) of every request."""
    seen: list[tuple[str, str | None]] = []

    def answer(request: Request) -> Answer:
        seen.append((request.path, request.header("Authorization")))
        cdn = f"http://localhost:{relay.port}/cdn/clip.mp4"
        if request.path.split("?")[0].endswith("/content"):
            return Answer(302, headers={"Location": cdn})
        if request.path.startswith("/v1/videos/"):
            return Answer(200, json.dumps({"id": "v_1", "status": "completed",
                                           "video_url": cdn}).encode())
        return Answer(200, b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64, content_type="video/mp4")

    with ScriptedRelay(answer) as relay:
        yield relay.base_url, seen


@pytest.mark.parametrize("style", STYLES)
def test_the_key_goes_to_the_relay_never_to_the_cdn(
        home: Path, tmp_path: Path, style: str,
        gateway: tuple[str, list[tuple[str, str | None]]]) -> None:
    base_url, seen = gateway
    with SoraClient(VIP_KEY, base_url, style=style, backoff=FAST) as client:
        snap = client.retrieve("v_1")
        assert snap.fetch_url is not None
        client.download(snap.fetch_url, tmp_path / "clip.mp4")
    assert (tmp_path / "clip.mp4").is_file()
    auth = {path: header for path, header in seen}
    assert auth["/v1/videos/v_1"] == f"Bearer {VIP_KEY}"
    assert "/cdn/clip.mp4" in auth and auth["/cdn/clip.mp4"] is None
    if style == "openai":    # the /content endpoint is the relay's own: the key goes there
        assert auth["/v1/videos/v_1/content"] == f"Bearer {VIP_KEY}"
    elif style == "router":  # no signed urls in this answer: the relay's own /content?index=0
        assert auth["/v1/videos/v_1/content?index=0"] == f"Bearer {VIP_KEY}"
    else:                    # the seed's relay links straight to the CDN
        assert "/v1/videos/v_1/content" not in auth
