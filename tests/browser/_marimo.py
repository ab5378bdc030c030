"""marimo for the browser tests: an app file written by the test, served by ``marimo run``.

``marimo run --headless --no-token`` serves one app on a free loopback port, its kernel in
an environment like the Jupyter servers' (no SORA_API_KEY: the embedded emulator, its
timeline compressed; a private journal), with marimo's own config and caches in the test's
temporary folder and no update check. The test opens ``server.url`` in Chromium; each page
is a new session that runs the app's cells.
"""

from __future__ import annotations

import contextlib
import subprocess
import textwrap
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ._harness import BIN, LOGS, _free_port, kernel_env, report, wait_for_server


def app_source(cells: Sequence[str]) -> str:
    """A marimo app of ``cells`` (each a code string; the first gets ``import marimo as
    mo``). Names defined by a cell reach the later ones through marimo's dataflow: every
    cell takes and returns all the names it may need, as ``marimo edit`` writes them."""
    parts = ["import marimo\n\n__generated_with = \"0.25.2\"\napp = marimo.App()\n"]
    for index, code in enumerate(cells):
        body = ("import marimo as mo\n" if index == 0 else "") + code
        parts.append("\n@app.cell\ndef _():\n" + textwrap.indent(body, "    ")
                     + "\n    return\n")
    parts.append('\n\nif __name__ == "__main__":\n    app.run()\n')
    return "".join(parts)


@dataclass
class MarimoServer:
    """``marimo run`` of one app file, on a free port."""

    app: Path
    home: Path                    # SORA_WIDGETS_HOME of its kernel
    base: Path                    # marimo's config and cache dirs
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> MarimoServer:
        self.home.mkdir(parents=True, exist_ok=True)
        env = kernel_env(self.home)
        env.update(MARIMO_SKIP_UPDATE_CHECK="1",
                   XDG_CONFIG_HOME=str(self.base / "config"),
                   XDG_CACHE_HOME=str(self.base / "cache"),
                   XDG_STATE_HOME=str(self.base / "state"))
        cmd = [str(BIN / "marimo"), "run", str(self.app), "--headless", "--no-token",
               "--host", "127.0.0.1", "--port", str(self.port), "--no-sandbox",
               "--no-skew-protection"]
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"marimo-{self.app.stem}-{self.port}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.app.parent, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for_server(self.proc, self._healthy,
                            f"marimo run {self.app.name} (log: {self.log_path})",
                            self.log_tail)
        except RuntimeError:
            self.stop()
            raise
        return self

    def _healthy(self) -> bool:
        with urllib.request.urlopen(self.url + "health", timeout=5) as answer:
            return answer.status == 200

    def log_tail(self, n: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@contextlib.contextmanager
def marimo_app(tmp: Path, name: str, cells: Sequence[str],
               config: pytest.Config) -> Iterator[MarimoServer]:
    """``cells`` written as ``name`` in ``tmp`` and served by ``marimo run`` until the end."""
    root = tmp / "root"
    root.mkdir(parents=True, exist_ok=True)
    app = root / name
    app.write_text(app_source(cells), encoding="utf-8")
    server = MarimoServer(app=app, home=tmp / "home", base=tmp / "marimo").start()
    report(config, f"marimo {server.url} app={app} log={server.log_path}")
    try:
        yield server
    finally:
        server.stop()
