"""The emulator over real loopback HTTP: the relay contract, videos, links, faults, stats.

No mocks and no sleep-and-hope: tests poll with deadlines or compute expected times from
the task's schedule (``emu.task(id)``), with time scales that make a job last ~1 s.
"""

from __future__ import annotations

import ast
import asyncio
import email.utils
import io
import itertools
import json
import logging
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import av
import httpx
import pytest

from sora_widgets.emulator import EmulatorConfig, RunningEmulator, Task, start_emulator
from sora_widgets.emulator.tasks import VideoRequest, draw_task

from .doubles import wait_until

KEY = "sk-vip-test-7f3a9c51d2e8"
AUTH = {"Authorization": f"Bearer {KEY}"}
BODY = {"model": "sora-2", "prompt": "a cat wearing an astronaut helmet", "duration": 12}
ID_RE = re.compile(r"v_[0-9a-f]{24}")
FINAL = ("completed", "failed")
EMULATOR_DIR = Path(__file__).resolve().parents[1] / "sora_widgets" / "emulator"


def quick(**changes: Any) -> EmulatorConfig:
    """Jobs that finish ~0.1 s after submit (no queue, 10 s run at 1 % speed)."""
    values: dict[str, Any] = {
        "time_scale": 0.01, "seed": 7, "queue_seconds": (0.0, 0.0), "run_seconds": (10.0, 10.0),
    }
    values.update(changes)
    return EmulatorConfig(**values)


@pytest.fixture
def emu() -> Iterator[RunningEmulator]:
    with start_emulator(quick()) as running:
        yield running


@pytest.fixture
def client(emu: RunningEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers=AUTH, timeout=10) as c:
        yield c


