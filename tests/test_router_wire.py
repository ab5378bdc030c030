"""The router style on the wire (issue 23), and remix, extend and stills on the openai one.

Over real loopback HTTP: the emulator in the router and openai styles, a recording server
standing for a router (to see the exact POST body) and one standing for a storage host
behind signed links (to see that the key never reaches it).
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from PIL import Image

from sora_widgets.core.errors import SubmissionUnknown, ValidationError
from sora_widgets.core.lifecycle import RelayStatus
from sora_widgets.core.models import TaskSnapshot, VideoRequest
from sora_widgets.core.retry import Backoff
from sora_widgets.emulator import EmulatorConfig, RunningEmulator, start_emulator
from sora_widgets.relay.client import AsyncSoraClient, SoraClient, parse_task
from sora_widgets.relay.styles import adapter_for

from .conftest import VIP_KEY

FAST = Backoff(base=0.01, cap=0.05)
FRAME = "https://img.example/first.png"
LAST = "https://img.example/last.png"


@dataclass(frozen=True)
class RouterRequest(VideoRequest):
    """A request with the fields helper G adds to VideoRequest (read with getattr)."""

    seed: int | None = None
    last_frame: str | None = None
    resolution: str | None = None
    generate_audio: bool | None = None


def veo(prompt: str = "a fox in the snow", **fields: Any) -> RouterRequest:
    values: dict[str, Any] = {"model": "google/veo-3.1", "duration": 8, "style": "router"}
    values.update(fields)
    return RouterRequest(prompt, **values)


def quick(style: str, **changes: Any) -> EmulatorConfig:
    values: dict[str, Any] = {"style": style, "time_scale": 0.01, "seed": 3,
                              "queue_seconds": (1.0, 1.0), "run_seconds": (6.0, 6.0),
                              "stall_probability": 0.0}
    values.update(changes)
    return EmulatorConfig(**values)


def wait_final(client: SoraClient, task_id: str, timeout: float = 20.0) -> TaskSnapshot:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = client.retrieve(task_id)
        if snap.is_final:
            return snap
        time.sleep(0.01)
    raise AssertionError(f"{task_id} not final in time")


# -- a recording server ---------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    """Records (method, path, Authorization, body); answers like a router, or proxies
    ``/videos/...`` to ``upstream`` (a storage host in front of the emulator's links)."""

    seen: ClassVar[list[dict[str, Any]]]
    upstream: ClassVar[str | None]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._record(b"")
        if self.upstream is not None:
            answer = httpx.get(self.upstream + self.path)
            self._answer(answer.status_code, answer.content,
                         answer.headers.get("content-type", "video/mp4"))
        else:
            self._answer(200, json.dumps({"id": "job_1", "status": "in_progress"}).encode(),
                         "application/json")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._record(body)
        self._answer(202, json.dumps({"id": "job_1", "polling_url": "/x",
                                      "status": "pending"}).encode(), "application/json")

    def _record(self, body: bytes) -> None:
        self.seen.append({"method": self.command, "path": self.path, "body": body,
                          "auth": self.headers.get("Authorization")})


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[dict[str, Any]], type[_Recorder]]]:
    seen: list[dict[str, Any]] = []
    handler = type("Recording", (_Recorder,), {"seen": seen, "upstream": None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen, handler
    server.shutdown()
    server.server_close()


# -- the POST body --------------------------------------------------------------------------


def test_the_router_post_has_exactly_the_fields_of_the_request(
        home: Path, recorder: tuple[str, list[dict[str, Any]], type[_Recorder]]) -> None:
    origin, seen, _ = recorder
    with SoraClient(VIP_KEY, origin + "/api", style="router", backoff=FAST) as client:
        full = client.submit(veo(aspect_ratio="9:16", images=(FRAME,), seed=42, last_frame=LAST,
                                 resolution="1080p", generate_audio=False))
        client.submit(veo("just words"))
    assert full.id == "job_1" and full.relay_status is RelayStatus.QUEUED
    assert [(s["method"], s["path"]) for s in seen] == [("POST", "/api/v1/videos")] * 2
    body = json.loads(seen[0]["body"])
    assert body == {
        "model": "google/veo-3.1", "prompt": "a fox in the snow", "duration": 8,
        "aspect_ratio": "9:16", "resolution": "1080p", "generate_audio": False, "seed": 42,
        "frame_images": [
            {"type": "image_url", "image_url": {"url": FRAME}, "frame_type": "first_frame"},
            {"type": "image_url", "image_url": {"url": LAST}, "frame_type": "last_frame"}]}
    assert isinstance(body["duration"], int) and isinstance(body["seed"], int)
    assert json.loads(seen[1]["body"]) == {"model": "google/veo-3.1", "prompt": "just words",
                                           "duration": 8, "aspect_ratio": "16:9"}
    for record in seen:
        assert not {"size", "seconds", "image", "input_reference"} & set(json.loads(record["body"]))


def test_a_router_request_that_cannot_be_sent_is_refused_before_sending(
        home: Path, recorder: tuple[str, list[dict[str, Any]], type[_Recorder]]) -> None:
    origin, seen, _ = recorder
    with SoraClient(VIP_KEY, origin + "/api", style="router", backoff=FAST) as client:
        for bad in (RouterRequest(None, images=(FRAME,), style="router"),
                    veo(images=(FRAME, LAST)), veo(seed=True), veo(seed="7")):
            with pytest.raises(ValidationError, match="nothing was sent"):
                client.submit(bad)
        with pytest.raises(ValidationError, match="no remix endpoint"):
            client.remix("job_1", "again")
        with pytest.raises(ValidationError, match="no extension endpoint"):
            client.extend("job_1", "more", 4)
        with pytest.raises(ValidationError, match="renders no stills"):
            client.fetch_still("job_1", "thumbnail", home / "t.webp")
    assert seen == []


# -- answers --------------------------------------------------------------------------------


def _answer(payload: dict[str, Any]) -> TaskSnapshot:
    response = httpx.Response(200, json=payload,
                              request=httpx.Request("GET", "https://r.example/api/v1/videos/j"))
    return parse_task(response, None, adapter_for("router"), "https://r.example/api")


def test_router_answers_statuses_links_cost_and_errors(home: Path) -> None:
    assert _answer({"id": "j", "polling_url": "/x", "status": "pending"}).relay_status \
        is RelayStatus.QUEUED
    done = _answer({"id": "j", "status": "completed", "usage": {"cost": 3.2},
                    "unsigned_urls": ["https://elsewhere.example/steal?index=0"]})
    # built from the base URL, never taken from the answer: the key goes with it
    assert done.fetch_url == "https://r.example/api/v1/videos/j/content?index=0"
    assert done.extra["billed_usd"] == 3.2 and isinstance(done.extra["billed_usd"], float)
    signed = _answer({"id": "j", "status": "completed", "urls": ["https://cdn.example/v.mp4"],
                      "unsigned_urls": ["https://r.example/api/v1/videos/j/content?index=0"]})
    assert signed.fetch_url == "https://cdn.example/v.mp4"
    assert _answer({"id": "j", "status": "in_progress", "urls": ["https://c/v"]}).fetch_url \
        is None
    for word in ("failed", "cancelled", "expired"):
        failed = _answer({"id": "j", "status": word, "error": "content moderation"})
        assert failed.relay_status is RelayStatus.FAILED and failed.fetch_url is None
        assert failed.error is not None and failed.error.message == "content moderation"
    detailed = _answer({"id": "j", "status": "failed",
                        "error": {"message": "upstream timeout", "code": 504}})
    assert detailed.error is not None and (detailed.error.message, detailed.error.code) == (
        "upstream timeout", "504")
    for cost in ("3.2", True, float("nan"), float("inf"), -1, 1e9, None):
        snap = adapter_for("router").snapshot({"id": "j", "status": "completed",
                                               "usage": {"cost": cost}}, base_url="http://r")
        assert "billed_usd" not in snap.extra
    assert "billed_usd" not in _answer({"id": "j", "status": "completed", "usage": 5}).extra


# -- against the router emulator ------------------------------------------------------------


@pytest.fixture
def router_emu() -> Iterator[RunningEmulator]:
    with start_emulator(quick("router")) as emu:
        yield emu


def test_content_with_the_key_from_the_relay_and_billed_cost(
        home: Path, tmp_path: Path, router_emu: RunningEmulator) -> None:
    with SoraClient(VIP_KEY, router_emu.api_base_url, style="router", backoff=FAST) as client:
        queued = client.submit(veo())
        assert queued.relay_status is RelayStatus.QUEUED and "billed_usd" not in queued.extra
        done = wait_final(client, queued.id)
        assert done.relay_status is RelayStatus.COMPLETED
        assert done.fetch_url == (f"{router_emu.api_base_url}/v1/videos/{queued.id}"
                                  "/content?index=0")
        assert done.extra["billed_usd"] == pytest.approx(0.40 * 8)
        path = client.download(done.fetch_url, tmp_path / "clip.mp4")
    assert path.read_bytes()[4:8] == b"ftyp"
    # the content proxy is the relay's own and needs the key: so the client sent it
    assert httpx.get(done.fetch_url).status_code == 401
    router_emu.config.prices = {"router": {"google/veo-3.1": 0.45}}
    with SoraClient(VIP_KEY, router_emu.api_base_url, style="router", backoff=FAST) as client:
        again = wait_final(client, client.submit(veo(duration=4)).id)
    assert again.extra["billed_usd"] == pytest.approx(0.45 * 4)


def test_a_signed_url_is_fetched_without_the_key(
        home: Path, tmp_path: Path, router_emu: RunningEmulator,
        recorder: tuple[str, list[dict[str, Any]], type[_Recorder]]) -> None:
    storage, seen, handler = recorder
    handler.upstream = router_emu.base_url
    router_emu.config.signed_urls = True
    router_emu.config.signed_url_base = storage
    with SoraClient(VIP_KEY, router_emu.api_base_url, style="router", backoff=FAST) as client:
        done = wait_final(client, client.submit(veo(seed=9)).id)
        assert done.fetch_url is not None and done.fetch_url.startswith(storage + "/videos/")
        client.download(done.fetch_url, tmp_path / "clip.mp4")
    assert (tmp_path / "clip.mp4").read_bytes()[4:8] == b"ftyp"
    assert [s["path"].split("?")[0] for s in seen] == [f"/videos/{done.id}.mp4"]
    assert all(s["auth"] is None for s in seen)     # the key never reached the signed host


def test_the_async_client_speaks_router_too(home: Path, router_emu: RunningEmulator) -> None:
    import asyncio

    async def run() -> TaskSnapshot:
        client = AsyncSoraClient(VIP_KEY, router_emu.api_base_url, style="router",
                                 backoff=FAST)
        try:
            task = await client.submit(veo(seed=1))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                snap, _ = await client.retrieve_once(task.id)
                if snap.is_final:
                    return snap
                await asyncio.sleep(0.01)
            raise AssertionError("not final")
        finally:
            await client.aclose()

    snap = asyncio.run(run())
    assert snap.relay_status is RelayStatus.COMPLETED and "billed_usd" in snap.extra


# -- remix, extend and stills on the openai style -------------------------------------------


@pytest.fixture
def openai_emu() -> Iterator[RunningEmulator]:
    with start_emulator(quick("openai")) as emu:
        yield emu


def _finished(client: SoraClient) -> TaskSnapshot:
    request = VideoRequest.create("a lighthouse", style="openai", seconds=4)
    return wait_final(client, client.submit(request).id)


def test_remix_sends_one_post_to_the_remix_path(home: Path,
                                                openai_emu: RunningEmulator) -> None:
    with SoraClient(VIP_KEY, openai_emu.base_url, style="openai", backoff=FAST) as client:
        parent = _finished(client)
        posts = openai_emu.stats()["posts"]
        remix = client.remix(parent.id, "the same lighthouse at dawn")
        assert openai_emu.stats()["posts"] == posts + 1
        task = openai_emu.task(remix.id)
        assert task is not None and (task.parent_id, task.kind) == (parent.id, "remix")
        assert task.prompt == "the same lighthouse at dawn" and task.duration == 4
        assert wait_final(client, remix.id).relay_status is RelayStatus.COMPLETED
        answer = httpx.get(f"{openai_emu.base_url}/v1/videos/{remix.id}",
                           headers={"Authorization": f"Bearer {VIP_KEY}"}).json()
        assert answer["remixed_from_video_id"] == parent.id


def test_a_remix_whose_answer_is_lost_is_unknown_and_not_retried(
        home: Path, openai_emu: RunningEmulator) -> None:
    with SoraClient(VIP_KEY, openai_emu.base_url, style="openai", backoff=FAST) as client:
        parent = _finished(client)
        posts, created = openai_emu.stats()["posts"], openai_emu.stats()["tasks_created"]
        openai_emu.inject("accept_then_drop")
        with pytest.raises(SubmissionUnknown):
            client.remix(parent.id, "again")
        assert openai_emu.stats()["posts"] == posts + 1
        assert openai_emu.stats()["tasks_created"] == created + 1
        with pytest.raises(ValidationError, match="nothing was sent"):
            client.remix(parent.id, "   ")
        assert openai_emu.stats()["posts"] == posts + 1


def test_extend_makes_a_longer_clip(home: Path, openai_emu: RunningEmulator) -> None:
    with SoraClient(VIP_KEY, openai_emu.base_url, style="openai", backoff=FAST) as client:
        parent = _finished(client)
        longer = client.extend(parent.id, "the camera pulls back", 8)
        task = openai_emu.task(longer.id)
        assert task is not None and (task.parent_id, task.kind, task.duration) == (
            parent.id, "extension", 12)
        assert wait_final(client, longer.id).relay_status is RelayStatus.COMPLETED
        with pytest.raises(ValidationError, match="nothing was sent"):
            client.extend(parent.id, "more", 0)


def test_stills_come_from_the_relay_with_the_key(home: Path, tmp_path: Path,
                                                openai_emu: RunningEmulator) -> None:
    with SoraClient(VIP_KEY, openai_emu.base_url, style="openai", backoff=FAST) as client:
        done = _finished(client)
        thumb = client.fetch_still(done.id, "thumbnail", tmp_path / "thumb.webp")
        sheet = client.fetch_still(done.id, "spritesheet", tmp_path / "sheet.jpg")
        with pytest.raises(ValidationError, match="variant"):
            client.fetch_still(done.id, "poster", tmp_path / "p.jpg")
    with Image.open(io.BytesIO(thumb.read_bytes())) as image:
        assert image.size == (640, 360)
    with Image.open(io.BytesIO(sheet.read_bytes())) as image:
        assert image.format == "JPEG" and image.size == (800, 180)   # 5 x 2 tiles of 160x90
    url = f"{openai_emu.base_url}/v1/videos/{done.id}/content?variant=thumbnail"
    assert httpx.get(url).status_code == 401


@pytest.mark.parametrize("style", ["artifex", "openai"])
def test_a_billed_cost_is_read_on_every_style(home: Path, style: str) -> None:
    with start_emulator(quick(style, report_cost="always")) as emu, \
            SoraClient(VIP_KEY, emu.base_url, style=style, backoff=FAST) as client:
        request = VideoRequest.create("a cost", style=style, **(
            {"seconds": 8} if style == "openai" else {}))
        queued = client.submit(request)
        assert queued.extra["billed_usd"] == pytest.approx(0.90 if style == "artifex" else 0.80)
        assert wait_final(client, queued.id).extra["billed_usd"] == queued.extra["billed_usd"]
