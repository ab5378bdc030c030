"""The emulator's openai wire style over real loopback HTTP, and what both styles share:
status synonyms, the mystery status, the poll hint. First-frame images: test_emulator_images.

No mocks and no sleep-and-hope: jobs last ~0.1 s (time scale 0.01) and every wait is a
polling loop with a deadline.
"""

from __future__ import annotations

import base64
import io
import math
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import av
import httpx
import pytest
from PIL import Image, ImageChops, ImageDraw, ImageOps, ImageStat

from sora_widgets.emulator import EmulatorConfig, RunningEmulator, start_emulator
from sora_widgets.emulator.config import STATUS_SYNONYMS

from .doubles import wait_until

KEY = "sk-vip-test-openai-41c9"
AUTH = {"Authorization": f"Bearer {KEY}"}
BODY = {"model": "sora-2", "prompt": "a lighthouse in a storm", "size": "1280x720",
        "seconds": "8"}
ID_RE = re.compile(r"video_[0-9a-f]{40}")
OPENAI_KEYS = {"id", "object", "model", "status", "progress", "created_at", "completed_at",
               "expires_at", "size", "seconds", "remixed_from_video_id", "error"}
FINAL = ("completed", "failed")
#: Mean absolute difference (0-255, all channels) under which a decoded frame "is" an image.
SAME_IMAGE = 12.0


def quick(**changes: Any) -> EmulatorConfig:
    """openai style; jobs finish ~0.1 s after submit (no queue, 10 s run at 1 % speed)."""
    values: dict[str, Any] = {
        "style": "openai", "time_scale": 0.01, "seed": 11, "queue_seconds": (0.0, 0.0),
        "run_seconds": (10.0, 10.0), "stall_probability": 0.0,
    }
    values.update(changes)
    return EmulatorConfig(**values)


@pytest.fixture
def emu() -> Iterator[RunningEmulator]:
    with start_emulator(quick()) as running:
        yield running


@pytest.fixture
def client(emu: RunningEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers=AUTH, timeout=20) as c:
        yield c


