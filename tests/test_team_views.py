"""Issue 16's views of a shared journal: whose jobs, spend by user and day (one process
plays two users: SORA_USER is read at each call)."""

from __future__ import annotations

import pytest

import sora_widgets as sw
from sora_widgets.emulator import RunningEmulator
from sora_widgets.studio.studio import default_studio
from sora_widgets.ui.cli import main


def test_jobs_are_mine_by_default_and_everyones_with_team(
        relay: RunningEmulator, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SORA_USER", "ann")
    ann = [sw.generate(f"ann's clip {i}") for i in range(2)]
    monkeypatch.setenv("SORA_USER", "bob")
    bob = sw.generate("bob's clip")
    for job in [*ann, bob]:
        job.wait(timeout=30)
    assert [j.local_id for j in sw.jobs()] == [bob.local_id]
    assert {j.local_id for j in sw.jobs(team=True)} == {j.local_id for j in [*ann, bob]}

    rows = default_studio().team_spend()
    by_user = {row["user"]: row for row in rows}
    assert by_user["ann"]["jobs"] == 2 and by_user["ann"]["charged_usd"] == 1.80
    assert by_user["bob"]["jobs"] == 1 and by_user["bob"]["charged_usd"] == 0.90

    assert main(["cost", "--team"]) == 0
    out = capsys.readouterr().out
    assert "ann" in out and "bob" in out and "$1.80" in out and "$2.70" in out
    assert main(["jobs"]) == 0
    out = capsys.readouterr().out
    assert "bob's clip" in out and "ann's clip" not in out
    assert main(["jobs", "--team"]) == 0
    assert "ann's clip" in capsys.readouterr().out


def test_the_magic_shows_team_jobs_and_team_spend(
        relay: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    outputs: list[dict[str, str]] = []
    monkeypatch.setattr(shell.display_pub, "publish",
                        lambda data, **_kw: outputs.append(data))
    shell.run_line_magic("load_ext", "sora_widgets")
    monkeypatch.setenv("SORA_USER", "<b>carol</b>")
    sw.generate("carol's clip").wait(timeout=30)
    monkeypatch.setenv("SORA_USER", "dan")
    shell.run_line_magic("sora", "jobs")
    assert "carol" not in outputs[-1]["text/html"]
    shell.run_line_magic("sora", "jobs --team")
    assert "carol&#x27;s clip" in outputs[-1]["text/html"]
    shell.run_line_magic("sora", "cost --team")
    html = outputs[-1]["text/html"]
    assert "&lt;b&gt;carol&lt;/b&gt;" in html and "<b>carol" not in html and "$0.90" in html


def test_a_finished_job_whose_video_is_not_here_is_fetched_again_not_paid_again(
        relay: RunningEmulator) -> None:
    """A teammate's job (its file on another machine) is reused: the video comes from a
    fresh link, no POST; when the relay cannot give one, the handle says so."""
    from sora_widgets.studio.studio import Studio

    first = sw.generate("a shared lighthouse").wait(timeout=30)
    assert first.local_path is not None
    first.local_path.unlink()                       # "on another machine"
    posts = relay.stats()["posts"]
    teammate = Studio()                             # a fresh kernel: no handle in memory
    try:
        (again,) = teammate.submit(first.request)
        assert again.reused and again.local_id == first.local_id
        again.wait(timeout=30)
        assert again.local_path is not None and again.local_path.is_file()
        assert relay.stats()["posts"] == posts     # fetched, never paid again

        again.local_path.unlink()
        relay.config.url_ttl_seconds = 1e-9         # every link is stale at once
        third = Studio()
        (stale,) = third.submit(first.request)
        stale.wait(timeout=60)
        assert stale.local_path is None and stale.download_error
        assert "could not be saved" in (stale.notice or "")
        assert relay.stats()["posts"] == posts
    finally:
        teammate.close()

