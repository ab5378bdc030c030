"""Issue 23 end to end, through ``sw`` on the emulator over loopback: the router style (seeds,
the billed cost recorded), a remix on the openai style (one POST to /remix, the parent), and
seeds through every entry point (the magic, a sweep's seed axis, the CLI), refused before
sending on the seed's relay."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import sora_widgets as sw
from sora_widgets.core.errors import ValidationError
from sora_widgets.emulator import RunningEmulator
from sora_widgets.studio.studio import Studio
from sora_widgets.ui import cli

from .conftest import TEST_TIME_SCALE, VIP_KEY
from .doubles.styles import styled_relay
from .test_magic import Session, ip, shell  # noqa: F401  (fixtures)

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


# -- seeds end to end: the magic, a sweep's seed axis, the CLI; refused on the seed's relay ---


def _sent(emu: RunningEmulator, jobs: Iterable[Any], name: str = "seed") -> list[Any]:
    """A field of each job's task as the relay received it (the seed, the prompt)."""
    tasks = [emu.task(str(job.id)) for job in jobs]
    return [getattr(task, name) if task is not None else "no such task" for task in tasks]


@pytest.mark.parametrize("paid", ["router"], indirect=True)
def test_magic_seed_and_seed_axis_reach_the_wire(paid: RunningEmulator,
                                                 ip: Session) -> None:  # noqa: F811
    veo = "--model google/veo-3.1 --seconds 4 --wait"
    ip.run(f'%sora "a heron at dawn" {veo} --seed 7 -o one')
    one = ip.shell.user_ns["one"]
    assert one.status == "completed" and _sent(paid, [one]) == [7]
    assert one.request.seed == 7 and _posts(paid) == 1
    ip.run(f'%sora "a heron at dawn" {veo} --seed 7 -o again')
    assert ip.shell.user_ns["again"].local_id == one.local_id and _posts(paid) == 1
    ip.run(f'%sora "a heron at dawn" {veo} --seed {{7|8}} -o takes')
    takes = ip.shell.user_ns["takes"]
    assert [t.request.seed for t in takes] == [7, 8] and takes.values(1) == {"seed": "8"}
    assert takes[0].local_id == one.local_id and _posts(paid) == 2     # 7 reused, 8 new
    assert _sent(paid, takes) == [7, 8]


@pytest.mark.parametrize("paid", ["router"], indirect=True)
def test_a_sweep_with_a_seed_axis_sends_each_seed(paid: RunningEmulator) -> None:
    takes = sw.sweep("a {red|blue} kite", model="google/veo-3.1", seed=[1, 2], confirm=True)
    assert [dict(takes.values(i)) for i in range(len(takes))] == [
        {"{red|blue}": "red", "seed": "1"}, {"{red|blue}": "red", "seed": "2"},
        {"{red|blue}": "blue", "seed": "1"}, {"{red|blue}": "blue", "seed": "2"}]
    for take in takes:
        take.wait(60)
    assert _sent(paid, takes) == [1, 2, 1, 2] and _posts(paid) == 4
    assert _sent(paid, takes, "prompt") == ["a red kite", "a red kite", "a blue kite",
                                            "a blue kite"]


@pytest.mark.parametrize("paid", ["router"], indirect=True)
def test_the_cli_sends_a_seed(paid: RunningEmulator, tmp_path: Path) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "sora_widgets.ui.cli", "generate", "a heron at dawn", "--model",
         "google/veo-3.1", "--seconds", "4", "--seed", "7", "--quiet"],
        env=dict(os.environ), cwd=tmp_path, capture_output=True, text=True, timeout=120,
        check=False)
    assert made.returncode == 0, made.stderr
    (job,) = sw.jobs()
    assert job.request.seed == 7 and _sent(paid, [job]) == [7] and _posts(paid) == 1


def test_a_seed_is_refused_before_sending_on_the_seeds_relay(
        relay: RunningEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    """The seed's relay (artifex, sora-2) takes no seed: each entry point says so, 0 POSTs."""
    assert cli.main(["generate", "a heron at dawn", "--seed", "7"]) == 2
    assert "takes no seed" in capsys.readouterr().err
    for call in (lambda: sw.generate("a heron at dawn", seed=7),
                 lambda: sw.sweep("a {red|blue} kite", seed=[1, 2])):
        with pytest.raises(ValidationError, match="takes no seed"):
            call()
    assert _posts(relay) == 0 and sw.jobs() == []