def submit(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = client.post("/v1/videos", json={**BODY, **fields})
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


def content(client: httpx.Client, task_id: str) -> bytes:
    response = client.get(f"/v1/videos/{task_id}/content")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"
    return response.content


def picture(width: int = 1280, height: int = 720, *, hue: int = 0) -> Image.Image:
    """A test image with broad, distinct regions (stripes, a disc, a block)."""
    image = Image.new("RGB", (width, height), ((40 + hue) % 256, 170, 90))
    draw = ImageDraw.Draw(image)
    for x in range(0, width, width // 8):
        draw.rectangle((x, 0, x + width // 16, height), fill=(240, (200 + hue) % 256, 40))
    draw.ellipse((width // 3, height // 4, 2 * width // 3, 3 * height // 4), fill=(30, 90, 220))
    draw.rectangle((0, 2 * height // 3, width // 4, height), fill=(200, 30, (60 + hue) % 256))
    return image


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def data_uri(image: Image.Image, fmt: str = "PNG") -> str:
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(encoded(image, fmt)).decode()


def frames(video: bytes) -> list[Image.Image]:
    with av.open(io.BytesIO(video)) as container:
        return [frame.to_image() for frame in container.decode(video=0)]


def difference(frame: Image.Image, image: Image.Image) -> float:
    """Mean absolute pixel difference between a frame and an image scaled to cover it."""
    fitted = ImageOps.fit(image.convert("RGB"), frame.size, Image.Resampling.LANCZOS)
    return sum(ImageStat.Stat(ImageChops.difference(frame.convert("RGB"), fitted)).mean) / 3


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


# --- submit, answers, lifecycle -------------------------------------------------------------


def test_submit_answer_has_the_openai_shape(client: httpx.Client) -> None:
    response = client.post("/v1/videos", json={"prompt": "defaults only"})
    assert response.status_code == 200
    data = response.json()
    assert set(data) == OPENAI_KEYS and "video_url" not in data and "task_id" not in data
    assert ID_RE.fullmatch(data["id"])
    assert (data["object"], data["status"], data["progress"]) == ("video", "queued", 0)
    assert (data["model"], data["size"], data["seconds"]) == ("sora-2", "720x1280", "4")
    assert data["completed_at"] is None and data["expires_at"] is None and data["error"] is None
    assert abs(data["created_at"] - time.time()) < 5
    assert response.headers["openai-poll-after-ms"] == "20"  # 2000 ms x time scale 0.01


def test_lifecycle_to_completed_with_expiry(emu: RunningEmulator, client: httpx.Client) -> None:
    emu.config.run_seconds = (60.0, 60.0)
    created = submit(client, model="sora-2-pro", size="1792x1024", seconds="12")
    seen = [created]
    while seen[-1]["status"] not in FINAL:
        seen.append(client.get(f"/v1/videos/{created['id']}").json())
        time.sleep(0.01)
    statuses = [a["status"] for a in seen]
    assert statuses == sorted(statuses, key=["queued", "in_progress", "completed"].index)
    assert "in_progress" in statuses
    progress = [a["progress"] for a in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    done = seen[-1]
    task = emu.task(created["id"])
    assert task is not None and set(done) == OPENAI_KEYS
    assert done["completed_at"] == int(task.completed_at)
    assert done["expires_at"] == math.ceil(task.completed_at + 3600)
    assert (done["model"], done["size"], done["seconds"], done["error"]) == (
        "sora-2-pro", "1792x1024", "12", None)
    assert all(a["expires_at"] is None for a in seen[:-1])


def test_failed_task_has_an_error_object_and_no_content(emu: RunningEmulator,
                                                        client: httpx.Client) -> None:
    emu.config.failure_rate = 1.0
    done = wait_final(client, submit(client)["id"])
    assert done["status"] == "failed" and done["expires_at"] is None
    assert set(done["error"]) == {"code", "message"} and done["error"]["message"]
    assert done["completed_at"] is not None and done["progress"] < 100
    error = error_of(client.get(f"/v1/videos/{done['id']}/content"), 404)
    assert error["code"] == "video_failed"


def test_multipart_submit_with_an_input_reference_file(client: httpx.Client) -> None:
    image = picture()
    response = client.post(
        "/v1/videos",
        data={"model": "sora-2", "prompt": "continue from this frame", "size": "1280x720",
              "seconds": "4"},
        files={"input_reference": ("frame.png", encoded(image), "image/png")},
    )
    assert response.status_code == 200, response.text
    data = response.json()
    assert (data["size"], data["seconds"], data["status"]) == ("1280x720", "4", "queued")
    wait_final(client, data["id"])
    decoded = frames(content(client, data["id"]))
    assert len(decoded) == 4 * 12 and decoded[0].size == (640, 360)
    assert difference(decoded[0], image) < SAME_IMAGE
    assert difference(decoded[0], picture(hue=120)) > 2 * SAME_IMAGE  # the test can fail
    assert difference(decoded[-1], image) > 2 * SAME_IMAGE  # it moves on from the image


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_json_input_reference_data_uri_is_the_first_frame(client: httpx.Client,
                                                          fmt: str) -> None:
    image = picture(720, 1280, hue=60)
    data = submit(client, size="720x1280", seconds="4", input_reference=data_uri(image, fmt))
    wait_final(client, data["id"])
    first = frames(content(client, data["id"]))[0]
    assert first.size == (360, 640)
    assert difference(first, image) < SAME_IMAGE


@pytest.mark.parametrize(
    ("model", "size", "frame"),
    [("sora-2", "1280x720", (640, 360)), ("sora-2", "720x1280", (360, 640)),
     ("sora-2-pro", "1792x1024", (640, 366)), ("sora-2-pro", "1024x1792", (366, 640))],
)
def test_sizes_of_both_ratios(client: httpx.Client, model: str, size: str,
                              frame: tuple[int, int]) -> None:
    data = submit(client, model=model, size=size, seconds="4")
    assert data["size"] == size
    wait_final(client, data["id"])
    with av.open(io.BytesIO(content(client, data["id"]))) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == frame
        assert stream.codec_context.profile == "Main"
        assert container.duration is not None
        assert container.duration / av.time_base == pytest.approx(4.0, abs=0.2)


def test_last_frame_is_a_picture_not_black(client: httpx.Client) -> None:
    data = submit(client, seconds="4")
    wait_final(client, data["id"])
    last = frames(content(client, data["id"]))[-1]
    stat = ImageStat.Stat(last.convert("L"))
    assert stat.mean[0] > 30 and stat.stddev[0] > 10


# --- strictness ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["aspect_ratio", "duration", "image", "task_id", "n"])
def test_unknown_parameters_are_400(emu: RunningEmulator, client: httpx.Client,
                                    name: str) -> None:
    response = client.post("/v1/videos", json={**BODY, name: "16:9"})
    assert response.json() == {"error": {
        "message": f"Unknown parameter: '{name}'.", "type": "invalid_request_error",
        "param": name, "code": "unknown_parameter"}}
    assert response.status_code == 400 and response.headers["openai-poll-after-ms"] == "20"
    multipart = client.post("/v1/videos", data={"prompt": "x", name: "16:9"},
                            files={"input_reference": ("a.png", encoded(picture()), "image/png")})
    assert error_of(multipart, 400)["param"] == name
    assert emu.stats()["tasks_created"] == 0


@pytest.mark.parametrize(
    ("fields", "param", "code", "words"),
    [
        ({"size": "1792x1024"}, "size", "invalid_value", ("'720x1280' and '1280x720'",)),
        ({"size": "1920x1080", "model": "sora-2-pro"}, "size", "invalid_value",
         ("'1024x1792'", "'1792x1024'")),
        ({"size": 720}, "size", "invalid_type", ("an integer",)),
        ({"seconds": "10"}, "seconds", "invalid_value", ("'4', '8' and '12'",)),
        ({"seconds": 8}, "seconds", "invalid_type", ("'4', '8' and '12'", "an integer")),
        ({"model": "sora-3"}, "model", "invalid_value", ("'sora-2' and 'sora-2-pro'",)),
        ({"prompt": None}, "prompt", "missing_required_parameter", ("prompt",)),
        ({"prompt": 5}, "prompt", "invalid_type", ("an integer",)),
        ({"prompt": "   "}, "prompt", "invalid_value", ("empty",)),
        ({"input_reference": "portrait.jpg"}, "input_reference", "invalid_value", ()),
        ({"input_reference": 3}, "input_reference", "invalid_type", ()),
        ({"input_reference": "data:image/png;base64,@@@not base64@@@"}, "input_reference",
         "invalid_image", ("base64",)),
        ({"input_reference": "data:image/png;base64," + base64.b64encode(b"garbage" * 50)
          .decode()}, "input_reference", "invalid_image", ("decoded",)),
    ],
)
def test_bad_values_are_400_naming_the_allowed_ones(
    emu: RunningEmulator, client: httpx.Client, fields: dict[str, Any], param: str, code: str,
    words: tuple[str, ...],
) -> None:
    error = error_of(client.post("/v1/videos", json={**BODY, **fields}), 400)
    assert (error["param"], error["code"], error["type"]) == (param, code,
                                                              "invalid_request_error")
    for word in words:
        assert word in error["message"]
    assert emu.stats()["tasks_created"] == 0


def test_missing_prompt_and_bodies_that_are_not_objects(client: httpx.Client) -> None:
    error = error_of(client.post("/v1/videos", json={"model": "sora-2"}), 400)
    assert error["message"] == "Missing required parameter: 'prompt'."
    assert error["code"] == "missing_required_parameter"
    assert error_of(client.post("/v1/videos", content=b"{nope",
                                headers={"Content-Type": "application/json"}), 400)["message"]
    assert error_of(client.post("/v1/videos", json=[1]), 400)["code"] == "invalid_type"
    broken = client.post("/v1/videos", content=b"--xyz\r\nnot a part",
                         headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert error_of(broken, 400)["code"] == "invalid_multipart"


@pytest.mark.parametrize(
    ("filename", "payload", "content_type", "code"),
    [
        ("notes.txt", b"hello", "text/plain", "unsupported_file"),
        ("frame.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "image/png", "invalid_image"),
        ("frame.png", b"", "image/png", "invalid_image"),
        ("big.png", b"\x00" * (10 * 1024 * 1024 + 1), "image/png", "image_too_large"),
    ],
)
def test_bad_uploads_are_400(emu: RunningEmulator, client: httpx.Client, filename: str,
                             payload: bytes, content_type: str, code: str) -> None:
    response = client.post("/v1/videos", data={"prompt": "x"},
                           files={"input_reference": (filename, payload, content_type)})
    error = error_of(response, 400)
    assert (error["param"], error["code"]) == ("input_reference", code)
    assert emu.stats()["tasks_created"] == 0


def test_strict_reference_size(emu: RunningEmulator, client: httpx.Client) -> None:
    emu.config.strict_reference_size = True
    wrong = client.post("/v1/videos", data={"prompt": "x", "size": "1280x720"},
                        files={"input_reference": ("a.png", encoded(picture(640, 360)),
                                                   "image/png")})
    error = error_of(wrong, 400)
    assert error["param"] == "input_reference" and "640x360" in error["message"]
    right = client.post("/v1/videos", data={"prompt": "x", "size": "1280x720"},
                        files={"input_reference": ("a.png", encoded(picture(1280, 720)),
                                                   "image/png")})
    assert right.status_code == 200


# --- auth and content ----------------------------------------------------------------------


def test_auth_on_every_route(emu: RunningEmulator, client: httpx.Client) -> None:
    task_id = submit(client)["id"]
    wait_final(client, task_id)
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}):
        for response in (
            httpx.post(f"{emu.base_url}/v1/videos", json=BODY, headers=headers),
            httpx.get(f"{emu.base_url}/v1/videos/{task_id}", headers=headers),
            httpx.get(f"{emu.base_url}/v1/videos/{task_id}/content", headers=headers),
        ):
            error = error_of(response, 401)
            assert error["code"] == "invalid_api_key"
    denied = httpx.get(f"{emu.base_url}/v1/videos/{task_id}/content",
                       headers={"Authorization": "Bearer nonvip-1"})
    assert error_of(denied, 403)["type"] == "permission_error"
    assert emu.stats()["video_downloads"] == 0


def test_content_range_head_variant_and_not_found(emu: RunningEmulator,
                                                  client: httpx.Client) -> None:
    pending = client.post("/v1/videos", json={**BODY}).json()["id"]
    error = error_of(client.get(f"/v1/videos/{pending}/content"), 404)
    assert error["code"] == "video_not_ready"
    wait_final(client, pending)
    data = content(client, pending)
    url = f"/v1/videos/{pending}/content"
    part = client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    assert client.get(url, params={"variant": "video"}).content == data
    # thumbnail and spritesheet are stills now (test_emulator_remix.py); others are refused
    assert error_of(client.get(url, params={"variant": "poster"}), 400)["param"] == "variant"
    head = client.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
    missing = error_of(client.get(f"/v1/videos/video_{'0' * 40}/content"), 404)
    assert missing["code"] == "video_not_found" and f"video_{'0' * 40}" in missing["message"]
    assert error_of(client.get(f"/v1/videos/video_{'0' * 40}"), 404)["code"] == "video_not_found"
    assert client.get(f"/videos/{pending}.mp4").status_code == 403  # no artifex link given out
    assert client.post(url).status_code == 405


@pytest.mark.parametrize("status", [410, 404])
def test_content_expires_at_expires_at(emu: RunningEmulator, client: httpx.Client,
                                       status: int) -> None:
    emu.config.content_ttl_seconds = 0.2
    emu.config.content_expired_status = status
    task_id = submit(client)["id"]
    done = wait_final(client, task_id)
    task = emu.task(task_id)
    assert task is not None and done["expires_at"] == math.ceil(task.completed_at + 0.2)
    before = time.time()
    early = client.get(f"/v1/videos/{task_id}/content")
    if early.status_code == 200:
        assert before < done["expires_at"]
    else:  # slow machine: it expired while we asked
        assert early.status_code == status and time.time() >= done["expires_at"]
    wait_until(lambda: time.time() >= done["expires_at"], timeout=3)
    error = error_of(client.get(f"/v1/videos/{task_id}/content"), status)
    assert error["code"] == "video_expired" and str(done["expires_at"]) in error["message"]
    assert client.get(f"/v1/videos/{task_id}").json()["status"] == "completed"


def test_expire_links_expires_content_at_once(emu: RunningEmulator,
                                              client: httpx.Client) -> None:
    task_id = submit(client)["id"]
    wait_final(client, task_id)
    assert client.get(f"/v1/videos/{task_id}/content").status_code == 200
    emu.expire_links()
    assert error_of(client.get(f"/v1/videos/{task_id}/content"), 410)["code"] == "video_expired"
    assert client.get(f"/v1/videos/{task_id}").json()["expires_at"] <= time.time()
    later = submit(client)["id"]  # completed after the cut: not expired
    wait_final(client, later)
    assert client.get(f"/v1/videos/{later}/content").status_code == 200


def test_never_expiring_content(emu: RunningEmulator, client: httpx.Client) -> None:
    emu.config.content_ttl_seconds = None
    done = wait_final(client, submit(client)["id"])
    assert done["status"] == "completed" and done["expires_at"] is None
    assert client.get(f"/v1/videos/{done['id']}/content").status_code == 200


# --- the poll hint -------------------------------------------------------------------------


def test_poll_after_header_on_every_answer(emu: RunningEmulator, client: httpx.Client) -> None:
    task_id = submit(client)["id"]
    answers = [
        client.post("/v1/videos", json=BODY),
        client.get(f"/v1/videos/{task_id}"),
        client.post("/v1/videos", json={"prompt": 1}),
        client.get(f"/v1/videos/video_{'1' * 40}"),
        client.get(f"/v1/videos/{task_id}/content"),
        httpx.get(f"{emu.base_url}/v1/videos/{task_id}"),  # 401
    ]
    wait_final(client, task_id)
    answers.append(client.get(f"/v1/videos/{task_id}/content"))
    assert [a.headers.get("openai-poll-after-ms") for a in answers] == ["20"] * len(answers)
    emu.inject("503", method="GET")
    assert "openai-poll-after-ms" not in client.get(f"/v1/videos/{task_id}").headers
    emu.config.time_scale = 0.5
    assert client.get(f"/v1/videos/{task_id}").headers["openai-poll-after-ms"] == "1000"
    emu.config.poll_hint_ms = 1500  # an explicit value wins over the scaled default
    assert client.get(f"/v1/videos/{task_id}").headers["openai-poll-after-ms"] == "1500"


def test_artifex_style_sends_no_poll_hint_by_default() -> None:
    with start_emulator(quick(style="artifex")) as emu, httpx.Client(
        base_url=emu.base_url, headers=AUTH) as client:
        answer = client.post("/v1/videos", json={"model": "sora-2", "prompt": "x"})
        assert answer.status_code == 200 and "openai-poll-after-ms" not in answer.headers


# --- status words --------------------------------------------------------------------------


def _statuses(client: httpx.Client, task_id: str, first: str) -> list[str]:
    seen = [first]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seen.append(client.get(f"/v1/videos/{task_id}").json()["status"])
        if seen[-1] not in ("queued", "in_progress", *STATUS_SYNONYMS["queued"],
                            *STATUS_SYNONYMS["in_progress"], "mystery"):
            return seen
        time.sleep(0.01)
    raise AssertionError(f"no final status: {seen[-5:]}")


@pytest.mark.parametrize("style", ["openai", "artifex"])
def test_status_synonyms_mapping(style: str) -> None:
    mapping = {"queued": "pending", "in_progress": "running", "completed": "succeeded",
               "failed": "error"}
    config = quick(style=style, queue_seconds=(20.0, 20.0), run_seconds=(40.0, 40.0),
                   status_synonyms=mapping)
    with start_emulator(config) as emu, httpx.Client(base_url=emu.base_url,
                                                     headers=AUTH) as client:
        body = BODY if style == "openai" else {"model": "sora-2", "prompt": "x"}
        first = client.post("/v1/videos", json=body).json()
        seen = _statuses(client, first["id"], first["status"])
        assert seen[0] == "pending" and "running" in seen and seen[-1] == "succeeded"
        assert set(seen) == {"pending", "running", "succeeded"}
        emu.config.failure_rate = 1.0
        failed = client.post("/v1/videos", json=body).json()
        assert _statuses(client, failed["id"], failed["status"])[-1] == "error"


def test_status_synonyms_true_uses_gateway_words_stable_per_task(emu: RunningEmulator,
                                                                 client: httpx.Client) -> None:
    emu.config.status_synonyms = True
    emu.config.queue_seconds = (10.0, 10.0)
    words: dict[str, set[str]] = {status: set() for status in STATUS_SYNONYMS}
    tasks = 0
    while tasks < 6 or ((len(words["queued"]) < 2 or len(words["completed"]) < 2) and tasks < 40):
        tasks += 1
        first = submit(client)
        seen = _statuses(client, first["id"], first["status"])
        queued = [w for w in seen if w in STATUS_SYNONYMS["queued"]]
        assert seen[0] in STATUS_SYNONYMS["queued"] and set(queued) == {seen[0]}  # stable
        assert seen[-1] in STATUS_SYNONYMS["completed"]
        assert not {"queued", "in_progress", "completed"} & set(seen)
        words["queued"].add(seen[0])
        words["completed"].add(seen[-1])
    assert len(words["queued"]) == 2 and len(words["completed"]) >= 2


@pytest.mark.parametrize("style", ["openai", "artifex"])
def test_mystery_status_for_the_first_answers(style: str) -> None:
    config = quick(style=style, mystery_status="mystery", mystery_answers=3,
                   run_seconds=(30.0, 30.0))
    with start_emulator(config) as emu, httpx.Client(base_url=emu.base_url,
                                                     headers=AUTH) as client:
        body = BODY if style == "openai" else {"model": "sora-2", "prompt": "x"}
        first = client.post("/v1/videos", json=body).json()
        assert first["status"] == "queued"  # the submit answer is never a mystery
        seen = _statuses(client, first["id"], first["status"])
        assert seen[1:4] == ["mystery"] * 3 and "mystery" not in seen[4:]
        assert seen[-1] == "completed"
        emu.config.mystery_status = None
        second = client.post("/v1/videos", json=body).json()
        assert "mystery" not in _statuses(client, second["id"], second["status"])


def test_config_knobs_are_validated_and_live(emu: RunningEmulator,
                                             client: httpx.Client) -> None:
    bads: list[dict[str, Any]] = [
        {"style": "rest"}, {"status_synonyms": {"done": "ok"}},
        {"status_synonyms": {"completed": []}}, {"status_synonyms": "yes"},
        {"mystery_status": "  "}, {"mystery_answers": -1}, {"content_expired_status": 500},
        {"content_ttl_seconds": -1}, {"video_scale": 5},
    ]
    for bad in bads:
        assert client.post("/_emulator/config", json=bad).status_code == 400, bad
        with pytest.raises(ValueError):
            EmulatorConfig(**bad)
    changed = client.post("/_emulator/config", json={"style": "artifex",
                                                     "status_synonyms": {"queued": ["a", "b"]}})
    assert changed.status_code == 200 and changed.json()["style"] == "artifex"
    answer = client.post("/v1/videos", json={"model": "sora-2", "prompt": "x"}).json()
    assert answer["task_id"] == answer["id"] and answer["status"] in ("a", "b")
    assert answer["id"].startswith("v_")


# --- CLI -----------------------------------------------------------------------------------


def test_cli_style_openai() -> None:
    command = [sys.executable, "-m", "sora_widgets.emulator", "--port", "0", "--style", "openai",
               "--time-scale", "0.01", "--seed", "3", "--status-synonyms",
               "--content-ttl", "30"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            match = re.fullmatch(r"sora-widgets emulator listening on (http://127\.0\.0\.1:\d+) "
                                 r"\(time scale 0\.01, openai style\)\n", line)
            assert match, line
            with httpx.Client(base_url=match.group(1), headers=AUTH) as client:
                first = client.post("/v1/videos", json=BODY)
                assert ID_RE.fullmatch(first.json()["id"])
                assert first.json()["status"] in STATUS_SYNONYMS["queued"]
                config = client.get("/_emulator/config").json()
                assert (config["style"], config["status_synonyms"],
                        config["content_ttl_seconds"]) == ("openai", True, 30.0)
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        finally:
            process.kill()
