"""The emulator's router style (OpenRouter's video API) and its openai remix, extensions
and stills, over raw HTTP: the shapes, the strictness, the seeds, the cost, the links."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import av
import httpx
import pytest
from PIL import Image, ImageChops, ImageStat

from sora_widgets.emulator import EmulatorConfig, RunningEmulator, start_emulator
from sora_widgets.emulator.cli import build_parser

KEY = "sk-vip-test-router-7d1e"
AUTH = {"Authorization": f"Bearer {KEY}"}
VEO = {"model": "google/veo-3.1", "prompt": "a red fox in deep snow", "duration": 4}


def quick(style: str = "router", **changes: Any) -> EmulatorConfig:
    values: dict[str, Any] = {"style": style, "time_scale": 0.01, "seed": 21,
                              "queue_seconds": (1.0, 1.0), "run_seconds": (6.0, 6.0),
                              "stall_probability": 0.0}
    values.update(changes)
    return EmulatorConfig(**values)


@pytest.fixture
def emu() -> Iterator[RunningEmulator]:
    with start_emulator(quick()) as running:
        yield running


@pytest.fixture
def client(emu: RunningEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.api_base_url, headers=AUTH, timeout=30) as http:
        yield http


def final(client: httpx.Client, task_id: str, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Every answer until a final one (a deadline, no sleep-and-hope)."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append(client.get(f"/v1/videos/{task_id}").json())
        if seen[-1]["status"] in ("completed", "failed"):
            return seen
        time.sleep(0.01)
    raise AssertionError(f"{task_id} not final in time: {seen[-1:]}")


def clip(client: httpx.Client, body: dict[str, Any]) -> bytes:
    answer = client.post("/v1/videos", json=body)
    assert answer.status_code == 202, answer.text
    task_id = answer.json()["id"]
    final(client, task_id)
    content = client.get(f"/v1/videos/{task_id}/content", params={"index": 0})
    assert content.status_code == 200 and content.headers["content-type"] == "video/mp4"
    return content.content


def first_frame(data: bytes) -> Image.Image:
    with av.open(io.BytesIO(data)) as container:
        frame = next(container.decode(video=0))
        return frame.to_image()  # type: ignore[no-untyped-call,no-any-return]


# -- shapes ---------------------------------------------------------------------------------


def test_submit_poll_and_the_answers_shapes(emu: RunningEmulator, client: httpx.Client) -> None:
    answer = client.post("/v1/videos", json=VEO)
    assert answer.status_code == 202
    task_id = answer.json()["id"]
    assert answer.json() == {"id": task_id, "status": "pending",
                             "polling_url": f"{emu.api_base_url}/v1/videos/{task_id}"}
    seen = final(client, task_id)
    words = [a["status"] for a in seen]
    assert set(words) <= {"pending", "in_progress", "completed"} and words[-1] == "completed"
    assert all("progress" not in a for a in seen)
    done = seen[-1]
    assert done["unsigned_urls"] == [f"{emu.api_base_url}/v1/videos/{task_id}/content?index=0"]
    assert "urls" not in done and done["usage"] == {"cost": pytest.approx(0.40 * 4)}
    emu.config.failure_rate = 1.0
    failed = final(client, client.post("/v1/videos", json=VEO).json()["id"])[-1]
    assert failed["status"] == "failed" and isinstance(failed["error"], str)
    assert "usage" not in failed and "unsigned_urls" not in failed


def test_models_list_is_public_with_sets_and_prices(emu: RunningEmulator) -> None:
    answer = httpx.get(f"{emu.api_base_url}/v1/videos/models")
    assert answer.status_code == 200
    models = {m["id"]: m for m in answer.json()["data"]}
    assert {"openai/sora-2", "openai/sora-2-pro", "google/veo-3.1"} <= set(models)
    veo = models["google/veo-3.1"]
    assert veo["seed"] is True and models["openai/sora-2"]["seed"] is False
    assert veo["supported_frame_images"] == ["first_frame", "last_frame"]
    assert {"resolution": "720p", "unit": "second", "usd": 0.40} in veo["pricing_skus"]


def test_without_the_api_prefix_it_answers_too(emu: RunningEmulator) -> None:
    with httpx.Client(base_url=emu.base_url, headers=AUTH) as http:
        assert http.post("/v1/videos", json=VEO).status_code == 202
    assert httpx.get(f"{emu.base_url}/").json()["api"] == "/api/v1/videos"


# -- strict ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "param"), [
    ({"size": "1280x720"}, "size"), ({"seconds": "8"}, "seconds"),
    ({"image": "https://e.example/a.png"}, "image"),
    ({"input_reference": "https://e.example/a.png"}, "input_reference"),
    ({"aspectRatio": "16:9"}, "aspectRatio"), ({"model": "sora-2"}, "model"),
    ({"model": "openai/sora-2", "seed": 4}, "seed"), ({"duration": 5}, "duration"),
    ({"duration": "8"}, "duration"), ({"duration": True}, "duration"),
    ({"resolution": "4k"}, "resolution"), ({"aspect_ratio": "1:1"}, "aspect_ratio"),
    ({"seed": -1}, "seed"), ({"seed": "42"}, "seed"), ({"generate_audio": "yes"},
                                                      "generate_audio"),
    ({"prompt": "  "}, "prompt"),
    ({"frame_images": [{"type": "image_url", "image_url": {"url": "https://e.example/a.png"},
                        "frame_type": "middle"}]}, "frame_images"),
    ({"model": "openai/sora-2", "frame_images": [
        {"type": "image_url", "image_url": {"url": "https://e.example/a.png"},
         "frame_type": "last_frame"}]}, "frame_images"),
])
def test_other_styles_fields_and_values_outside_the_sets_get_400(
        emu: RunningEmulator, client: httpx.Client, change: dict[str, Any], param: str) -> None:
    created = emu.stats()["tasks_created"]
    answer = client.post("/v1/videos", json={**VEO, **change})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == 400 and error["metadata"]["param"] == param
    assert emu.stats()["tasks_created"] == created


def test_the_other_styles_refuse_the_router_fields() -> None:
    for style, field in (("artifex", "seed"), ("openai", "frame_images")):
        with start_emulator(quick(style)) as emu:
            body = {"model": "sora-2", "prompt": "x", field: 1}
            answer = httpx.post(f"{emu.base_url}/v1/videos", json=body, headers=AUTH)
            if style == "artifex":   # the seed's relay ignores fields it does not know...
                assert answer.status_code == 200
            else:                    # ...the OpenAI-shaped one does not
                assert answer.status_code == 400


# -- seeds ----------------------------------------------------------------------------------


def test_seeds_are_deterministic(client: httpx.Client) -> None:
    first = clip(client, {**VEO, "seed": 42})
    again = clip(client, {**VEO, "seed": 42})
    other = clip(client, {**VEO, "seed": 43})
    unseeded = [clip(client, VEO), clip(client, VEO)]
    assert first == again
    assert first != other and unseeded[0] != unseeded[1] != first
    difference = ImageStat.Stat(ImageChops.difference(first_frame(first), first_frame(other)))
    assert sum(difference.mean) / 3 > 10   # visibly different, not a few noisy pixels


# -- the video: with the key from the relay, without it from a signed link --------------------


def test_content_needs_the_key_and_a_signed_link_does_not(emu: RunningEmulator,
                                                           client: httpx.Client) -> None:
    emu.config.signed_urls = True
    emu.config.run_seconds = (100_000.0, 100_000.0)    # this one never finishes in time
    running = client.post("/v1/videos", json=VEO).json()["id"]
    assert client.get(f"/v1/videos/{running}/content?index=0").status_code == 404  # not ready
    assert "unsigned_urls" not in client.get(f"/v1/videos/{running}").json()
    emu.config.run_seconds = (6.0, 6.0)
    task_id = client.post("/v1/videos", json=VEO).json()["id"]
    done = final(client, task_id)[-1]
    data = client.get(done["unsigned_urls"][0]).content
    assert data[4:8] == b"ftyp"
    assert httpx.get(done["unsigned_urls"][0]).status_code == 401
    assert client.get(f"/v1/videos/{task_id}/content?index=1").status_code == 404
    assert client.get(f"/v1/videos/{task_id}/content?variant=thumbnail").status_code == 400
    signed = done["urls"][0]
    assert signed.startswith(f"{emu.base_url}/videos/{task_id}.mp4?")
    assert httpx.get(signed).content == data
    emu.expire_links()
    assert httpx.get(signed).status_code == 403


def test_cost_is_reported_where_asked() -> None:
    with start_emulator(quick("openai", report_cost="always")) as emu:
        body = {"model": "sora-2-pro", "prompt": "x", "size": "1792x1024", "seconds": "8"}
        answer = httpx.post(f"{emu.base_url}/v1/videos", json=body, headers=AUTH).json()
        assert answer["usage"] == {"cost": pytest.approx(0.50 * 8)}
    with start_emulator(quick("artifex", report_cost="always")) as emu:
        body = {"model": "sora-2", "prompt": "x"}
        answer = httpx.post(f"{emu.base_url}/v1/videos", json=body, headers=AUTH).json()
        assert answer["usage"] == {"cost": 0.90}
    with start_emulator(quick(report_cost="never")) as emu, \
            httpx.Client(base_url=emu.api_base_url, headers=AUTH) as http:
        assert "usage" not in final(http, http.post("/v1/videos", json=VEO).json()["id"])[-1]
    with pytest.raises(ValueError, match="report_cost"):
        quick(report_cost="sometimes")
    with pytest.raises(ValueError, match="prices"):
        quick(prices={"router": {"google/veo-3.1": -1}})


def test_cli_speaks_router() -> None:
    args = build_parser().parse_args(["--style", "router", "--signed-urls"])
    assert (args.style, args.signed_urls) == ("router", True)


# -- openai: remix, extensions, stills ------------------------------------------------------


def test_openai_remix_extension_and_stills_over_raw_http() -> None:
    with start_emulator(quick("openai")) as emu, \
            httpx.Client(base_url=emu.base_url, headers=AUTH, timeout=30) as http:
        body = {"model": "sora-2", "prompt": "a lighthouse", "size": "1280x720", "seconds": "4"}
        emu.config.run_seconds = (100_000.0, 100_000.0)    # this one never finishes in time
        running = http.post("/v1/videos", json=body).json()["id"]
        early = http.post(f"/v1/videos/{running}/remix", json={"prompt": "at dawn"})
        assert early.status_code == 400 and early.json()["error"]["code"] == "video_not_ready"
        emu.config.run_seconds = (6.0, 6.0)
        parent = http.post("/v1/videos", json=body).json()["id"]
        final(http, parent)
        remix = http.post(f"/v1/videos/{parent}/remix", json={"prompt": "at dawn"}).json()
        assert remix["remixed_from_video_id"] == parent and remix["seconds"] == "4"
        assert http.post(f"/v1/videos/{parent}/remix",
                         json={"prompt": "x", "seconds": "8"}).status_code == 400
        assert http.post("/v1/videos/video_nope/remix", json={"prompt": "x"}).status_code == 404
        longer = http.post("/v1/videos/extensions", json={
            "video": {"id": parent}, "prompt": "pull back", "seconds": "8"}).json()
        assert longer["seconds"] == "12" and longer["remixed_from_video_id"] is None
        assert http.post("/v1/videos/extensions", json={
            "video": parent, "prompt": "x", "seconds": "5"}).status_code == 400
        thumb = http.get(f"/v1/videos/{parent}/content", params={"variant": "thumbnail"})
        sheet = http.get(f"/v1/videos/{parent}/content", params={"variant": "spritesheet"})
        assert thumb.headers["content-type"] in ("image/webp", "image/jpeg")
        assert sheet.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(thumb.content)).size == (640, 360)
    with start_emulator(quick("artifex")) as emu:
        assert httpx.post(f"{emu.base_url}/v1/videos/v_1/remix", json={"prompt": "x"},
                          headers=AUTH).status_code == 404


def test_a_restarted_emulator_keeps_router_tasks(tmp_path: Any) -> None:
    with start_emulator(quick(state_dir=tmp_path)) as emu, \
            httpx.Client(base_url=emu.api_base_url, headers=AUTH) as http:
        task_id = http.post("/v1/videos", json={**VEO, "seed": 5}).json()["id"]
        done = final(http, task_id)[-1]
    with start_emulator(quick(state_dir=tmp_path)) as emu, \
            httpx.Client(base_url=emu.api_base_url, headers=AUTH) as http:
        task = emu.task(task_id)
        assert task is not None and (task.seed, task.cost_usd) == (5, pytest.approx(1.6))
        again = http.get(f"/v1/videos/{task_id}").json()
        urls = ("polling_url", "unsigned_urls")   # the new emulator listens on another port
        assert {k: v for k, v in again.items() if k not in urls} == \
            {k: v for k, v in done.items() if k not in urls}
        assert again["status"] == "completed" and again["usage"] == {"cost": 1.6}


def _png(colour: tuple[int, int, int]) -> str:
    import base64

    buffer = io.BytesIO()
    Image.new("RGB", (320, 180), colour).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _frame_image(url: str, kind: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}, "frame_type": kind}


def test_a_clip_starts_on_its_first_frame_and_ends_on_its_last(client: httpx.Client) -> None:
    red, blue = (220, 30, 30), (30, 30, 220)
    data = clip(client, {**VEO, "frame_images": [_frame_image(_png(red), "first_frame"),
                                                 _frame_image(_png(blue), "last_frame")]})
    with av.open(io.BytesIO(data)) as container:
        frames = [f.to_image() for f in container.decode(video=0)]  # type: ignore[no-untyped-call]
    for image, colour in ((frames[0], red), (frames[-1], blue)):
        solid = Image.new("RGB", image.size, colour)
        assert sum(ImageStat.Stat(ImageChops.difference(image, solid)).mean) / 3 < 12
    middle = frames[len(frames) // 2]
    assert sum(ImageStat.Stat(ImageChops.difference(
        middle, Image.new("RGB", middle.size, blue))).mean) / 3 > 12


def test_an_extension_starts_where_its_parent_ends() -> None:
    with start_emulator(quick("openai")) as emu, \
            httpx.Client(base_url=emu.base_url, headers=AUTH, timeout=30) as http:
        body = {"model": "sora-2", "prompt": "a lighthouse", "size": "1280x720", "seconds": "4"}
        parent = http.post("/v1/videos", json=body).json()["id"]
        final(http, parent)
        child = http.post("/v1/videos/extensions", json={
            "video": {"id": parent}, "prompt": "pull back", "seconds": "4"}).json()["id"]
        final(http, child)
        videos = [http.get(f"/v1/videos/{i}/content").content for i in (parent, child)]
    with av.open(io.BytesIO(videos[0])) as container:
        ending = list(container.decode(video=0))[-1].to_image()  # type: ignore[no-untyped-call]
    start = first_frame(videos[1])

    def distance(a: Image.Image, b: Image.Image) -> float:
        return float(sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3)

    assert distance(ending, start) < 12
    assert distance(ending, start) < distance(first_frame(videos[0]), start)
