"""The core imports in a plain Python process, without IPython or ipywidgets."""

from __future__ import annotations

import subprocess
import sys


def test_nothing_outside_ui_imports_a_ui_library() -> None:
    code = (
        "import importlib, pkgutil, sys, sora_widgets as sw\n"
        "for info in pkgutil.walk_packages(sw.__path__, 'sora_widgets.'):\n"
        "    if not info.name.startswith('sora_widgets.ui') and not info.name.endswith('__main__'):\n"
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
