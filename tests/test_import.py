"""The core imports in a plain Python process, without IPython or ipywidgets."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest


def test_nothing_outside_ui_imports_a_ui_library() -> None:
    code = (
        "import importlib, pkgutil, sys, sora_widgets as sw\n"
        "for info in pkgutil.walk_packages(sw.__path__, 'sora_widgets.'):\n"
        "    if not info.name.startswith('sora_widgets.ui')"
        " and not info.name.endswith('__main__'):\n"
        "        importlib.import_module(info.name)\n"
        "sw.SoraClient; sw.Job; sw.VideoRequest; sw.Studio; sw.Sweep; sw.Storyboard\n"
        # rich is not listed: httpx imports it for its own CLI when installed (our own
        # imports of rich are held to ui/ by the import-linter contract)
        "ui = ('IPython', 'ipywidgets', 'ipykernel', 'anywidget')\n"
        "bad = [m for m in ui if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print('clean')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"


def test_public_names_exist() -> None:
    import sora_widgets as sw

    for name in sw.__all__:
        assert getattr(sw, name) is not None
    assert issubclass(sw.AuthenticationError, sw.APIError)
    assert issubclass(sw.APIError, sw.SoraError)
    assert issubclass(sw.SubmissionUnknown, sw.SoraError)
    assert issubclass(sw.BadRequestError, sw.ValidationError)


# -- the typed public face (issue 20 item 8) ----------------------------------------------------

#: Each public function and the layer function it calls (whose parameters it must show).
FACES = {
    "generate": ("sora_widgets.studio.studio", "Studio.generate"),
    "sweep": ("sora_widgets.studio.sweeps", "sweep"),
    "storyboard": ("sora_widgets.studio.storyboard", "storyboard"),
    "compare": ("sora_widgets.ui.compare", "compare"),
    "grid": ("sora_widgets.ui.magic.magics", "grid"),
}


def _target(module: str, qualname: str) -> Any:
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


@pytest.mark.parametrize("name", sorted(FACES))
def test_public_functions_show_their_parameters(name: str) -> None:
    """``help(sw.generate)`` and an IDE show every parameter: no ``**kwargs``, and the
    same names, kinds and defaults as the function called (so the two cannot drift)."""
    import sora_widgets as sw

    face = inspect.signature(getattr(sw, name))
    kinds = {p.kind for p in face.parameters.values()}
    assert inspect.Parameter.VAR_KEYWORD not in kinds, f"sw.{name}{face}"
    target = inspect.signature(_target(*FACES[name]))
    wanted = [(p.name, p.kind, p.default) for p in target.parameters.values()
              if p.name != "self"]
    assert [(p.name, p.kind, p.default) for p in face.parameters.values()] == wanted
    doc = inspect.getdoc(getattr(sw, name)) or ""
    undocumented = [p for p, _, _ in wanted if f"``{p}``" not in doc]
    assert not undocumented, f"sw.{name}'s docstring does not say {undocumented}"


def test_dir_lists_every_public_name() -> None:
    import sora_widgets as sw

    listed = set(dir(sw))
    assert set(sw.__all__) <= listed, sorted(set(sw.__all__) - listed)
    assert {"Job", "SoraWidget", "Spend", "JobGrid"} <= listed


def test_spend_and_the_grid_class_are_exported() -> None:
    import sora_widgets as sw
    from sora_widgets.journal.base import Spend
    from sora_widgets.ui.magic.magics import JobGrid

    assert sw.Spend is Spend and sw.JobGrid is JobGrid
    assert {"Spend", "JobGrid"} <= set(sw.__all__)
    assert inspect.signature(sw.spend).return_annotation == "dict[str, Spend]"
    assert inspect.signature(sw.grid).return_annotation == "JobGrid"


#: The public API of DESIGN.md (rounds one to three) that exists in this release.
DESIGN_NAMES = (
    "generate", "jobs", "resume", "SoraWidget", "SoraClient", "SoraError", "ValidationError",
    "APIError", "AuthenticationError", "PermissionDeniedError", "RateLimitError",
    "ServerError", "JobFailed", "SubmissionUnknown", "sweep", "ConfirmationRequired",
    "compare", "stitch", "storyboard", "Job", "grid", "spend",
)


def test_the_design_names_stay_importable() -> None:
    code = "from sora_widgets import " + ", ".join(DESIGN_NAMES)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_the_version_comes_from_the_package_metadata() -> None:
    import sora_widgets as sw
    from sora_widgets.core import version as version_module

    assert sw.__version__ == version_module.__version__ == metadata.version("sora-widgets")
    # The one place: no other module reads the metadata or spells a version.
    package = Path(sw.__file__).parent
    readers = [p.relative_to(package).as_posix() for p in package.rglob("*.py")
               if "importlib.metadata" in p.read_text(encoding="utf-8")]
    assert readers == ["core/version.py"]