def submit(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/videos", json={**BODY, **body})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def wait_final(client: httpx.Client, task_id: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data: dict[str, Any] = client.get(f"/v1/videos/{task_id}").json()
        if data["status"] in FINAL:
            return data
        time.sleep(0.01)
    raise AssertionError(f"task {task_id} not final after {timeout} s")


def completed_video(client: httpx.Client, **body: Any) -> tuple[dict[str, Any], bytes]:
    task = wait_final(client, submit(client, **body)["id"])
    assert task["status"] == "completed"
    response = httpx.get(task["video_url"])
    assert response.status_code == 200
    return task, response.content


# --- submit and lifecycle ------------------------------------------------------------------


def test_submit_answer_has_the_contract_shape(client: httpx.Client) -> None:
    data = submit(client)
    assert set(data) == {"id", "task_id", "object", "status", "progress", "video_url", "model"}
    assert ID_RE.fullmatch(data["id"]) and data["task_id"] == data["id"]
    assert (data["object"], data["status"], data["progress"]) == ("video", "queued", 0)
    assert data["video_url"] is None and data["model"] == "sora-2"


def test_lifecycle_queued_in_progress_completed() -> None:
    config = quick(queue_seconds=(30.0, 30.0), run_seconds=(100.0, 100.0), stall_probability=0)
    with start_emulator(config) as emu, httpx.Client(headers=AUTH) as client:
        task_id = client.post(f"{emu.base_url}/v1/videos", json=BODY).json()["id"]
        schedule = emu.task(task_id)
        assert schedule is not None
        assert schedule.started_at == pytest.approx(schedule.created_at + 0.3)
        assert schedule.completed_at == pytest.approx(schedule.started_at + 1.0)
        seen: list[tuple[str, int]] = []
        while not seen or seen[-1][0] not in FINAL:
            data = client.get(f"{emu.base_url}/v1/videos/{task_id}").json()
            seen.append((data["status"], data["progress"]))
            time.sleep(0.01)
        noticed = time.time()
    statuses = [s for s, _ in seen]
    first_done = statuses.index("completed")
    assert statuses[0] == "queued" and "in_progress" in statuses
    assert statuses == sorted(statuses, key=["queued", "in_progress", "completed"].index)
    progress = [p for _, p in seen]
    assert progress == sorted(progress), "progress must never go down"
    running = {p for s, p in seen if s == "in_progress"}
    assert len(running) >= 5 and max(running) <= 99
    assert seen[first_done] == ("completed", 100)
    assert noticed >= schedule.completed_at
    assert data["video_url"].startswith(f"{emu.base_url}/videos/{task_id}.mp4?")
    assert data["completed_at"] == int(schedule.completed_at)
    assert data["created_at"] == int(schedule.created_at)
    assert (data["aspect_ratio"], data["duration"], data["task_id"]) == ("16:9", 12, task_id)


def test_failure_rate_one_fails_every_job_with_an_error(emu: RunningEmulator,
                                                        client: httpx.Client) -> None:
    emu.config.failure_rate = 1.0
    data = wait_final(client, submit(client)["id"])
    assert data["status"] == "failed" and data["video_url"] is None
    assert data["error"]["code"] in {"content_policy", "generation_failed"}
    assert data["error"]["message"]
    assert 0 <= data["progress"] < 100
    task = emu.task(data["id"])
    assert task is not None and task.fails and data["completed_at"] == int(task.completed_at)


def test_schedule_is_seeded_monotonic_and_exact_with_a_stall() -> None:
    import random

    request = VideoRequest("sora-2", "p", "16:9", 12, ())

    def draw(seed: int) -> Task:
        return draw_task(random.Random(seed), request, task_id="v_x", now=1000.0, time_scale=1.0,
                         queue_seconds=(0, 20), run_seconds=(60, 180), stall_probability=1.0,
                         failure_rate=0.0)

    task = draw(3)
    assert task == draw(3) and task != draw(4)
    run = task.completed_at - task.started_at
    assert 60 <= run <= 180 and 0 <= task.started_at - task.created_at <= 20
    knots = list(zip(task.curve_t, task.curve_p, strict=True))
    flats = [(t0, t1, p) for (t0, p), (t1, q) in itertools.pairwise(knots) if p == q]
    assert len(flats) == 1
    t0, t1, value = flats[0]
    assert 90 <= value <= 98 and 0.05 * run <= t1 - t0 <= 0.12 * run + 1e-9
    grid = [task.created_at + i * 0.25 for i in range(int((task.completed_at - 990) * 4))]
    progress = [task.state_at(t).progress for t in grid]
    assert progress == sorted(progress)
    assert task.state_at(task.completed_at - 1e-6) == ("in_progress", 98)
    assert task.state_at(task.completed_at) == ("completed", 100)


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "Bearer", "Token abc", "Basic abc", KEY])
def test_missing_or_malformed_key_is_401(emu: RunningEmulator, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    for response in (
        httpx.post(f"{emu.base_url}/v1/videos", json=BODY, headers=headers),
        httpx.get(f"{emu.base_url}/v1/videos/v_{'0' * 24}", headers=headers),
    ):
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "missing or invalid API key"
    assert emu.stats()["tasks_created"] == 0


@pytest.mark.parametrize("key", ["nonvip-123", "ordinary-key"])
def test_non_vip_key_is_403(emu: RunningEmulator, key: str) -> None:
    emu.config.non_vip_keys = frozenset({"ordinary-key"})
    response = httpx.post(f"{emu.base_url}/v1/videos", json=BODY,
                          headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 403
    assert "not in the VIP group" in response.json()["error"]["message"]
    assert emu.stats()["tasks_created"] == 0 and emu.stats()["posts"] == 1


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "x"}, "model"),
        ({"model": "  ", "prompt": "x"}, "model"),
        ({"model": 2, "prompt": "x"}, "model"),
        ({"model": "sora-2"}, "prompt"),
        ({"model": "sora-2", "prompt": "   "}, "prompt"),
        ({"model": "sora-2", "prompt": 3}, "prompt"),
        ({**BODY, "aspect_ratio": "4:3"}, "aspect_ratio"),
        ({**BODY, "aspect_ratio": 1.77}, "aspect_ratio"),
        ({**BODY, "duration": 10}, "duration"),
        ({**BODY, "duration": "12"}, "duration"),
        ({**BODY, "duration": True}, "duration"),
        ({**BODY, "duration": 12.5}, "duration"),
        ({**BODY, "image": "ftp://host/a.jpg"}, "image"),
        ({**BODY, "image": "portrait.jpg"}, "image"),
        ({**BODY, "image": "data:text/plain,abc"}, "image"),
        ({**BODY, "image": []}, "image"),
        ({**BODY, "image": ["https://cdn.example/a.jpg", 3]}, "image"),
        ({**BODY, "image": {"url": "https://cdn.example/a.jpg"}}, "image"),
    ],
)
def test_bad_field_is_400_naming_it(emu: RunningEmulator, client: httpx.Client,
                                    body: dict[str, Any], param: str) -> None:
    response = client.post("/v1/videos", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and f"'{param}'" in error["message"]
    assert emu.stats()["tasks_created"] == 0


@pytest.mark.parametrize("name", ["size", "seconds", "input_reference"])
def test_openai_only_fields_are_400(emu: RunningEmulator, client: httpx.Client,
                                    name: str) -> None:
    """Strict, as real gateways are: a client speaking the other style finds out for free."""
    response = client.post("/v1/videos", json={**BODY, name: "8"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "code", "param"}  # the artifex error shape
    assert (error["param"], error["code"]) == (name, "unknown_parameter")
    assert error["message"].startswith(f"Unknown parameter: '{name}'.")
    assert emu.stats()["tasks_created"] == 0


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b"\xff\xfe"])
def test_body_that_is_not_a_json_object_is_400(client: httpx.Client, raw: bytes) -> None:
    response = client.post("/v1/videos", content=raw,
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "extra",
    [
        {"image": "https://cdn.example/portrait.jpg", "prompt": None},
        {"image": ["https://a.example/1.png", "data:image/png;base64,iVBORw0KGgo="]},
        {"aspect_ratio": "9:16", "duration": None, "unknown_field": 1},
    ],
)
def test_valid_variants_are_accepted(client: httpx.Client, extra: dict[str, Any]) -> None:
    assert ID_RE.fullmatch(submit(client, **extra)["id"])


