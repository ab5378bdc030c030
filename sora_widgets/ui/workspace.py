"""``sora-widgets lab``: open working copies of the bundled notebooks in JupyterLab.

Opening the notebooks of a clone in place dirties it (JupyterLab autosaves outputs into the
tracked files, and new notebooks land beside them), so the first command copies them into a
workspace folder outside the tracked tree and starts JupyterLab there. A copy the user has
already edited is kept, never overwritten. Jupyter refuses to run as root without
``--allow-root`` (Docker images, CI machines); the command passes it only for root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from sora_widgets.core.settings import settings

__all__ = ["bundled_notebooks", "default_workspace", "lab_command", "prepare", "run_lab"]

FIRST_NOTEBOOK = "quickstart.ipynb"


def bundled_notebooks() -> Path:
    """The notebooks shipped with the package (a wheel) or beside it (a source checkout)."""
    here = Path(__file__).resolve()
    for candidate in (here.parent / "notebooks", here.parents[2] / "notebooks"):
        if (candidate / FIRST_NOTEBOOK).is_file():
            return candidate
    raise FileNotFoundError("the bundled notebooks are not installed with this package")


def default_workspace() -> Path:
    """Where the working copies live: ``notebooks/`` in the package's data folder
    (``SORA_WIDGETS_HOME``), next to the journal and the videos."""
    return settings().home / "notebooks"


def prepare(workspace: Path, source: Path | None = None) -> list[Path]:
    """Copy each bundled notebook that the workspace does not have yet; returns the copies
    made (an existing copy is the user's work and stays as it is)."""
    source = source if source is not None else bundled_notebooks()
    workspace.mkdir(parents=True, exist_ok=True)
    made = []
    for notebook in sorted(source.glob("*.ipynb")):
        target = workspace / notebook.name
        if not target.exists():
            shutil.copyfile(notebook, target)
            made.append(target)
    return made


def lab_command(workspace: Path, extra: Sequence[str] = (), *,
                euid: int | None = None) -> list[str]:
    """The JupyterLab command line for the workspace (``--allow-root`` only as root)."""
    euid = os.geteuid() if euid is None and hasattr(os, "geteuid") else euid
    command = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={workspace}"]
    if euid == 0:
        command.append("--allow-root")
    command.extend(extra)
    command.append(str(workspace / FIRST_NOTEBOOK))
    return command


def run_lab(workspace: Path | None = None, extra: Sequence[str] = ()) -> int:
    """Prepare the workspace and run JupyterLab in it until it exits."""
    workspace = (workspace or default_workspace()).expanduser().resolve()
    made = prepare(workspace)
    print(f"sora-widgets: notebooks in {workspace}"
          + (f" ({len(made)} copied)" if made else ""), file=sys.stderr)
    return subprocess.call(lab_command(workspace, extra))
