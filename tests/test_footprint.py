"""What tracking jobs costs the process, in the currency of the main-thread stall.

A full garbage collection holds the GIL while it walks every tracked object, and it runs on
whichever thread happens to allocate: with a thousand jobs in flight the poller's
collections were what stalled the kernel (``benchmarks/scale.py`` measures the stall). So:
few collector-tracked objects per handle, no task per waiting job, and no cyclic garbage
per request. Counted, not timed.
"""

from __future__ import annotations

import asyncio
import gc
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import sora_widgets as sw
from sora_widgets.core.models import VideoRequest
from sora_widgets.emulator import RunningEmulator
from sora_widgets.engine.job import Job
from sora_widgets.engine.poller import MAX_IN_FLIGHT, poller
from sora_widgets.relay.client import AsyncSoraClient, SoraClient
from sora_widgets.studio import studio as studio_module

from .conftest import VIP_KEY
from .doubles import wait_until

N_JOBS = 300


@pytest.fixture
def slow_relay(studio: studio_module.Studio,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An emulator in its own process (its objects are not this one's) on real timelines
    (60–180 s): every job stays queued or running for the whole test."""
    command = [sys.executable, "-m", "sora_widgets.emulator", "--port", "0",
               "--time-scale", "1", "--seed", "3"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            match = re.search(r"http://127\.0\.0\.1:\d+", process.stdout.readline())
            assert match
            monkeypatch.setenv("SORA_API_KEY", VIP_KEY)
            monkeypatch.setenv("SORA_BASE_URL", match.group(0))
            yield match.group(0)
        finally:
            poller().stop()
            process.kill()


def _posts(base_url: str) -> int:
    return int(httpx.get(f"{base_url}/_emulator/stats").json()["posts"])


def _loop_tasks() -> int:
    loop = poller().loop
    assert loop is not None

    async def count() -> int:
        return len(asyncio.all_tasks())

    return asyncio.run_coroutine_threadsafe(count(), loop).result(10)


def _tracked_objects() -> int:
    gc.collect()
    return len(gc.get_objects())


def test_due_jobs_wait_in_the_heap_not_as_tasks(slow_relay: str) -> None:
    """300 submits fall due at once; at most MAX_IN_FLIGHT steps exist as tasks (0.1 and
    the first rebuild made a task per due job, each waiting on a semaphore)."""
    jobs = [sw.generate(f"due at once {i}") for i in range(N_JOBS)]
    peak = _loop_tasks()
    wait_until(lambda: all(j.id for j in jobs), 60)
    assert _posts(slow_relay) == N_JOBS
    assert peak <= MAX_IN_FLIGHT + 1, peak


def test_a_polled_job_costs_few_collector_objects(slow_relay: str) -> None:
    """Handles share their backend, folder and schedule policy; no Event or observer
    structures per handle. Measured with every job submitted and waiting for its next GET."""
    sw.generate("warm up: imports, clients, connections").cancel()
    wait_until(lambda: not poller().records(), 30)
    before = _tracked_objects()
    jobs: list[Job] = [sw.generate(f"footprint {i}") for i in range(N_JOBS)]
    wait_until(lambda: all(j.id for j in jobs) and _loop_tasks() <= 1, 60)
    per_job = (_tracked_objects() - before) / N_JOBS
    # 0.1 and the first rebuild: ~30 (an Event with its Condition, lock, deque and bound
    # methods; a Backend, key, folder and policy per handle; four traitlets observer
    # structures). Now 11: the handle, its dict, lock, request, state, weak reference, and
    # the poller's entry with its schedule (its dict and two lists).
    assert per_job <= 14, per_job
    assert len({id(j.backend) for j in jobs}) == 1
    assert len({id(j._videos_dir) for j in jobs}) == 1


def _garbage_of(action: object) -> Counter[str]:
    """The types of the cyclic garbage ``action()`` leaves (collected with DEBUG_SAVEALL)."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        action()  # type: ignore[operator]
        gc.collect()
    finally:
        gc.set_debug(0)
        garbage, gc.garbage[:] = list(gc.garbage), []
    return Counter(f"{type(o).__module__}.{type(o).__name__}" for o in garbage)


def test_requests_leave_no_cyclic_garbage(emulator: RunningEmulator, tmp_path: Path) -> None:
    """httpx links a response and its stream both ways: ~40 objects per request were left
    for the collector (every poll of every job). The clients break the cycle, for polls and
    downloads alike."""
    request = VideoRequest.create("garbage", aspect_ratio="16:9")
    deadline = time.monotonic() + 30

    async def async_round() -> None:
        async with httpx.AsyncClient() as http:
            client = AsyncSoraClient(VIP_KEY, emulator.base_url, http=http)
            task = await client.submit(request)
            while task.status != "completed":
                assert time.monotonic() < deadline
                task, _ = await client.retrieve_once(task.id)
            assert task.video_url
            await client.download(task.video_url, tmp_path / "async.mp4")

    def sync_round() -> None:
        with SoraClient(VIP_KEY, emulator.base_url) as client:
            task = client.submit(VideoRequest.create("garbage, again", aspect_ratio="9:16"))
            while task.status != "completed":
                assert time.monotonic() < deadline
                task = client.retrieve_once(task.id)
            assert task.video_url
            client.download(task.video_url, tmp_path / "sync.mp4")

    left = _garbage_of(lambda: asyncio.run(async_round())) + _garbage_of(sync_round)
    from_httpx = {name: n for name, n in left.items() if name.startswith(("httpx", "httpcore"))}
    assert from_httpx == {}, from_httpx
    assert emulator.stats()["gets"] >= 10        # it did poll, repeatedly
