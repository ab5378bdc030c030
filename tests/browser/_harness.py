"""The browser tests' machinery: Jupyter servers, a notebook driven in a page, the video check.

One ``jupyter lab`` serves the whole session (a temporary root, journal and Jupyter
dirs; no SORA_API_KEY, so kernels use the embedded emulator, its timeline compressed
by SORA_EMULATOR_TIME_SCALE). ``jupyter notebook`` (Notebook 7) is started only by the
test that needs it. Each test writes its own notebook into the root, opens it, runs it
and waits on DOM conditions with deadlines, never on fixed sleeps.

A missing Chromium is a failure, not a skip: ``apt-get install -y chromium``.
Screenshots of every end state go to ``artifacts/screenshots/`` (printed at start).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
LOGS = ARTIFACTS / "logs"
DOCS = REPO / "docs"
#: The jupyter next to the interpreter running the tests (the project's venv).
BIN = Path(sys.executable).parent
CHROMIUM = Path(os.environ.get("SORA_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",               # root on CI
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
]
#: Emulator timeline compression inside the kernels: a job takes ~1.5-4 s.
TIME_SCALE = "0.02"
SERVER_START_DEADLINE = 90.0
KERNEL_DEADLINE_MS = 60_000
#: From Run to a playing video, for one job at TIME_SCALE (generous for 2 loaded cores).
JOB_DEADLINE_MS = 90_000

#: Notebook 7.6's shortcut plugin throws this on every page, with a plain `1+1` notebook too
#: (settings `pluginChanged` for a plugin it has no schema of); it is not ours.
NOTEBOOK7_OWN_ERRORS = {"Cannot read properties of undefined (reading 'schema')"}

#: Settings that keep JupyterLab quiet and offline: no news, no update checks.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def report(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)
    else:  # pragma: no cover
        print(line)


def kernel_env(home: Path) -> dict[str, str]:
    """The environment of a notebook server whose kernels use the embedded emulator: no
    SORA_API_KEY (nor any other SORA_* or Jupyter setting of the caller's), a private
    journal in ``home``, the emulator's timeline compressed by TIME_SCALE."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SORA_", "JUPYTER"))}
    env.pop("IPYTHONDIR", None)
    env.update(SORA_WIDGETS_HOME=str(home), SORA_EMULATOR_TIME_SCALE=TIME_SCALE,
               PYTHONUNBUFFERED="1")
    return env


def wait_for_server(proc: subprocess.Popen[bytes], ready: Any, what: str,
                    log_tail: Any) -> None:
    """Poll ``ready()`` until it is true, failing at once if ``proc`` exits and after
    SERVER_START_DEADLINE otherwise (the message carries the server's log tail)."""
    deadline = time.monotonic() + SERVER_START_DEADLINE
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}\n{log_tail()}")
        try:
            if ready():
                return
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer within {SERVER_START_DEADLINE:.0f} s ({last})"
                       f"\n{log_tail()}")


# -- the server -------------------------------------------------------------------------------


