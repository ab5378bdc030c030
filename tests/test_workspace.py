"""``sora-widgets lab``: working copies outside the clone, JupyterLab as root and as a user."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


#: The lab's token for this test (a POST without one is refused as a forged request).
TOKEN = secrets.token_hex(16)


def _api(port: int, path: str, body: bytes | None = None) -> dict[str, Any]:
    """One call to the lab's REST API (a POST when there is a body)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/{path}", data=body,
                                     headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return dict(json.load(answer))


def _serves(port: int, proc: subprocess.Popen[bytes], deadline: float) -> dict[str, Any]:
    """JupyterLab's ``/api/status`` once it answers (the server is up and serving)."""
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        try:
            return _api(port, "status")
        except OSError:
            time.sleep(0.2)
    raise AssertionError("JupyterLab did not answer before the deadline")


#: Runs as the user, in the workspace: every notebook executed top to bottom in its own
#: kernel (the cwd a Lab kernel gets: the notebook's folder) and saved back, outputs and
#: all, as JupyterLab's autosave does.
EXECUTE_ALL = """
import sys
from pathlib import Path
import nbformat
from nbclient import NotebookClient
for path in sorted(Path(sys.argv[1]).glob("*.ipynb")):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=300, allow_errors=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path)
    print(path.name, "ran", flush=True)
"""

#: How the lab runs: as this process's user, and (when that is root) as root and as
#: ``nobody`` too. Each is tested where the machine allows it, none is skipped.
USERS = ["root", "nobody"] if os.geteuid() == 0 else ["self"]


@dataclass
class Clone:
    """A fresh clone of this repository in a folder every user can read."""

    path: Path

    def status(self) -> str:
        return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                              cwd=self.path, capture_output=True, text=True,
                              check=True).stdout


@pytest.fixture
def clone() -> Iterator[Clone]:
    """``git clone`` of HEAD (what is committed is what a user clones) under /tmp, readable
    by ``nobody``: pytest's tmp_path is private to its user."""
    top = Path(tempfile.mkdtemp(prefix="sora-widgets-clone-", dir="/tmp"))
    top.chmod(0o755)
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(top / "repo")], check=True)
    try:
        yield Clone(top / "repo")
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _as_user(user: str, home: Path, clone: Path) -> tuple[list[str], str, dict[str, str]]:
    """(command prefix, interpreter, environment) to run the clone's package as ``user``.

    ``nobody`` cannot enter /root, where this venv's interpreter lives, so it runs the
    system Python of the same version over this venv's (world-readable) site-packages,
    with JupyterLab's assets and kernelspecs found where the venv keeps them."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SORA_", "JUPYTER", "IPYTHON"))}
    env.update(HOME=str(home), SORA_WIDGETS_HOME=str(home / "sora"), PYTHONPATH=str(clone),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), IPYTHONDIR=str(home / "ipython"),
               JUPYTER_CONFIG_DIR=str(home / "jupyter"),
               SORA_EMULATOR_TIME_SCALE="0.01")   # the notebooks' jobs: seconds, not minutes
    if user != "nobody":
        return [], sys.executable, env
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    python = shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")
    assert python, f"no system {version} for the non-root user"
    site = Path(sysconfig.get_paths()["purelib"])
    share = Path(sys.prefix) / "share" / "jupyter"
    env.update(PYTHONPATH=f"{clone}{os.pathsep}{site}", JUPYTER_PATH=str(share),
               JUPYTERLAB_DIR=str(share / "lab"))
    home.chmod(0o755)
    os.chown(home, 65534, 65534)
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"], python, env


@pytest.mark.slow
@pytest.mark.parametrize("user", USERS)
def test_the_first_command_starts_jupyterlab_and_leaves_the_clone_clean(
        user: str, clone: Clone) -> None:
    """Issue 22: on a fresh clone, ``sora-widgets lab`` starts JupyterLab as root and as a
    normal user; after every bundled notebook has run (and been saved) in the workspace,
    and a new notebook has been made there, ``git status`` of the clone is empty."""
    home = clone.path.parent / f"home-{user}"
    home.mkdir()
    prefix, python, env = _as_user(user, home, clone.path)
    port = _free_port()
    assert clone.status() == ""
    proc = subprocess.Popen([*prefix, python, "-m", "sora_widgets.ui.cli", "lab", "--",
                             "--no-browser", f"--port={port}",
                             f"--IdentityProvider.token={TOKEN}", "--ServerApp.ip=127.0.0.1"],
                            env=env, cwd=home, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert "started" in _serves(port, proc, time.monotonic() + 120)
        import psutil

        assert psutil.Process(proc.pid).uids().effective == (
            65534 if user == "nobody" else os.geteuid())
        lab = _cmdline(proc.pid)
        assert ("--allow-root" in lab) == (os.geteuid() == 0 and user != "nobody")
        (root,) = [a.split("=", 1)[1] for a in lab if a.startswith("--notebook-dir=")]
        workspace = Path(root)             # the default: notebooks/ in SORA_WIDGETS_HOME
        assert sorted(p.name for p in workspace.glob("*.ipynb")) == sorted(
            p.name for p in (clone.path / "notebooks").glob("*.ipynb"))
        assert _api(port, "contents/quickstart.ipynb")["type"] == "notebook"
        made = _api(port, "contents", b'{"type": "notebook"}')["path"]   # File > New
        assert (workspace / made).is_file()
        ran = subprocess.run([*prefix, python, "-c", EXECUTE_ALL, str(workspace)], env=env,
                             cwd=workspace, capture_output=True, text=True, timeout=900)
        assert ran.returncode == 0, ran.stderr[-3000:]
        assert ran.stdout.count(" ran") == len(list(workspace.glob("*.ipynb")))
        assert list(workspace.glob("sora_videos/*.mp4")), "the notebooks made no video"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert clone.status() == ""
