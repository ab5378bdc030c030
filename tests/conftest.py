"""Shared fixtures: a real emulator on loopback, an isolated journal home, a fresh Studio.

Modelled on httpx's ``serve_in_thread``: integration tests talk HTTP to a real
server in a thread, never to mocks.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from sora_widgets.core.catalog import use_today
from sora_widgets.core.settings import ENV_VARS as SETTINGS_ENV_VARS
from sora_widgets.core.settings import Preferences, preferences
from sora_widgets.emulator import EmulatorConfig, RunningEmulator, start_emulator
from sora_widgets.engine.job import poller
from sora_widgets.studio import studio as studio_module

from .doubles.styles import STYLES, Styled, styled_relay

#: Emulator timelines in tests run 100x faster; the client's schedule is scaled alike.
TEST_TIME_SCALE = 0.01
VIP_KEY = "sk-test-vip-0123456789abcdef"
DEFAULT_PREFERENCES = Preferences()
#: Every setting the package reads: the settings module's own list (``tests/test_house.py``
#: checks it against the source). The ``home`` fixture clears these and any other ``SORA_*``.
ENV_VARS = SETTINGS_ENV_VARS


#: A terminal size inherited from the process that started pytest. Under pytest-xdist it is
#: always there: pytest imports GNU readline in the controller (its capture's readline
#: workaround), readline's initialisation exports COLUMNS=80 and LINES=24 into the C
#: environment, and the workers inherit them, so the CLI's piped tables came out 80 wide.
TERMINAL_SIZE_VARS = ("COLUMNS", "LINES")


def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset every ``SORA_*`` variable (the package's settings, and any new one too) and an
    inherited terminal size (tests that want one set it themselves)."""
    names = {*ENV_VARS, *TERMINAL_SIZE_VARS, *(n for n in os.environ if n.startswith("SORA_"))}
    for name in names:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    with start_emulator(EmulatorConfig(time_scale=TEST_TIME_SCALE, seed=7)) as emu:
        yield emu


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment: no key, a private SORA_WIDGETS_HOME, a private cwd."""
    clean_environment(monkeypatch)
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
def _fresh_preferences() -> Iterator[None]:
    """The process-wide preferences (``%config SoraMagics.*``) start every test at their
    defaults: a SoraMagics built with ``embed=True`` writes there, and under pytest-xdist the
    test that used to set it back may run on the other worker (a later storyboard then came
    out embedded)."""
    for spec in dataclasses.fields(Preferences):
        setattr(preferences, spec.name, getattr(DEFAULT_PREFERENCES, spec.name))
    yield


#: Under ``pytest -n 2 --dist loadgroup`` (tests/run.sh) each group runs on one worker, in
#: collection order: the browser tests share one JupyterLab and one Chromium, and the check
#: that no loop was left on the main thread must run after them in the same process; the
#: PostgreSQL tests share one server.
BROWSER_GROUP = "browser"
POSTGRES_GROUP = "postgres"
AFTER_THE_BROWSER = "test_zz_no_leftover_loop.py"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test on the real PostgreSQL server is slow (it starts one, in a temp dir); under
    xdist, the browser and PostgreSQL tests run in their own groups."""
    grouped = config.pluginmanager.hasplugin("xdist")
    for item in items:
        on_postgres = "pg_server" in getattr(item, "fixturenames", ())
        if on_postgres:
            item.add_marker(pytest.mark.slow)
        if not grouped:
            continue
        if item.get_closest_marker("browser") or item.path.name == AFTER_THE_BROWSER:
            item.add_marker(pytest.mark.xdist_group(BROWSER_GROUP))
        elif on_postgres:
            item.add_marker(pytest.mark.xdist_group(POSTGRES_GROUP))


@pytest.fixture(autouse=True)
def _before_sora_retirement() -> Iterator[None]:
    """Judge model retirements as on a day before OpenAI's sora-2 shutdown (2026-09-24) and
    more than 30 days from it, so tests of the openai style's paid path keep paying; the
    retirement tests move the day themselves (``use_today``)."""
    with use_today(date(2026, 6, 1)):
        yield


@pytest.fixture(params=STYLES)
def styled(request: pytest.FixtureRequest, studio: studio_module.Studio,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Styled]:
    """A paid relay (key + base URL) speaking one style, and SORA_API_STYLE saying so: a
    test that asks for it runs once per wire style."""
    with styled_relay(str(request.param), monkeypatch, key=VIP_KEY,
                      time_scale=TEST_TIME_SCALE) as relay:
        yield relay