@dataclass
class JupyterServer:
    """A ``jupyter lab`` / ``jupyter notebook`` subprocess on a free loopback port."""

    app: str                      # "lab" or "notebook"
    root: Path
    home: Path                    # SORA_WIDGETS_HOME of its kernels
    base: Path                    # Jupyter's own dirs (config, data, runtime, settings)
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = kernel_env(self.home)
        env.update(
            JUPYTER_CONFIG_DIR=str(self.base / "config"),
            JUPYTER_DATA_DIR=str(self.base / "data"),
            JUPYTER_RUNTIME_DIR=str(self.base / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(self.base / "lab-settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(self.base / "lab-workspaces"),
            IPYTHONDIR=str(self.base / "ipython"),
            JUPYTER_PLATFORM_DIRS="1",
        )
        return env

    def start(self) -> JupyterServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        settings_dir = self.base / "lab-settings"
        for name, value in (LAB_SETTINGS.items() if self.app == "lab" else ()):
            path = settings_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        app_class = "LabApp" if self.app == "lab" else "JupyterNotebookApp"
        cmd = [
            str(BIN / "jupyter"), self.app, "--no-browser",
            f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
            "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}", "--ServerApp.open_browser=False",
            "--ServerApp.allow_root=True",      # CI runs as root
            f"--{app_class}.expose_app_in_browser=True",    # window.jupyterapp: run commands
            # Nothing may reach the network: no news, no update check, no PyPI extension
            # manager. JupyterLab's server extension is loaded by `jupyter notebook` too.
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ]
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"jupyter-{self.app}-{self.port}.log"
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=self.env(), stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        try:
            wait_for_server(self.proc, lambda: isinstance(self.api("GET", "/api/status"), dict),
                            f"jupyter {self.app} (log: {self.log_path})", self.log_tail)
        except RuntimeError:
            self.stop()
            raise
        self._check_log()
        RUNNING.append(self)
        return self

    def _check_log(self) -> None:
        """A server extension that failed to link still lets /api/status answer: fail here."""
        text = self.log_path.read_text(errors="replace") if self.log_path else ""
        if "error linking extension" in text or "error loading extension" in text:
            self.stop()
            raise RuntimeError(f"jupyter {self.app}: an extension failed; log: {self.log_path}"
                               f"\n{text[-4000:]}")

    def log_tail(self, n: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def api(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Authorization": f"token {self.token}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            raw = answer.read()
        return json.loads(raw) if raw else None

    def page_url(self, name: str) -> str:
        """The notebook's page; in Lab with ``reset``: no tabs restored from earlier tests."""
        quoted = urllib.parse.quote(name)
        if self.app == "lab":
            return f"{self.url}/lab/tree/{quoted}?reset&token={self.token}"
        return f"{self.url}/notebooks/{quoted}?token={self.token}"

    def kernels(self) -> list[dict[str, Any]]:
        return list(self.api("GET", "/api/kernels"))

    def shutdown_kernels(self) -> None:
        """Delete every session and kernel (each test leaves the 2 cores to the next)."""
        with contextlib.suppress(Exception):
            for session in self.api("GET", "/api/sessions"):
                with contextlib.suppress(Exception):
                    self.api("DELETE", f"/api/sessions/{session['id']}")
        with contextlib.suppress(Exception):
            for kernel in self.api("GET", "/api/kernels"):
                with contextlib.suppress(Exception):
                    self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def stop(self) -> None:
        if self in RUNNING:
            RUNNING.remove(self)
        if self.proc is None or self.proc.poll() is not None:
            return
        self.shutdown_kernels()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    # -- notebooks in the root --------------------------------------------------------------

    def write_notebook(self, name: str, cells: Sequence[str]) -> Path:
        """A notebook of code cells (a cell starting with '#md\\n' is markdown)."""
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                     "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        for source in cells:
            if source.startswith("#md\n"):
                nb.cells.append(nbformat.v4.new_markdown_cell(source[4:]))
            else:
                nb.cells.append(nbformat.v4.new_code_cell(source))
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        return path


#: Servers up now (kernels are shut down after each test, to leave the cores to the next).
#: The ``src`` of each ``<video>`` in saved or exported HTML.
VIDEO_SRC = re.compile(r"<video[^>]*\ssrc=['\"]([^'\"]+)['\"]")

RUNNING: list[JupyterServer] = []


def start_server(app: str, tmp: Path) -> JupyterServer:
    return JupyterServer(app=app, root=tmp / "root", home=tmp / "home",
                         base=tmp / "jupyter").start()


@contextlib.contextmanager
def offline_export(browser: Any, notebook: Path, html: str,
                   height: int = 900) -> Iterator[tuple[Any, Path]]:
    """``html`` written beside ``notebook`` (like ``jupyter nbconvert``) and opened from
    disk in a page that cannot reach the network (the template's CDN scripts must not
    stall it, and nothing may play from anywhere but the files beside it)."""
    export = notebook.with_suffix(".html")
    export.write_text(html, encoding="utf-8")
    context = browser.new_context(viewport={"width": 1200, "height": height})
    context.route(re.compile(r"^(?!file:).*"), lambda route: route.abort())
    try:
        page = context.new_page()
        page.goto(export.as_uri())
        yield page, export
    finally:
        context.close()


@contextlib.contextmanager
def serving(app: str, tmp: Path, config: pytest.Config, label: str) -> Iterator[JupyterServer]:
    """A server for a fixture: started, announced in the test report, stopped after."""
    server = start_server(app, tmp)
    report(config, f"{label} {server.url} root={server.root} log={server.log_path}")
    try:
        yield server
    finally:
        server.stop()


# -- driving a notebook -------------------------------------------------------------------------

#: The notebook panel of the current tab, in JupyterLab and in Notebook 7.
_PANEL_JS = "window.jupyterapp && window.jupyterapp.shell.currentWidget"


class Notebook:
    """A notebook open in a page: run cells, save, inspect outputs."""

    def __init__(self, page: Any, server: JupyterServer, name: str) -> None:
        self.page = page
        self.server = server
        self.name = name

    def open(self) -> Notebook:
        self.page.goto(self.server.page_url(self.name))
        self.page.wait_for_function(
            f"""() => {{ const p = {_PANEL_JS};
                return !!p && !!p.context && p.context.path === {json.dumps(self.name)}
                    && !!p.node.querySelector('.jp-Cell'); }}""",
            timeout=KERNEL_DEADLINE_MS)
        panel_id = self.page.evaluate(f"() => {_PANEL_JS}.id")
        self.root = self.page.locator(f"[id={json.dumps(panel_id)}]")
        self.wait_kernel_idle()
        return self

    @property
    def cells(self) -> Any:
        return self.root.locator(".jp-Notebook .jp-Cell")

    def wait_kernel_idle(self, timeout: float = KERNEL_DEADLINE_MS) -> None:
        self.page.wait_for_function(
            f"""() => {{
                const panel = {_PANEL_JS};
                const ctx = panel && panel.sessionContext;
                const kernel = ctx && ctx.session && ctx.session.kernel;
                return !!kernel && kernel.status === 'idle'
                    && kernel.connectionStatus === 'connected';
            }}""", timeout=timeout)

    def command(self, name: str, args: dict[str, Any] | None = None) -> Any:
        return self.page.evaluate(
            "([name, args]) => window.jupyterapp.commands.execute(name, args)",
            [name, args or {}])

    def run_all(self) -> None:
        self.command("notebook:run-all-cells")

    def run_by_keyboard(self, count: int) -> None:
        """Select the first cell and press Shift+Enter ``count`` times, as a user would."""
        first = self.cells.first
        first.locator(".jp-InputPrompt").click()
        self.page.keyboard.press("Escape")          # command mode
        for _ in range(count):
            self.page.keyboard.press("Shift+Enter")

    def wait_executed(self, timeout: float = JOB_DEADLINE_MS) -> None:
        """Every non-empty code cell has an execution count, and the kernel is idle again."""
        self.page.wait_for_function(
            f"""() => {{
                const cells = {_PANEL_JS}.content.widgets
                    .filter(c => c.model.type === 'code' && c.model.sharedModel.source.trim());
                return cells.length > 0 && cells.every(c => c.model.executionCount !== null);
            }}""", timeout=timeout)
        self.wait_kernel_idle(timeout)

    def execute(self, code: str) -> None:
        """Run ``code`` in the notebook's kernel without a cell (as a helper of the test)."""
        status = self.page.evaluate(f"""async code => {{
            const kernel = {_PANEL_JS}.sessionContext.session.kernel;
            const reply = await kernel.requestExecute({{code, silent: true}}).done;
            return reply.content.status;
        }}""", code)
        assert status == "ok", f"{code!r} failed in the kernel: {status}"

    def save(self) -> None:
        self.command("docmanager:save")
        self.page.wait_for_function(
            f"() => {{ const p = {_PANEL_JS}; return p && p.context && !p.context.model.dirty; }}")

    def shutdown_kernel(self) -> None:
        """Kernel > Shut Down, and wait until the server no longer lists that kernel."""
        kernel_id = self.page.evaluate(f"() => {_PANEL_JS}.sessionContext.session.kernel.id")
        self.page.evaluate(f"() => {_PANEL_JS}.sessionContext.shutdown()")
        deadline = time.monotonic() + 30
        alive = True
        while alive and time.monotonic() < deadline:
            alive = any(k["id"] == kernel_id for k in self.server.kernels())
            if alive:
                time.sleep(0.2)
        assert not alive, f"kernel {kernel_id} did not shut down"

    def output(self, cell: int) -> Any:
        """The output area of the ``cell``-th cell (0-based)."""
        return self.cells.nth(cell).locator(".jp-OutputArea")

    def errors_in_outputs(self) -> list[str]:
        return list(self.root.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'], "
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']",
        ).all_inner_texts())


# -- the video ------------------------------------------------------------------------------------


def play_video(page: Any, handle: Any, *, timeout: float = 30_000) -> dict[str, Any]:
    """Mute, play and prove it plays: data for a frame, a size, time advancing."""
    problem = handle.evaluate(
        """async v => {
            v.scrollIntoView({block: 'center'});
            v.muted = true;
            try { await v.play(); return null; } catch (e) { return String(e); }
        }""")
    assert problem is None, f"video.play() failed: {problem}; {describe_video(handle)}"
    start = handle.evaluate("v => v.currentTime")
    page.wait_for_function(
        "([v, t0]) => v.readyState >= 2 && v.videoWidth > 0 && v.currentTime > t0 + 0.3",
        arg=[handle, start], timeout=timeout)
    return describe_video(handle)


def describe_video(handle: Any) -> dict[str, Any]:
    return dict(handle.evaluate(
        """v => ({src: v.getAttribute('src'), currentSrc: v.currentSrc,
                  readyState: v.readyState, networkState: v.networkState,
                  error: v.error && (v.error.code + ' ' + v.error.message),
                  videoWidth: v.videoWidth, videoHeight: v.videoHeight,
                  currentTime: v.currentTime, paused: v.paused, duration: v.duration})"""))


def assert_served_by_jupyter(info: dict[str, Any], server: JupyterServer) -> None:
    """The player's source is Jupyter's /files/ (the copy next to the notebook)."""
    src = str(info["currentSrc"])
    assert src.startswith(f"{server.url}/files/"), (
        f"the video is not served by Jupyter's /files/: currentSrc={src!r} "
        f"(Jupyter is {server.url})")
    assert "/sora_videos/" in src, src


def files_path(info: dict[str, Any]) -> str:
    """The unquoted path of the player's source URL, e.g. ``/files/sub dir/sora_videos/x.mp4``."""
    return urllib.parse.unquote(urllib.parse.urlsplit(str(info["currentSrc"])).path)


def shot(page: Any, name: str, target: Any = None) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Lab skips painting off-screen cells (content-visibility): let a scroll get painted.
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    (target or page).screenshot(path=str(path))
    return path


def copy_to_docs(path: Path, name: str) -> Path | None:
    """Refresh a README picture: when missing, or with SORA_UPDATE_DOCS_SCREENSHOT=1
    (otherwise every test run would leave a changed binary in the work tree)."""
    target = DOCS / name
    if target.exists() and os.environ.get("SORA_UPDATE_DOCS_SCREENSHOT") != "1":
        return None
    DOCS.mkdir(exist_ok=True)
    shutil.copyfile(path, target)
    return target
