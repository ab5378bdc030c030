"""The CLI's generate options of the relay styles (issue 15)."""

from __future__ import annotations

import pytest

import sora_widgets as sw
from sora_widgets.ui.cli import main


def test_the_cli_passes_seconds_and_size_of_the_openai_style(
        studio: object, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SORA_API_STYLE", "openai")
    assert main(["generate", "a gateway clip", "--seconds", "8", "--size", "1280x720",
                 "-q"]) == 0
    (job,) = sw.jobs()
    assert (job.request.seconds, job.request.size) == (8, "1280x720")
    assert main(["generate", "a gateway clip", "--seconds", "5", "-q"]) == 2   # refused
    assert "4" in capsys.readouterr().err
