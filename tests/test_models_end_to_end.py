"""Issue 23 end to end, through ``sw`` on the emulator over loopback: the router style (seeds,
the billed cost recorded), and a remix on the openai style (one POST to /remix, the parent)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import sora_widgets as sw
from sora_widgets.emulator import RunningEmulator
from sora_widgets.studio.studio import Studio

from .conftest import TEST_TIME_SCALE, VIP_KEY
from .doubles.styles import styled_relay

#: One timeline for every task, and the billed cost in every answer: 5 % above the
#: catalogue's $0.40/s on the router (quote and bill differ).
RELAY = {"seed": 5, "queue_seconds": (1.0, 1.0), "run_seconds": (6.0, 6.0),
         "stall_probability": 0.0, "report_cost": "always",
         "prices": {"router": {"google/veo-3.1": 0.42}, "openai": {"sora-2": 0.10}}}


@pytest.fixture(params=["router", "openai"])
def paid(request: pytest.FixtureRequest, studio: Studio,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    with styled_relay(request.param, monkeypatch, key=VIP_KEY, time_scale=TEST_TIME_SCALE,
                      **RELAY) as relay:
        yield relay.emu


def _task(emu: RunningEmulator, base_url: str, task_id: str) -> dict[str, Any]:
    """The relay's own answer for a task (what the emulator says, not what we recorded)."""
    answer = httpx.get(f"{base_url}/v1/videos/{task_id}",
                       headers={"Authorization": f"Bearer {VIP_KEY}"}, timeout=10)
    answer.raise_for_status()
    return dict(answer.json())


def _posts(emu: RunningEmulator) -> int:
    return int(emu.stats()["posts"])


@pytest.mark.parametrize("paid", ["router"], indirect=True)
def test_router_seeds_are_the_request_and_the_billed_cost_is_what_is_recorded(
        paid: RunningEmulator) -> None:
    first = sw.generate("a heron at dawn", model="google/veo-3.1", seconds=4, seed=42).wait(60)
    again = sw.generate("a heron at dawn", model="google/veo-3.1", seconds=4, seed=42)
    other = sw.generate("a heron at dawn", model="google/veo-3.1", seconds=4, seed=7).wait(60)
    assert again.local_id == first.local_id and again.reused      # same seed: the same job
    assert other.local_id != first.local_id and _posts(paid) == 2  # another seed: another
    assert first.local_path is not None and first.local_path.stat().st_size > 0
    billed = float(_task(paid, paid.api_base_url, first.id)["usage"]["cost"])
    recorded = next(j for j in sw.jobs() if j.id == first.id)      # read back from the journal
    assert billed == pytest.approx(4 * 0.42) and recorded.cost_usd == pytest.approx(billed)
    assert sw.spend()["all_time"].charged_usd == pytest.approx(4 * 0.42 * 2)


@pytest.mark.parametrize("paid", ["openai"], indirect=True)
def test_a_remix_sends_one_post_to_remix_and_records_the_parent(paid: RunningEmulator) -> None:
    parent = sw.generate("a paper boat on a rainy street", model="sora-2", seconds=4).wait(60)
    before = _posts(paid)
    child = parent.remix("a paper boat on a snowy street").wait(60)
    assert _posts(paid) == before + 1
    assert child.parent_id == parent.local_id and child.local_path is not None
    assert _task(paid, paid.base_url, child.id)["remixed_from_video_id"] == parent.id
