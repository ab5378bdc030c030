"""Shared fixtures: a real emulator on loopback, an isolated journal home, a fresh Studio.

Modelled on httpx's ``serve_in_thread``: integration tests talk HTTP to a real
server in a thread, never to mocks.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from sora_widgets.core.catalog import use_today
from sora_widgets.emulator import EmulatorConfig, RunningEmulator, start_emulator
from sora_widgets.engine.job import poller
from sora_widgets.studio import studio as studio_module

#: Emulator timelines in tests run 100x faster; the client's schedule is scaled alike.
TEST_TIME_SCALE = 0.01
VIP_KEY = "sk-test-vip-0123456789abcdef"
ENV_VARS = ("SORA_API_KEY", "SORA_BASE_URL", "SORA_BUDGET_USD", "SORA_MODEL", "SORA_PRICE_USD",
            "SORA_EMULATOR_TIME_SCALE", "SORA_POLL_SCALE", "SORA_WIDGETS_HOME",
            "SORA_JOURNAL_URL", "SORA_DAILY_BUDGET_USD", "SORA_TEAM_BUDGET_USD", "SORA_USER",
            "SORA_CONFIRM_USD", "SORA_DOWNLOAD_TIMEOUT", "SORA_MAX_VIDEO_MB", "SORA_API_STYLE")


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    with start_emulator(EmulatorConfig(time_scale=TEST_TIME_SCALE, seed=7)) as emu:
        yield emu


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment: no key, a private SORA_WIDGETS_HOME, a private cwd."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "home"
    monkeypatch.setenv("SORA_WIDGETS_HOME", str(path))
    monkeypatch.setenv("SORA_EMULATOR_TIME_SCALE", str(TEST_TIME_SCALE))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return path


@pytest.fixture
def studio(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[studio_module.Studio]:
    """A fresh process-wide Studio (embedded emulator when no key is set)."""
    fresh = studio_module.Studio()
    monkeypatch.setattr(studio_module, "_default", fresh)
    yield fresh
    fresh.close()


@pytest.fixture
def relay(emulator: RunningEmulator, studio: studio_module.Studio,
          monkeypatch: pytest.MonkeyPatch) -> RunningEmulator:
    """The paid path: a key and a base URL pointing at an emulator (charges are recorded)."""
    monkeypatch.setenv("SORA_API_KEY", VIP_KEY)
    monkeypatch.setenv("SORA_BASE_URL", emulator.base_url)
    monkeypatch.setenv("SORA_POLL_SCALE", str(TEST_TIME_SCALE))
    return emulator


@pytest.fixture(autouse=True)
def _stop_poller_after_test() -> Iterator[None]:
    yield
    poller().stop()


@pytest.fixture(autouse=True)
def _before_sora_retirement() -> Iterator[None]:
    """Judge model retirements as on a day before OpenAI's sora-2 shutdown (2026-09-24) and
    more than 30 days from it, so tests of the openai style's paid path keep paying; the
    retirement tests move the day themselves (``use_today``)."""
    with use_today(date(2026, 6, 1)):
        yield
