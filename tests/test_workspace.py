"""``sora-widgets lab``: working copies outside the clone, JupyterLab as root and as a user."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sora_widgets.ui.workspace import bundled_notebooks, lab_command, prepare

REPO = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("sora-widgets")


def test_the_bundled_notebooks_are_found_and_copied_once(tmp_path: Path) -> None:
    source = bundled_notebooks()
    assert source == REPO / "notebooks"
    made = prepare(tmp_path / "ws")
    assert sorted(p.name for p in made) == sorted(p.name for p in source.glob("*.ipynb"))
    edited = tmp_path / "ws" / "quickstart.ipynb"
    edited.write_text("{}")                        # the user's own work
    assert prepare(tmp_path / "ws") == []
    assert edited.read_text() == "{}"


def test_allow_root_is_passed_only_for_root(tmp_path: Path) -> None:
    assert "--allow-root" in lab_command(tmp_path, euid=0)
    user = lab_command(tmp_path, ["--no-browser"], euid=1000)
    assert "--allow-root" not in user and "--no-browser" in user
    assert user[-1] == str(tmp_path / "quickstart.ipynb")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cmdline(pid: int) -> list[str]:
    """The JupyterLab child's command line (the CLI runs it as a subprocess)."""
    import psutil

    children = psutil.Process(pid).children(recursive=True)
    lab = [c for c in children if "jupyterlab" in " ".join(c.cmdline())]
    assert lab, [c.cmdline() for c in children]
    return list(lab[0].cmdline())


def _serves(port: int, proc: subprocess.Popen[bytes], deadline: float) -> dict[str, str]:
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2) as answer:
                return dict(json.load(answer))
        except OSError:
            time.sleep(0.2)
    raise AssertionError("JupyterLab did not answer before the deadline")


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as root and as another user")
@pytest.mark.parametrize("user", ["root", "user"])
def test_the_first_command_starts_jupyterlab_and_leaves_the_clone_clean(
        user: str, tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SORA_", "JUPYTER"))}
    env.update(HOME=str(tmp_path), SORA_WIDGETS_HOME=str(tmp_path / "home"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    # A normal user: uid 1000 in a user namespace (the interpreter lives under /root here,
    # which another real uid could not even execute); Jupyter sees a non-root euid.
    prefix = ([] if user == "root" else
              ["unshare", "--user", "--map-user=1000", "--map-group=1000"])
    before = subprocess.run(["git", "status", "--porcelain", "notebooks"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout
    proc = subprocess.Popen([*prefix, str(CLI), "lab", "--", "--no-browser", f"--port={port}",
                             "--ServerApp.token=", "--ServerApp.ip=127.0.0.1"],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        info = _serves(port, proc, time.monotonic() + 120)
        assert "version" in info
        assert ("--allow-root" in _cmdline(proc.pid)) == (user == "root")
        copies = tmp_path / "home" / "notebooks"
        assert (copies / "quickstart.ipynb").is_file()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/quickstart.ipynb",
                                    timeout=10) as answer:
            assert json.load(answer)["type"] == "notebook"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    after = subprocess.run(["git", "status", "--porcelain", "notebooks"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout
    assert after == before
