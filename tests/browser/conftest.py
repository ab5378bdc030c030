"""Browser-test fixtures: one JupyterLab per session, Debian's Chromium via Playwright.

The JupyterLab server gets a temporary root, journal (SORA_WIDGETS_HOME) and Jupyter
dirs, and no SORA_API_KEY: kernels use the embedded emulator, its timeline compressed
by SORA_EMULATOR_TIME_SCALE. Tests that need another server (Notebook 7) start it
themselves with ``start_server``. A missing Chromium fails the session, it does not skip:
``apt-get install -y chromium``. Screenshots go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ._harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    RUNNING,
    SCREENSHOTS,
    JupyterServer,
    Notebook,
    report,
    serving,
)


@pytest.fixture(scope="session")
def artifacts(request: pytest.FixtureRequest) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in sorted(SCREENSHOTS.glob("*.png")):   # listed first: not deleted mid-scan
        old.unlink(missing_ok=True)
    report(request.config, f"\nbrowser screenshots: {SCREENSHOTS}")
    return SCREENSHOTS


@pytest.fixture(scope="package")
def lab(tmp_path_factory: pytest.TempPathFactory,
        request: pytest.FixtureRequest) -> Iterator[JupyterServer]:
    """The session's JupyterLab (kernels: embedded emulator, no key)."""
    with serving("lab", tmp_path_factory.mktemp("lab"), request.config, "JupyterLab") as server:
        yield server


@pytest.fixture(scope="package")
def notebook7(tmp_path_factory: pytest.TempPathFactory,
              request: pytest.FixtureRequest) -> Iterator[JupyterServer]:
    """A Notebook 7 server (``jupyter notebook``), started by the first test that needs it."""
    with serving("notebook", tmp_path_factory.mktemp("nb7"), request.config,
                 "Notebook 7") as server:
        yield server


# -- the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Package-scoped on purpose: Playwright's sync API registers its event loop as the
    main thread's running loop while it lives; it must be gone before the other tests
    (``asyncio.run`` refuses to start inside a running loop)."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: the browser tests need it "
                    "(apt-get install -y chromium, or set SORA_TEST_CHROMIUM)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest, artifacts: Path) -> Iterator[Any]:
    """A fresh browser context and page; page errors are collected in ``page.errors``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  device_scale_factor=1)
    context.set_default_timeout(30_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors
    try:
        yield pg
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            with contextlib.suppress(Exception):
                pg.screenshot(path=str(artifacts / f"FAILED-{request.node.name}.png"),
                              full_page=True)
        context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def open_notebook(page: Any, lab: JupyterServer) -> Iterator[Any]:
    """``open_notebook(name, cells)``: write a notebook into Lab's root and open it."""

    def opener(name: str, cells: Sequence[str], server: JupyterServer | None = None) -> Notebook:
        srv = server or lab
        srv.write_notebook(name, cells)
        return Notebook(page, srv, name).open()

    yield opener


@pytest.fixture(autouse=True)
def _shutdown_kernels_after_test() -> Iterator[None]:
    yield
    for server in list(RUNNING):
        server.shutdown_kernels()


