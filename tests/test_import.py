"""The core imports in a plain Python process, without IPython or ipywidgets."""

from __future__ import annotations

import subprocess
import sys


def test_core_does_not_import_ipython_or_ipywidgets() -> None:
    code = (
        "import sys, sora_widgets as sw\n"
        "from sora_widgets import studio, engine, client, journal, models, config, cli, render\n"
        "from sora_widgets import lifecycle, owner, redact, text, frames, media\n"
        "sw.SoraClient; sw.Job; sw.VideoRequest\n"
        "bad = [m for m in ('IPython', 'ipywidgets', 'ipykernel') if m in sys.modules]\n"
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
