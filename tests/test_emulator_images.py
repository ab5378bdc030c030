"""First-frame images over real loopback HTTP: the video starts on the image it was given
(artifex ``image``, openai ``input_reference``), decoded frame 0 against the image; loopback
fetches, never any other host; garbage answered with 400; kept across a restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sora_widgets.emulator import RunningEmulator, start_emulator

from .doubles import FileServer
from .test_emulator_openai import (
    AUTH,
    SAME_IMAGE,
    content,
    data_uri,
    difference,
    encoded,
    frames,
    picture,
    quick,
    submit,
    wait_final,
)

# --- first-frame images in the artifex style, loopback fetches -----------------------------


@pytest.fixture
def images() -> Iterator[FileServer]:
    """A loopback image host serving fixed bodies by path, counting requests."""
    with FileServer() as server:
        yield server


@pytest.fixture
def artifex() -> Iterator[tuple[RunningEmulator, httpx.Client]]:
    with start_emulator(quick(style="artifex")) as emu, httpx.Client(
        base_url=emu.base_url, headers=AUTH, timeout=20) as client:
        yield emu, client


def artifex_video(client: httpx.Client, **fields: Any) -> tuple[dict[str, Any], bytes]:
    response = client.post("/v1/videos", json={"model": "sora-2", "prompt": "next shot",
                                               **fields})
    assert response.status_code == 200, response.text
    done = wait_final(client, response.json()["id"])
    assert done["status"] == "completed"
    return done, httpx.get(done["video_url"]).content


def test_artifex_data_uri_image_is_the_first_frame(
        artifex: tuple[RunningEmulator, httpx.Client]) -> None:
    _, client = artifex
    image = picture(hue=30)
    _, video = artifex_video(client, image=data_uri(image, "JPEG"))
    decoded = frames(video)
    assert len(decoded) == 144 and decoded[0].size == (640, 360)
    assert difference(decoded[0], image) < SAME_IMAGE
    assert difference(decoded[5], image) < SAME_IMAGE  # held for half a second
    assert difference(decoded[-1], image) > 2 * SAME_IMAGE


def test_artifex_loopback_image_is_fetched_and_shown(
        artifex: tuple[RunningEmulator, httpx.Client], images: FileServer) -> None:
    _, client = artifex
    image = picture(720, 1280, hue=90)
    images.bodies["/frame.png"] = (200, encoded(image))
    _, video = artifex_video(client, aspect_ratio="9:16",
                             image=[f"{images.url}/frame.png", "https://cdn.example/b.png"])
    assert images.hits == ["/frame.png"]
    first = frames(video)[0]
    assert first.size == (360, 640) and difference(first, image) < SAME_IMAGE


def test_continuity_last_frame_of_one_clip_starts_the_next(
        artifex: tuple[RunningEmulator, httpx.Client]) -> None:
    _, client = artifex
    _, first_clip = artifex_video(client, prompt="shot one")
    last = frames(first_clip)[-1]
    _, second_clip = artifex_video(client, prompt="shot two", image=data_uri(last))
    assert difference(frames(second_clip)[0], last) < SAME_IMAGE


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [("/garbage.png", 200, b"this is not an image at all"), ("/missing.png", 404, b"")],
)
def test_artifex_bad_loopback_image_is_400(artifex: tuple[RunningEmulator, httpx.Client],
                                           images: FileServer, path: str, status: int,
                                           body: bytes) -> None:
    emu, client = artifex
    if status == 200:
        images.bodies[path] = (status, body)
    response = client.post("/v1/videos", json={"model": "sora-2", "prompt": "x",
                                               "image": f"{images.url}{path}"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "image" and "'image'" in error["message"]
    assert emu.stats()["tasks_created"] == 0


def test_non_loopback_image_is_never_fetched(
        artifex: tuple[RunningEmulator, httpx.Client]) -> None:
    emu, client = artifex
    started = time.monotonic()
    # TEST-NET-1: unroutable; a fetch attempt would hang until its timeout.
    response = client.post("/v1/videos", json={"model": "sora-2", "prompt": "x",
                                               "image": "http://192.0.2.1/a.png"})
    assert response.status_code == 200 and time.monotonic() - started < 2
    task = emu.task(response.json()["id"])
    assert task is not None and task.image == ("http://192.0.2.1/a.png",)
    assert not task.first_frame


@pytest.mark.parametrize(
    "image",
    ["data:image/png;base64,%%%", "data:image/png;base64,aGVsbG8=",
     ["https://cdn.example/a.png", "data:image/png;base64,***"]],
)
def test_artifex_undecodable_data_uri_is_400(artifex: tuple[RunningEmulator, httpx.Client],
                                             image: Any) -> None:
    emu, client = artifex
    response = client.post("/v1/videos", json={"model": "sora-2", "prompt": "x", "image": image})
    assert response.status_code == 400 and response.json()["error"]["param"] == "image"
    assert emu.stats()["tasks_created"] == 0


def test_first_frame_survives_a_restart(tmp_path: Path) -> None:
    image = picture(hue=200)
    with start_emulator(quick(state_dir=tmp_path)) as first, httpx.Client(
            base_url=first.base_url, headers=AUTH) as client:
        task_id = submit(client, seconds="4", input_reference=data_uri(image))["id"]
        wait_final(client, task_id)
    with start_emulator(quick(state_dir=tmp_path)) as second, httpx.Client(
            base_url=second.base_url, headers=AUTH, timeout=20) as client:
        assert difference(frames(content(client, task_id))[0], image) < SAME_IMAGE


@pytest.mark.parametrize("ratio", ["9:16", "16:9"])
def test_the_clip_title_is_never_cut(ratio: str) -> None:
    """The title (ratio · caption · a full task id) fits in both shapes: the portrait clip
    used to end "9:16 · sora-widgets emulator ·…" (issue 22)."""
    from sora_widgets.emulator.video import frame_size, title_layout

    width, height = frame_size(ratio)
    title = f"{ratio} · sora-widgets emulator · v_9cda16c20393b404bb9f77bb"
    _, lines = title_layout(title, width, height)
    assert not any("…" in line for line in lines), lines
    assert " ".join(lines).replace(" ", "") == title.replace(" ", "")
