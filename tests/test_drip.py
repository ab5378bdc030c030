"""Issue 21 item 10: a video link that drips is cut by a low-speed rule (curl's
``--speed-limit``/``--speed-time``), not only by the 600 s overall deadline.

The relay is a real loopback server (:class:`ToyRelay`) whose video link sends one byte a
second. The rule's time is scaled by ``SORA_POLL_SCALE`` as every other relay interval
(30 s x 0.05 = 1.5 s here), so these tests stay fast; the overall download deadline is
set to 20 s, so the code without the rule fails them in 20 s rather than hanging 10 min.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import sora_widgets as sw
from sora_widgets.core.errors import APITimeoutError
from sora_widgets.core.settings import settings
from sora_widgets.relay.client import AsyncSoraClient, SoraClient, is_transient
from sora_widgets.relay.download import MIN_STALL_SECONDS
from sora_widgets.studio.studio import Studio

from .doubles import Answer, Stream, ToyRelay, mp4_bytes, wait_until
from .doubles.toy import serve_mp4
from .scripts.trust_support import KEY

MB = 1024 * 1024
SCALE = 0.05
#: The rule's time in these tests: 30 s scaled by SCALE.
SPEED_TIME = 30 * SCALE
#: How long past the speed time a cut may come (the next byte, a busy 2-core machine).
SLACK = 5.0


def drip(total: int = 10 * MB) -> Stream:
    """One byte a second, 10 MB announced: it would take four months."""
    return Stream(head=mp4_bytes("drip")[:32], chunk=b"\0", total=total, length=total,
                  interval=1.0, content_type="video/mp4")


@pytest.fixture
def env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("SORA_LOW_SPEED_LIMIT", "SORA_LOW_SPEED_TIME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SORA_POLL_SCALE", str(SCALE))
    monkeypatch.setenv("SORA_DOWNLOAD_TIMEOUT", "20")
    return home


@pytest.fixture
def relay() -> Iterator[Callable[..., ToyRelay]]:
    made: list[ToyRelay] = []

    def make(**kwargs: Any) -> ToyRelay:
        made.append(ToyRelay(**kwargs))
        return made[-1]

    yield make
    for one in made:
        one.stop()


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir()] if folder.exists() else []


def _cut(relay: ToyRelay) -> None:
    wait_until(lambda: relay.streams and relay.streams[0].ended is not None, SLACK,
               "the relay to see the client hang up")
    assert relay.streams[0].aborted, relay.streams[0]


def test_the_rule_is_read_from_settings_and_scaled(env: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    current = settings()
    assert (current.low_speed_limit, current.low_speed_time) == (16 * 1024, 30.0)
    client = SoraClient(KEY, "http://127.0.0.1:9")
    assert client.low_speed_limit == 16 * 1024
    assert client.low_speed_time == pytest.approx(SPEED_TIME)
    monkeypatch.setenv("SORA_LOW_SPEED_LIMIT", "0")
    assert SoraClient(KEY, "http://127.0.0.1:9").low_speed_limit == 0


def test_a_one_byte_a_second_link_is_cut_within_the_speed_time(
        env: Path, relay: Callable[..., ToyRelay], tmp_path: Path) -> None:
    toy = relay(video=lambda r, task_id: drip())
    target = tmp_path / "videos" / "drip.mp4"
    tracemalloc.start()
    started = time.monotonic()
    try:
        with SoraClient(KEY, toy.base_url) as client, \
                pytest.raises(APITimeoutError) as caught:
            client.download(toy.video_url("t1"), target)
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < SPEED_TIME + SLACK, (
        f"a 1 byte/s link ran {elapsed:.1f} s (low-speed time {SPEED_TIME} s)")
    assert "KiB/s" in str(caught.value), caught.value
    assert is_transient(caught.value)        # the engine fetches a fresh link and retries
    assert peak < 4 * MB, f"{peak / MB:.1f} MB held while dripping"
    assert _leftovers(target.parent) == []   # no file, no .part
    _cut(toy)
    assert toy.streams[0].bytes < 1024


def test_the_async_client_cuts_a_drip_too(env: Path, relay: Callable[..., ToyRelay],
                                          tmp_path: Path) -> None:
    toy = relay(video=lambda r, task_id: drip())
    target = tmp_path / "videos" / "drip.mp4"

    async def fetch() -> float:
        client = AsyncSoraClient(KEY, toy.base_url)
        started = time.monotonic()
        try:
            with pytest.raises(APITimeoutError, match="KiB/s"):
                await client.download(toy.video_url("t1"), target)
            return time.monotonic() - started
        finally:
            await client.aclose()

    elapsed = asyncio.run(fetch())
    assert elapsed < SPEED_TIME + SLACK, f"{elapsed:.1f} s"
    assert _leftovers(target.parent) == []
    _cut(toy)


def test_a_link_that_sends_headers_then_nothing_is_cut_within_the_speed_time(
        env: Path, relay: Callable[..., ToyRelay], tmp_path: Path) -> None:
    """A stall sends nothing at all: no byte arrives to check the rule on, so the read
    timeout of a download is never longer than the speed time (30 s of zero is below it),
    floored at MIN_STALL_SECONDS (the headers' wait: the emulator renders on a first GET)."""
    stall = Stream(head=mp4_bytes("stall")[:32], chunk=b"\0", total=64, length=MB,
                   interval=60.0, content_type="video/mp4")
    toy = relay(video=lambda r, task_id: stall)
    started = time.monotonic()
    with SoraClient(KEY, toy.base_url) as client, pytest.raises(APITimeoutError):
        client.download(toy.video_url("t1"), tmp_path / "stall.mp4")
    assert time.monotonic() - started < max(SPEED_TIME, MIN_STALL_SECONDS) + SLACK


def test_a_slow_link_above_the_limit_is_not_cut(env: Path, relay: Callable[..., ToyRelay],
                                                tmp_path: Path) -> None:
    """64 KiB every 0.1 s (640 KiB/s, above 16 KiB/s) for longer than the speed time."""
    total = 40 * 64 * 1024
    steady = Stream(head=b"", chunk=b"\1" * 65536, total=total, length=total, interval=0.1,
                    content_type="video/mp4")
    toy = relay(video=lambda r, task_id: steady)
    with SoraClient(KEY, toy.base_url) as client:
        saved = client.download(toy.video_url("t1"), tmp_path / "steady.mp4")
    assert saved.stat().st_size == total
    assert toy.streams[0].seconds > SPEED_TIME


def test_the_rule_can_be_switched_off(env: Path, relay: Callable[..., ToyRelay],
                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SORA_LOW_SPEED_LIMIT=0 (a user on a very slow line): only the overall deadline."""
    monkeypatch.setenv("SORA_LOW_SPEED_LIMIT", "0")
    monkeypatch.setenv("SORA_DOWNLOAD_TIMEOUT", str(SPEED_TIME + 2))
    toy = relay(video=lambda r, task_id: drip())
    started = time.monotonic()
    with SoraClient(KEY, toy.base_url) as client, pytest.raises(APITimeoutError) as caught:
        client.download(toy.video_url("t1"), tmp_path / "drip.mp4")
    assert "SORA_DOWNLOAD_TIMEOUT" in str(caught.value)
    assert time.monotonic() - started >= SPEED_TIME + 2


def test_a_drip_settles_wait_from_a_fresh_link(
        env: Path, relay: Callable[..., ToyRelay], monkeypatch: pytest.MonkeyPatch) -> None:
    """The first link drips; the engine cuts it, asks the relay again (a GET) and saves
    the video from the fresh link: ``wait()`` settles long before the overall deadline."""
    served: list[str] = []

    def video(toy: ToyRelay, task_id: str) -> Answer | Stream:
        served.append(task_id)
        return drip() if len(served) == 1 else serve_mp4(toy, task_id)

    toy = relay(video=video)
    monkeypatch.setenv("SORA_API_KEY", KEY)
    monkeypatch.setenv("SORA_BASE_URL", toy.base_url)
    fresh = Studio()
    monkeypatch.setattr("sora_widgets.studio.studio._default", fresh)
    try:
        started = time.monotonic()
        job = sw.generate("a cat over a dripping link").wait(timeout=SPEED_TIME + 3 * SLACK)
        elapsed = time.monotonic() - started
    finally:
        fresh.close()
    assert job.local_path is not None and job.local_path.read_bytes() == mp4_bytes(job.id or "")
    assert elapsed < 20, f"{elapsed:.1f} s"
    assert len(served) >= 2
    _cut(toy)
    assert len(toy.gets(job.id)) >= 2          # the fresh link came from a new GET
    assert len(toy.posts()) == 1               # and nothing was paid twice


def test_the_rule_on_a_clock() -> None:
    """curl's rule, on an injected clock: a window below the limit ends the transfer; a
    stall followed by a burst that makes up for it does not; limit 0 never cuts."""
    from sora_widgets.relay.download import LowSpeed

    now = [0.0]
    rule = LowSpeed(2048, 10.0, clock=lambda: now[0])
    for second in range(1, 10):          # 9 s at 100 B/s: the window is not over yet
        now[0] = float(second)
        rule.add(100)
    now[0] = 12.0
    rule.add(30_000)                     # a burst: 30,900 B in 12 s is above 2 KiB/s
    now[0] = 23.0
    with pytest.raises(APITimeoutError, match=r"less than 2 KiB/s for 10 s"):
        rule.add(5000)                   # 5,000 B in the next 11 s: below
    off = LowSpeed(0, 10.0, clock=lambda: now[0])
    now[0] = 1000.0
    off.add(1)
    assert not off.active


def test_a_slow_first_byte_does_not_count_as_a_drip(
        env: Path, relay: Callable[..., ToyRelay], tmp_path: Path) -> None:
    """A relay that takes longer than the speed time to answer (the emulator renders a clip
    on its first GET), then sends the file at full speed: the speed window starts with
    the answer's headers (their wait is bounded by the read timeout), so it is not cut."""
    total = 1024 * 1024
    fast = Stream(head=mp4_bytes("late")[:32], chunk=b"\1" * 65536, total=total,
                  length=total, interval=0.01, content_type="video/mp4")

    def late(toy: ToyRelay, task_id: str) -> Stream:
        toy.stopping.wait(SPEED_TIME + 1.0)     # making the file, before any header
        return fast

    toy = relay(video=late)
    with SoraClient(KEY, toy.base_url) as client:
        saved = client.download(toy.video_url("t1"), tmp_path / "late.mp4")
    assert saved.stat().st_size == total