def test_unknown_id_path_and_method(client: httpx.Client) -> None:
    response = client.get(f"/v1/videos/v_{'0' * 24}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert client.get("/v2/nothing").status_code == 404
    assert client.get("/v1/videos").status_code == 405
    assert client.delete(f"/v1/videos/v_{'0' * 24}").status_code == 405
    options = client.options("/v1/videos")
    assert options.status_code == 204 and "Authorization" in options.headers[
        "access-control-allow-headers"]
    assert all(r.headers["access-control-allow-origin"] == "*"
               for r in (response, options, client.get("/v2/nothing")))


# --- videos --------------------------------------------------------------------------------


@pytest.mark.parametrize(("ratio", "size"), [("16:9", (640, 360)), ("9:16", (360, 640))])
def test_video_is_a_browser_ready_h264_mp4(client: httpx.Client, ratio: str,
                                           size: tuple[int, int]) -> None:
    _, data = completed_video(client, aspect_ratio=ratio)
    assert 50_000 < len(data) < 800_000
    assert data.index(b"moov") < data.index(b"mdat"), "moov must come first (faststart)"
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.profile in ("Main", "Baseline", "Constrained Baseline")
        assert (stream.width, stream.height) == size
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert container.duration is not None
        assert container.duration / av.time_base == pytest.approx(12.0, abs=0.2)
        assert 11 <= stream.average_rate <= 13


def test_last_frame_is_a_picture_not_black(client: httpx.Client) -> None:
    """Clients take the last frame to continue a story: it must show something."""
    _, data = completed_video(client)
    with av.open(io.BytesIO(data)) as container:
        last = list(container.decode(video=0))[-1].to_image().convert("L")
    histogram = last.histogram()
    mean = sum(i * n for i, n in enumerate(histogram)) / sum(histogram)
    spread = sum(n for i, n in enumerate(histogram) if abs(i - mean) > 20) / sum(histogram)
    assert mean > 30 and spread > 0.05


def test_videos_differ_per_job_and_render_once(emu: RunningEmulator,
                                               client: httpx.Client) -> None:
    first, video_a = completed_video(client, prompt="a red fox")
    _, video_b = completed_video(client, prompt="a blue whale")
    assert video_a != video_b
    assert httpx.get(first["video_url"]).content == video_a  # served from the cache
    stats = emu.stats()
    assert stats["video_renders"] == 2 and stats["video_downloads"] == 3


def test_shared_video_and_video_scale(emu: RunningEmulator, client: httpx.Client) -> None:
    emu.config.shared_video = True
    _, a = completed_video(client, prompt="one")
    _, b = completed_video(client, prompt="two")
    assert a == b and emu.stats()["video_renders"] == 1
    emu.config.video_scale = 0.5  # 1 is 640x360
    _, small = completed_video(client, prompt="three")
    with av.open(io.BytesIO(small)) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (320, 180)


def test_range_requests_and_head(client: httpx.Client) -> None:
    task, data = completed_video(client)
    url, size = task["video_url"], len(data)
    cases = {"bytes=0-99": (0, 99), "bytes=100-": (100, size - 1),
             "bytes=-50": (size - 50, size - 1), f"bytes=10-{size + 5}": (10, size - 1)}
    for header, (start, end) in cases.items():
        response = httpx.get(url, headers={"Range": header})
        assert response.status_code == 206, header
        assert response.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert response.content == data[start:end + 1]
        assert response.headers["accept-ranges"] == "bytes"
    unsatisfiable = httpx.get(url, headers={"Range": f"bytes={size}-"})
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["content-range"] == f"bytes */{size}"
    head = httpx.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(size)
    assert head.headers["content-type"] == "video/mp4"
    assert head.headers["access-control-allow-origin"] == "*"


def test_video_link_expires_after_ttl(emu: RunningEmulator, client: httpx.Client) -> None:
    emu.config.url_ttl_seconds = 0.4
    task = wait_final(client, submit(client)["id"])
    assert httpx.get(task["video_url"]).status_code == 200
    expires = float(parse_qs(urlsplit(task["video_url"]).query)["expires"][0])
    wait_until(lambda: time.time() > expires + 0.01, timeout=3)
    expired = httpx.get(task["video_url"])
    assert expired.status_code == 403 and expired.json()["error"]["code"] == "link_expired"
    fresh = client.get(f"/v1/videos/{task['id']}").json()["video_url"]
    assert fresh != task["video_url"] and httpx.get(fresh).status_code == 200
    emu.config.url_ttl_seconds = 60  # whole seconds, as real links carry
    fresh = client.get(f"/v1/videos/{task['id']}").json()["video_url"]
    assert parse_qs(urlsplit(fresh).query)["expires"][0].isdigit()


def test_expire_links_and_tampering(emu: RunningEmulator, client: httpx.Client) -> None:
    task = wait_final(client, submit(client)["id"])
    url = task["video_url"]
    assert httpx.get(url).status_code == 200
    tampered = (url.replace("sig=", "sig=0"), url.split("?")[0],
                url.replace("expires=0", "expires=1"))
    for bad in tampered:
        assert httpx.get(bad).status_code == 403
    emu.expire_links()
    assert httpx.get(url).json()["error"]["code"] == "link_expired"
    url = client.get(f"/v1/videos/{task['id']}").json()["video_url"]
    assert httpx.get(url).status_code == 200
    assert client.post("/_emulator/expire").status_code == 200
    assert httpx.get(url).status_code == 403


# --- knobs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["stuck", "missing", "string"])
def test_progress_modes(mode: str) -> None:
    config = quick(run_seconds=(50.0, 50.0), progress_mode=mode)
    with start_emulator(config) as emu, httpx.Client(base_url=emu.base_url,
                                                      headers=AUTH) as client:
        answers = [submit(client)]
        task_id = answers[0]["id"]
        while answers[-1]["status"] not in FINAL:
            answers.append(client.get(f"/v1/videos/{task_id}").json())
            time.sleep(0.01)
    running = [a for a in answers[1:] if a["status"] == "in_progress"]
    assert running and answers[-1]["status"] == "completed"
    if mode == "stuck":
        assert all(a["progress"] == 0 for a in answers[:-1]) and answers[-1]["progress"] == 100
    elif mode == "missing":
        assert all("progress" not in a for a in answers)
    else:
        assert all(isinstance(a["progress"], str) for a in answers)
        assert answers[0]["progress"] == "0" and answers[-1]["progress"] == "100"
        assert any(0 < int(a["progress"]) < 100 for a in running)


def test_poll_hint_header(emu: RunningEmulator, client: httpx.Client) -> None:
    task_id = submit(client)["id"]
    assert "openai-poll-after-ms" not in client.get(f"/v1/videos/{task_id}").headers
    emu.config.poll_hint_ms = 1500
    assert client.post("/v1/videos", json=BODY).headers["openai-poll-after-ms"] == "1500"
    assert client.get(f"/v1/videos/{task_id}").headers["openai-poll-after-ms"] == "1500"


def test_config_endpoint_updates_the_live_config(emu: RunningEmulator,
                                                 client: httpx.Client) -> None:
    response = client.post("/_emulator/config", json={"poll_hint_ms": 250,
                                                      "queue_seconds": [1, 2]})
    assert response.status_code == 200 and response.json()["poll_hint_ms"] == 250
    assert emu.config.poll_hint_ms == 250 and emu.config.queue_seconds == (1.0, 2.0)
    for bad in ({"nope": 1}, {"failure_rate": 2}, {"poll_hint_ms": 5, "progress_mode": "x"},
                {"state_dir": "/tmp"}):
        assert client.post("/_emulator/config", json=bad).status_code == 400
    assert emu.config.poll_hint_ms == 250 and emu.config.progress_mode == "normal"
    assert client.get("/_emulator/config").json()["queue_seconds"] == [1.0, 2.0]


def test_stats_count_requests_and_report_exact_completion(emu: RunningEmulator,
                                                          client: httpx.Client) -> None:
    first, second = submit(client)["id"], submit(client)["id"]
    for _ in range(3):
        client.get(f"/v1/videos/{first}")
    client.get(f"/v1/videos/{second}")
    client.get(f"/v1/videos/v_{'0' * 24}")
    stats = client.get("/_emulator/stats").json()
    assert (stats["posts"], stats["tasks_created"], stats["gets"]) == (2, 2, 5)
    assert stats["tasks"][first]["gets"] == 3 and len(stats["tasks"][first]["get_times"]) == 3
    assert stats["tasks"][second]["gets"] == 1
    record = stats["tasks"][first]
    assert record["prompt"] == BODY["prompt"] and record["aspect_ratio"] == "16:9"
    for task_id in (first, second):
        wait_final(client, task_id)
        schedule = emu.task(task_id)
        assert schedule is not None
        entry = emu.stats()["tasks"][task_id]
        assert entry["completed_at"] == schedule.completed_at  # exact, not the poll time
        assert entry["created_at"] == schedule.created_at
        assert entry["started_at"] == schedule.started_at and entry["status"] == "completed"
    assert emu.task("v_unknown") is None
    emu.reset_stats()
    stats = emu.stats()
    assert (stats["posts"], stats["gets"], stats["tasks"][first]["gets"]) == (0, 0, 0)
    assert client.post("/_emulator/reset_stats").status_code == 200


def test_many_concurrent_keep_alive_connections(emu: RunningEmulator) -> None:
    """300 connections open at once, each sending 3 requests on the same socket."""
    body = json.dumps(BODY).encode()
    request = (f"POST /v1/videos HTTP/1.1\r\nHost: 127.0.0.1:{emu.port}\r\n"
               f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def connection(opened: asyncio.Event, count: list[int]) -> list[int]:
        reader, writer = await asyncio.open_connection(emu.host, emu.port)
        count.append(1)
        if len(count) == 300:
            opened.set()
        await opened.wait()  # every connection is open before any request is sent
        codes = []
        for _ in range(3):
            writer.write(request)
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) != b"\r\n":
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            assert json.loads(await reader.readexactly(length))["status"] == "queued"
            codes.append(status)
        writer.close()
        return codes

    async def run() -> list[list[int]]:
        opened, count = asyncio.Event(), list[int]()
        return await asyncio.wait_for(
            asyncio.gather(*(connection(opened, count) for _ in range(300))), timeout=20)

    assert all(codes == [200, 200, 200] for codes in asyncio.run(run()))
    assert emu.stats()["tasks_created"] == 900


def test_async_client_with_a_connection_pool(emu: RunningEmulator) -> None:
    async def run() -> list[int]:
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
        async with httpx.AsyncClient(base_url=emu.base_url, headers=AUTH, limits=limits,
                                     timeout=20) as client:
            posts = await asyncio.gather(*(client.post("/v1/videos", json=BODY)
                                           for _ in range(100)))
            gets = await asyncio.gather(*(client.get(f"/v1/videos/{p.json()['id']}")
                                          for p in posts))
            return [r.status_code for r in (*posts, *gets)]

    assert set(asyncio.run(run())) == {200}


# --- faults --------------------------------------------------------------------------------


def test_drop_on_post_creates_nothing(emu: RunningEmulator, client: httpx.Client) -> None:
    emu.inject("drop", method="POST")
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/v1/videos", json=BODY)
    stats = emu.stats()
    assert (stats["posts"], stats["tasks_created"]) == (1, 0)
    assert stats["faults_injected"] == {"drop": 1}
    submit(client)  # one-shot: consumed
    assert emu.stats()["tasks_created"] == 1


def test_drop_and_reset_on_get(emu: RunningEmulator, client: httpx.Client) -> None:
    task_id = submit(client)["id"]
    emu.inject("drop", method="GET")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.get(f"/v1/videos/{task_id}")
    emu.inject("reset", method="GET")
    with pytest.raises(httpx.ReadError):
        client.get(f"/v1/videos/{task_id}")
    assert client.get(f"/v1/videos/{task_id}").status_code == 200
    assert emu.stats()["tasks"][task_id]["gets"] == 3


def test_reset_on_post_creates_nothing(emu: RunningEmulator, client: httpx.Client) -> None:
    emu.inject("reset", method="POST")
    with pytest.raises(httpx.ReadError):
        client.post("/v1/videos", json=BODY)
    assert emu.stats()["tasks_created"] == 0


def test_accept_then_drop_creates_the_task(emu: RunningEmulator, client: httpx.Client) -> None:
    emu.inject("accept_then_drop", method="POST")
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/v1/videos", json=BODY)
    stats = emu.stats()
    assert (stats["posts"], stats["tasks_created"], len(stats["tasks"])) == (1, 1, 1)


def test_accept_then_hang_creates_the_task_and_times_out(emu: RunningEmulator,
                                                         client: httpx.Client) -> None:
    emu.inject("accept_then_hang", method="POST", hang_seconds=30)
    with pytest.raises(httpx.ReadTimeout):
        client.post("/v1/videos", json=BODY, timeout=0.3)
    stats = emu.stats()
    assert (stats["posts"], stats["tasks_created"]) == (1, 1)
    assert stats["faults_injected"] == {"accept_then_hang": 1}


@pytest.mark.parametrize("status", ["500", "502", "503", "504", "429"])
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_error_status_faults(emu: RunningEmulator, client: httpx.Client, status: str,
                             method: str) -> None:
    task_id = submit(client)["id"]
    emu.inject(status, method=method)
    if method == "POST":
        response = client.post("/v1/videos", json=BODY)
    else:
        response = client.get(f"/v1/videos/{task_id}")
    assert response.status_code == int(status)
    if status in ("429", "503"):
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"]["code"]
    else:
        assert "retry-after" not in response.headers
    if status in ("502", "504"):
        assert response.headers["content-type"].startswith("text/html")
    assert emu.stats()["tasks_created"] == 1  # a faulted POST is not charged
    assert client.get(f"/v1/videos/{task_id}").status_code == 200


def test_retry_after_forms(emu: RunningEmulator, client: httpx.Client) -> None:
    emu.config.retry_after = 2.5
    emu.config.retry_after_form = "http-date"
    emu.inject("429", method="POST")
    before = time.time()
    response = client.post("/v1/videos", json=BODY)
    when = email.utils.parsedate_to_datetime(response.headers["retry-after"]).timestamp()
    assert before + 2.5 <= when + 1e-6 and when <= time.time() + 3.5 and when.is_integer()
    emu.inject("503", method="GET", retry_after=3, retry_after_form="seconds")
    assert client.get(f"/v1/videos/v_{'0' * 24}").headers["retry-after"] == "3"


def test_slow_answers_after_the_delay(emu: RunningEmulator, client: httpx.Client) -> None:
    emu.inject("slow", method="POST", delay=0.3)
    started = time.monotonic()
    task_id = submit(client)["id"]
    assert time.monotonic() - started >= 0.3
    assert emu.task(task_id) is not None


def test_malformed_answers(emu: RunningEmulator, client: httpx.Client) -> None:
    emu.inject("malformed", method="POST", kind="html")
    response = client.post("/v1/videos", json=BODY)
    assert response.status_code == 200 and response.text.startswith("<html>")
    assert emu.stats()["tasks_created"] == 1  # created: only the answer was lost
    task_id = next(iter(emu.stats()["tasks"]))
    emu.inject("malformed", method="GET", kind="truncated")
    response = client.get(f"/v1/videos/{task_id}")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


@pytest.mark.parametrize("fault", ["503", "429", "500", "502", "drop", "malformed", "timeout"])
def test_get_fault_rates(emu: RunningEmulator, client: httpx.Client, fault: str) -> None:
    task_id = submit(client)["id"]
    emu.config.slow_seconds = 0.2
    emu.config.get_fault_rates = {fault: 1.0}
    for _ in range(2):
        started = time.monotonic()
        try:
            response = client.get(f"/v1/videos/{task_id}")
        except (httpx.RemoteProtocolError, httpx.ReadError):
            assert fault == "drop"
            continue
        if fault == "timeout":
            assert response.status_code == 200 and time.monotonic() - started >= 0.2
        elif fault == "malformed":
            assert response.status_code == 200
            with pytest.raises(json.JSONDecodeError):
                response.json()
        else:
            assert response.status_code == int(fault)
    assert emu.stats()["faults_injected"] == {fault: 2}
    emu.config.get_fault_rates = {}
    assert client.get(f"/v1/videos/{task_id}").status_code == 200


def test_get_fault_rates_mix_is_seeded(client: httpx.Client, emu: RunningEmulator) -> None:
    task_id = submit(client)["id"]
    emu.config.get_fault_rates = {"503": 0.25, "429": 0.25}
    codes = [client.get(f"/v1/videos/{task_id}").status_code for _ in range(200)]
    assert 25 <= codes.count(503) <= 75 and 25 <= codes.count(429) <= 75
    assert codes.count(200) + codes.count(503) + codes.count(429) == 200


def test_inject_over_http_and_times(emu: RunningEmulator, client: httpx.Client) -> None:
    task_id = submit(client)["id"]
    response = client.post("/_emulator/inject", json={"fault": "503", "method": "GET", "times": 2})
    assert response.status_code == 200 and response.json()["pending_faults"][0]["times"] == 2
    codes = [client.get(f"/v1/videos/{task_id}").status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    for bad in ({"fault": "nope"}, {"fault": "accept_then_drop", "method": "GET"},
                {"fault": "slow", "delay": -1}, {"fault": "503", "times": 0}):
        assert client.post("/_emulator/inject", json=bad).status_code == 400
    with pytest.raises(ValueError, match="POST only"):
        emu.inject("accept_then_hang", method="GET")
    with pytest.raises(ValueError, match="unknown fault parameter"):
        emu.inject("429", method="GET", retry_afterr=1)


# --- persistence, stopping, CLI ------------------------------------------------------------


def test_state_dir_keeps_tasks_across_restarts(tmp_path: Path) -> None:
    config = quick(run_seconds=(60.0, 60.0), state_dir=tmp_path)
    with start_emulator(config) as first, httpx.Client(headers=AUTH) as client:
        early = client.post(f"{first.base_url}/v1/videos", json=BODY).json()["id"]
        done = client.post(f"{first.base_url}/v1/videos", json=BODY).json()["id"]
        schedule = first.task(done)
        assert schedule is not None
        wait_until(lambda: time.time() >= schedule.completed_at)
        old_url = client.get(f"{first.base_url}/v1/videos/{done}").json()["video_url"]
    config = quick(state_dir=tmp_path)
    with start_emulator(config) as second, httpx.Client(base_url=second.base_url,
                                                        headers=AUTH) as client:
        assert second.task(done) == schedule
        data = wait_final(client, early)
        assert data["status"] == "completed"
        new_url = old_url.replace(urlsplit(old_url).netloc, urlsplit(second.base_url).netloc)
        assert httpx.get(new_url).status_code == 200  # the signing key was kept too
        assert second.stats()["tasks_created"] == 0 and len(second.stats()["tasks"]) == 2


def test_stop_is_prompt_with_hung_connections() -> None:
    emu = start_emulator(quick(slow_seconds=60))
    errors: list[BaseException] = []

    def hang(request: httpx.Request) -> None:
        try:
            with httpx.Client(headers=AUTH, timeout=30) as client:
                client.send(request)
        except httpx.HTTPError as exc:
            errors.append(exc)

    emu.inject("accept_then_hang", method="POST", hang_seconds=60)
    emu.config.get_fault_rates = {"timeout": 1.0}
    requests = [httpx.Request("POST", f"{emu.base_url}/v1/videos", json=BODY, headers=AUTH),
                httpx.Request("GET", f"{emu.base_url}/v1/videos/v_{'0' * 24}", headers=AUTH)]
    threads = [threading.Thread(target=hang, args=(r,)) for r in requests]
    for thread in threads:
        thread.start()
    idle = httpx.Client(base_url=emu.base_url)
    assert idle.get("/_emulator/stats").status_code == 200  # an idle keep-alive connection
    wait_until(lambda: emu.stats()["faults_injected"].get("timeout") == 1
               and emu.stats()["tasks_created"] == 1)
    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 1.0
    for thread in threads:
        thread.join(timeout=2)
        assert not thread.is_alive()
    assert len(errors) == 2
    emu.stop()  # idempotent
    with pytest.raises(httpx.TransportError):
        idle.get("/_emulator/stats")
    idle.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{emu.base_url}/_emulator/stats")


def test_no_key_material_in_answers_or_logs(emu: RunningEmulator, client: httpx.Client,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="sora_widgets.emulator")
    nonvip = "nonvip-0c9e81aa"
    emu.config.url_ttl_seconds = 60
    emu.inject("429", method="GET")
    emu.inject("malformed", method="GET")
    task_id = submit(client)["id"]
    responses = [
        client.get(f"/v1/videos/{task_id}"),
        client.get(f"/v1/videos/{task_id}"),
        client.post("/v1/videos", json={"model": ""}),
        client.post("/v1/videos", json=BODY, headers={"Authorization": f"Bearer {nonvip}"}),
        client.get(f"/v1/videos/{task_id}", headers={"Authorization": f"Basic {KEY}"}),
        client.get(f"/v1/videos/v_{'0' * 24}"),
        client.get("/_emulator/stats"),
        client.get("/_emulator/config"),
    ]
    wait_final(client, task_id)
    responses.append(client.get(f"/v1/videos/{task_id}"))
    responses.append(httpx.get(responses[-1].json()["video_url"], headers=AUTH))
    for response in responses:
        raw = response.content + str(response.headers).encode()
        for secret in (KEY, nonvip, KEY[-8:]):
            assert secret.encode() not in raw
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/v1/videos" in logged and KEY not in logged and nonvip not in logged


def test_cli_serves_and_stops_on_ctrl_c() -> None:
    command = [sys.executable, "-m", "sora_widgets.emulator", "--port", "0",
               "--time-scale", "0.01", "--seed", "3"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            match = re.fullmatch(r"sora-widgets emulator listening on (http://127\.0\.0\.1:\d+) "
                                 r"\(time scale 0\.01\)\n", line)
            assert match, line
            with httpx.Client(base_url=match.group(1), headers=AUTH) as client:
                assert wait_final(client, submit(client)["id"])["status"] == "completed"
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        finally:
            process.kill()


def test_cli_rejects_bad_values() -> None:
    from sora_widgets.emulator.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--time-scale", "-1"])
    assert exc.value.code == 2


def test_emulator_imports_nothing_from_the_rest_of_the_package() -> None:
    for path in EMULATOR_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                assert node.level <= 1, f"{path.name} reaches outside the emulator"
                names = [module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                assert root not in ("IPython", "ipywidgets", "ipykernel", "traitlets"), path.name
                assert root != "sora_widgets" or name.startswith("sora_widgets.emulator")


def test_importing_the_emulator_is_light() -> None:
    code = ("import sys, sora_widgets.emulator; "
            "print(sorted(m for m in ('av', 'PIL', 'IPython', 'ipywidgets') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
