"""One vocabulary (issue 20 item 6): the CLI, the HTML renderer and the panel say the same
phases, durations, countdowns and money words, formatted from ``core.words``; the
countdown's clock is injected (no sleeping)."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from sora_widgets.core import words
from sora_widgets.ui import cli, render

from .history_seed import seed_history


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def job(**fields: Any) -> Any:
    base = {"status": "in_progress", "progress": 42, "local_path": None, "reused": False,
            "emulator": False, "charge": "none", "price_usd": 0.9, "cost_usd": None,
            "eta_seconds": None, "local_id": "0123abcd" * 4, "id": "v_1",
            "created_at": 1_700_000_000.0, "completed_at": None, "poll_error": None,
            "download_error": None, "notice": None, "prompt": "a heron", "aspect_ratio":
            "16:9", "error": None, "done": False, "request": SimpleNamespace(images=())}
    base.update(fields)
    return SimpleNamespace(**base)


def test_durations_read_as_a_clock_everywhere() -> None:
    assert [words.duration(s) for s in (0, 5.9, 59.99, 60, 65, 725, 3600, 7384)] == [
        "0s", "5s", "59s", "1:00", "1:05", "12:05", "1:00:00", "2:03:04"]
    assert words.duration(None) == ""


def test_time_left_words() -> None:
    assert words.time_left(None) == "estimating…"
    assert words.time_left(0.4) == "finishing…"
    assert words.time_left(65) == "about 1:05 left"


def test_the_countdown_ticks_on_an_injected_clock() -> None:
    clock = FakeClock()
    countdown = words.Countdown(clock=clock)
    running = job(eta_seconds=75.0)
    assert countdown(running) == 75.0
    clock.now += 10
    assert countdown(running) == 65.0
    clock.now += 100
    assert countdown(running) == 0.0
    running.eta_seconds = 30.0                 # a new estimate: a new countdown
    assert countdown(running) == 30.0
    running.eta_seconds = None
    assert countdown(running) is None


def test_the_cli_and_the_html_say_the_same_phase() -> None:
    clock = FakeClock(1_700_000_065.0)
    for fields in ({"status": "queued"}, {"status": "in_progress", "eta_seconds": 75.0},
                   {"status": "in_progress", "eta_seconds": 0.2},
                   {"status": "submitting"}):
        one = job(**fields, elapsed=65.0)
        cli_line = cli.progress_line(one, bar=False,
                                     countdown=words.Countdown(clock=clock)).plain
        html = render.status_html(one, now=clock.now)
        panel = render.phase_words(one, now=clock.now)      # the panel card's words
        phrase = words.phase(one, 65.0, fields.get("eta_seconds"))
        assert cli_line == phrase, (cli_line, phrase)
        assert f">{phrase}<" in html and panel == phrase, (phrase, html, panel)
    assert "1:05" in words.phase(job(status="in_progress"), 65.0, None)


def test_money_words_and_the_badge_are_the_cores() -> None:
    assert render.EMULATOR_BADGE is words.EMULATOR_BADGE is cli.EMULATOR_WORDS
    assert render.money_line is words.money_line
    assert words.money_line(job(emulator=True)) == "local emulator — no charge"
    assert words.money_line(job(emulator=True), badge=False) == ""
    assert words.money_line(job(charge="charged", cost_usd=0.9)) == "$0.90"
    assert words.money_line(job(reused=True)) == words.REUSED_WORDS
    assert render.size_text(2048) == words.size(2048) == "2 KB"


def test_page_line() -> None:
    command = "%sora jobs --page {page}"
    assert words.page_line(1, 20, 20, more=False, command=command) == ""
    assert words.page_line(1, 20, 20, more=True, command=command) == \
        "jobs 1–20 · next: %sora jobs --page 2"
    assert words.page_line(3, 20, 0, more=False, command=command) == \
        "no jobs on page 3 · first page: %sora jobs --page 1"


def test_cli_jobs_says_how_many_of_how_many(studio: Any, home: Path,
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    seed_history(home, 28, prompt=lambda i: f"a seeded crane number {i}")
    assert cli.main(["jobs"]) == 0
    out = capsys.readouterr().out
    assert "20 of 28 — --all shows every one" in out
    assert "a seeded crane number 27" in out and "a seeded crane number 7 " not in out
    assert cli.main(["jobs", "--all"]) == 0
    out = capsys.readouterr().out
    assert " of 28" not in out and "a seeded crane number 0" in out
    assert cli.main(["jobs", "-n", "30"]) == 0
    assert " of 28" not in capsys.readouterr().out


def test_a_recorded_console_shows_the_cut(studio: Any, home: Path) -> None:
    seed_history(home, 3, prompt=lambda i: f"a heron {i}")
    console = Console(record=True, width=160, file=io.StringIO(), highlight=False)
    cli.print_jobs(console, studio.jobs(2), None, total=3)
    assert "2 of 3 — --all" in console.export_text()
