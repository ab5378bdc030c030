"""The ``sora-widgets`` CLI: safe text, the jobs table, money words, reuse, progress lines.

Jobs run on the embedded emulator (no key) through the ``studio`` fixture; output is
rendered with rich consoles that record (``Console(record=True, width=...)``) or, for
the commands, captured from stdout/stderr (not a terminal: plain lines).
"""

from __future__ import annotations

import io
import re
import threading
import time
import unicodedata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from sora_widgets import JobFailed, SubmissionUnknown
from sora_widgets.ui import cli
from sora_widgets.ui.cli import printable

ROW = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}\s")
HEADER = ("created", "task id", "status", "ratio", "cost", "prompt", "file")
MARKUP = "[bold red]shout[/bold red] :smile:"


def recording(width: int = 160) -> Console:
    return Console(record=True, width=width, file=io.StringIO(), highlight=False)


def rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if ROW.match(line)]


# -- printable() ----------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "clean"), [
    ("plain text", "plain text"),
    ("\x1b[31mred\x1b[0m", "red"),                                  # SGR colour
    ("a\x1b[2J\x1b[Hb", "ab"),                                      # clear screen, home
    ("up\x1b[1A\x1b[2Kover", "upover"),                             # cursor up, erase line
    ("\x1b]0;pwned title\x07ok", "ok"),                              # OSC title, BEL
    ("\x1b]8;;https://evil.test\x1b\\click\x1b]8;;\x1b\\", "click"),  # OSC 8 hyperlink, ST
    ("\x1bP+q544e\x1b\\x", "x"),                                     # DCS
    ("\x9b31mc1 csi", "c1 csi"),                                     # 8-bit CSI
    ("\x9d0;t\x9cafter", "after"),                                   # 8-bit OSC ... ST
    ("tail \x1b]0;unterminated", "tail "),                           # to the end
    ("bell\x07 back\x08 nul\x00 del\x7f", "bell back nul del"),      # C0 and DEL
    ("c1\x85line", "c1 line"),                                       # NEL is a line break
    ("x\x80\x81\x8ay", "xy"),                                        # other C1
    ("x\x9fapc string\x9cy", "xy"),                                  # 8-bit APC ... ST
    ("\x1bc reset", " reset"),                                       # RIS (ESC + final byte)
    ("abc\u202egnp.exe", "abcgnp.exe"),                              # RLO (Trojan Source)
    ("\u2066iso\u2069 \u200fmark\u200e \u061c", "iso mark "),        # isolates, marks
    ("line one\nline two\r\n\tthree", "line one line two three"),
    ("para\u2028sep\u2029end", "para sep end"),
    ("keep  double   spaces", "keep  double   spaces"),
    ("[bold]not markup[/bold]", "[bold]not markup[/bold]"),          # literal: Text, not markup
    ("émoji 🎬 and 中文", "émoji 🎬 and 中文"),
])
def test_printable(raw: str, clean: str) -> None:
    assert printable(raw) == clean


def test_printable_of_none_and_objects() -> None:
    assert printable(None) == ""
    assert printable(ValueError("bad\x1b[31m thing\n")) == "bad thing "
    assert printable(Path("/tmp/a b.mp4")) == "/tmp/a b.mp4"


BAD = {chr(c) for c in [*range(0x20), *range(0x7f, 0xa0)]} | set(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029")


@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(sorted(BAD))))
def test_printable_never_leaves_a_control(raw: str) -> None:
    out = printable(raw)
    assert not (set(out) & BAD), repr(out)
    assert printable(out) == out       # idempotent


def test_markup_from_the_relay_is_printed_literally() -> None:
    job = fake_job(status="failed", error=f"{MARKUP}\x1b[5m blink", id="v_[i]x[/i]")
    console = recording()
    console.print(cli.final_line(job))
    text = console.export_text()
    assert MARKUP in text and "v_[i]x[/i]" in text and "\x1b" not in text


# -- the jobs table -------------------------------------------------------------------------

@pytest.fixture
def two_jobs(studio: Any) -> list[Any]:
    first = studio.generate("a lighthouse at dusk, slow pan", aspect_ratio="16:9")
    second = studio.generate(f"line one of the prompt\nline two {MARKUP}\n\nthree",
                             aspect_ratio="9:16")
    for job in (first, second):
        job.wait(60)
    return [first, second]


def test_jobs_table_has_a_header_and_one_row_per_job(studio: Any, two_jobs: list[Any]) -> None:
    console = recording(width=160)
    cli.print_jobs(console, studio.jobs(20), studio.spend())
    text = console.export_text()
    lines = text.splitlines()
    assert all(name in lines[0] for name in HEADER), lines[0]
    assert lines[0].index("created") < lines[0].index("task id") < lines[0].index("prompt")
    found = rows(text)
    assert len(found) == 2, text
    for job in two_jobs:
        (row,) = [line for line in found if job.id in line]
        assert job.aspect_ratio in row and "completed" in row and "free" in row
        assert job.local_path.name in row
    # The multi-line prompt is one row: newlines collapsed, markup literal.
    (multi,) = [line for line in found if two_jobs[1].id in line]
    assert "line one of the prompt line two [bold red]" in multi
    assert "\x1b" not in text
    # Created is the local date and time of the job.
    assert time.strftime("%Y-%m-%d", time.localtime(two_jobs[0].created_at)) in found[0]
    # The folder of the videos once, the emulator once, money in words.
    assert text.count(f"files are in {two_jobs[0].local_path.parent}") == 1
    assert text.count("local emulator — no charge") == 1
    assert "Spent: $0.00 all time." in text and "maybe" not in text


def test_long_prompts_are_cut_with_an_ellipsis_and_never_wrap(studio: Any) -> None:
    job = studio.generate("word " * 80, aspect_ratio="16:9")
    job.wait(60)
    for width in (80, 100, 120):
        console = recording(width=width)
        cli.print_jobs(console, studio.jobs(20), None)
        text = console.export_text()
        assert len(rows(text)) == 1, text
        (row,) = rows(text)
        assert "…" in row and len(row) <= width
        assert ("file" in text.splitlines()[0]) == (width >= cli.NARROW)


def test_unsaved_unknown_and_hostile_jobs_in_the_table() -> None:
    jobs = [fake_job(status="unknown", charge="maybe", id=None, emulator=False,
                     local_path=None, prompt=None),
            fake_job(status="in_progress", charge="charged", emulator=False, local_path=None),
            # What an older journal or a hostile relay could hold: escapes, bidi, markup.
            fake_job(status="completed", id="v_\x1b]0;title\x07ok\u202e[b]x[/b]",
                     prompt="p\x1b[2J\x1b[Hwned\r\n[link=https://evil.test]x[/link]",
                     local_path=Path("/v/\x1b[31mred.mp4"))]
    console = recording()
    console.print(cli.jobs_table(jobs))
    text = console.export_text()
    unknown, running, hostile = rows(text)
    assert "local:0123abcd" in unknown and "maybe $0.90" in unknown
    assert "(image only)" in unknown and unknown.rstrip().endswith("—")
    assert "generating" in running and "$0.90" in running
    assert "v_ok[b]x[/b]" in hostile and "pwned [link=https://evil.test]x[/link]" in hostile
    assert hostile.rstrip().endswith(" red.mp4") and "\x1b" not in text


def test_no_jobs_yet() -> None:
    console = recording()
    cli.print_jobs(console, [], None)
    assert 'no jobs yet — try: sora-widgets generate "a prompt"' in console.export_text()


# -- money in words -------------------------------------------------------------------------

def spend(charged: float = 0.0, maybe: float = 0.0, pending: float = 0.0) -> Any:
    return SimpleNamespace(charged_usd=charged, maybe_usd=maybe, pending_usd=pending, jobs=1)


@pytest.mark.parametrize(("session", "all_time", "words"), [
    (spend(), spend(), "Spent: $0.00 all time."),
    (spend(), spend(2.7), "Spent: $2.70 all time."),
    (spend(0.9), spend(2.7), "Spent: $0.90 this session, $2.70 all time."),
    (spend(0.9), spend(2.7, maybe=1.8),
     "Spent: $0.90 this session, $2.70 all time; $1.80 more may have been charged "
     "(submits whose answer was lost)."),
    (spend(), spend(0.9, pending=0.9), "Spent: $0.90 all time; $0.90 being submitted now."),
])
def test_spend_line(session: Any, all_time: Any, words: str) -> None:
    assert cli.spend_line(session, all_time).plain == words


# -- generate: reuse, plain lines, final line -----------------------------------------------

def test_generate_then_reuse_says_no_new_charge(studio: Any,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["generate", "a paper boat on a puddle", "--ratio", "9:16"]) == 0
    first = capsys.readouterr()
    path = Path(first.out.strip())
    assert path.is_file() and path.suffix == ".mp4"
    assert "no SORA_API_KEY: running on the local emulator — no charge" in first.err
    assert "reused" not in first.err

    assert cli.main(["generate", "a paper boat on a puddle", "--ratio", "9:16"]) == 0
    second = capsys.readouterr()
    (job,) = studio.jobs(10)
    assert second.out.strip() == str(path)
    assert (f"reused job {job.id} (completed) — no new charge; --force pays again"
            in second.err)
    assert second.err.count("local emulator — no charge") == 0


def test_generate_prints_clean_plain_lines_when_not_a_terminal(
        studio: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["generate", "a fox in the snow"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err, repr(err)
    lines = err.splitlines()
    assert lines[0] == "no SORA_API_KEY: running on the local emulator — no charge"
    (job,) = studio.jobs(1)
    assert re.fullmatch(rf"✔ completed in \d+s · task {job.id}", lines[-1]), lines[-1]
    assert len(lines) == len(set(lines)), "a state is printed once"
    assert sum("completed in" in line for line in lines) == 1


def test_quiet_prints_only_the_path(studio: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["generate", "a quiet sea", "-q"]) == 0
    out, err = capsys.readouterr()
    assert Path(out.strip()).is_file() and err == ""


def test_bad_input_is_refused_before_anything_is_sent(
        studio: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["generate"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert studio.jobs(10) == []


def test_jobs_command_prints_to_stdout(studio: Any, two_jobs: list[Any],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["jobs"]) == 0
    out = capsys.readouterr().out
    assert len(rows(out)) == 2 and "\x1b" not in out
    assert all(name in out.splitlines()[0] for name in HEADER)


def test_resume_with_nothing_to_do(studio: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["resume"]) == 0
    assert capsys.readouterr().err.strip() == "nothing to resume"


# -- following a job (fake handles: the public attributes and wait()) -----------------------

class FakeJob:
    """Just the public surface the CLI uses; ``script`` moves it along in a thread."""

    def __init__(self, **attrs: Any) -> None:
        self.id: str | None = "v_fake0123"
        self.local_id = "0123abcd" * 4
        self.status = "submitting"
        self.progress = 0
        self.eta_seconds: float | None = None
        self.created_at = time.time()
        self.completed_at: float | None = None
        self.prompt: str | None = "a fake prompt"
        self.aspect_ratio = "16:9"
        self.cached = False
        self.emulator = True
        self.charge = "none"
        self.cost_usd = 0.0
        self.price_usd = 0.9
        self.local_path: Path | None = Path("/videos/v_fake0123.mp4")
        self.error: str | None = None
        self.__dict__.update(attrs)
        self._done = threading.Event()

    @property
    def elapsed(self) -> float:
        return (self.completed_at or time.time()) - self.created_at

    def settle(self, status: str, **attrs: Any) -> None:
        self.__dict__.update(attrs)
        self.status = status
        self.completed_at = time.time()
        self._done.set()

    def wait(self, timeout: float | None = None) -> FakeJob:
        if not self._done.wait(timeout):
            raise TimeoutError("not yet")
        if self.status == "failed":
            raise JobFailed(self.error or "failed", job_id=self.id, code="x")
        if self.status == "unknown":
            raise SubmissionUnknown(self.error or "unknown", local_id=self.local_id)
        return self


def fake_job(**attrs: Any) -> Any:
    job = FakeJob(**attrs)
    if job.status in ("completed", "failed", "unknown"):
        job._done.set()
    return job


def play(job: FakeJob, steps: list[dict[str, Any]], end: dict[str, Any],
         pace: float = 0.05) -> threading.Thread:
    def run() -> None:
        for step in steps:
            time.sleep(pace)
            job.__dict__.update(step)
        time.sleep(pace)
        job.settle(**end)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


STEPS = [{"status": "queued"},
         {"status": "in_progress", "progress": 5},
         {"progress": 40, "eta_seconds": 6.0},
         {"progress": 90, "eta_seconds": 0.5}]


def test_follow_plain_lines() -> None:
    job = fake_job()
    out = io.StringIO()
    console = Console(file=out, width=80, highlight=False)
    play(job, STEPS, {"status": "completed", "progress": 100})
    assert cli.follow([job], console, tick=0.01) == {job.local_id: None}
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("submitting… · 0s")
    assert any(line.startswith("generating 5% · 0s · estimating…") for line in lines)
    assert any(line.startswith("generating 40% · 0s · about 6s left") for line in lines)
    assert any("almost done" in line for line in lines)
    assert lines[-1] == "✔ completed in 0s · task v_fake0123"


def test_follow_on_a_terminal_erases_the_live_line() -> None:
    job = fake_job()
    out = io.StringIO()
    console = Console(file=out, width=100, force_terminal=True, color_system=None,
                      highlight=False)
    play(job, STEPS, {"status": "completed", "progress": 100}, pace=0.2)
    cli.follow([job], console, tick=0.01)
    raw = out.getvalue()
    # The live region is cleared (erase-line sequences) before the final line is written.
    assert "━" in raw and "\x1b[2K" in raw
    live, after = raw.rsplit("\x1b[2K", 1)
    assert "completed in" not in live
    after = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", after).lstrip("\r")
    assert re.fullmatch(r"✔ completed in \d+s · task v_fake0123\n", after), repr(after)


@pytest.mark.parametrize(("end", "words"), [
    ({"status": "failed", "error": "content policy\x1b[31m [b]x[/b]"},
     "✘ failed after 0s · task v_fake0123: content policy [b]x[/b]"),
    ({"status": "unknown", "charge": "maybe", "id": None},
     "? submit outcome unknown · local:0123abcd · local emulator — no charge"),
])
def test_follow_reports_how_a_job_ended(end: dict[str, Any], words: str) -> None:
    job = fake_job()
    out = io.StringIO()
    play(job, STEPS[:2], end)
    result = cli.follow([job], Console(file=out, width=200), tick=0.01)
    assert result[job.local_id] is not None
    assert out.getvalue().splitlines()[-1] == words


def test_unknown_on_the_relay_says_it_may_have_been_charged() -> None:
    job = fake_job(status="unknown", charge="maybe", emulator=False, id=None)
    words = cli.final_line(job, SubmissionUnknown("lost", local_id=job.local_id)).plain
    assert "may have been charged $0.90" in words and "not retried" in words


def test_follow_several_jobs_labels_each_line() -> None:
    jobs = [fake_job(id="v_one"), fake_job(id="v_two", local_id="f" * 32)]
    out = io.StringIO()
    play(jobs[0], STEPS[:2], {"status": "completed", "progress": 100})
    play(jobs[1], STEPS, {"status": "failed", "error": "boom"})
    result = cli.follow(jobs, Console(file=out, width=200), tick=0.01)
    assert result[jobs[0].local_id] is None and isinstance(result[jobs[1].local_id], JobFailed)
    text = out.getvalue()
    assert "✔ completed in 0s · task v_one" in text
    assert "✘ failed after 0s · task v_two: boom" in text
    assert all(line.startswith(("v_one ", "v_two ", "✔", "✘"))
               for line in text.splitlines()), text


def test_countdown_ticks_between_polls() -> None:
    job = fake_job(status="in_progress", eta_seconds=10.0)
    clock = cli.Countdown()
    before_first = time.monotonic()
    assert clock(job) == 10.0
    after_first = time.monotonic()
    time.sleep(0.2)
    before_second = time.monotonic()
    left = clock(job)
    after_second = time.monotonic()
    # It ticked by the time that passed between the two calls, however long that was.
    assert 10.0 - (after_second - before_first) <= left <= 10.0 - (before_second - after_first)
    assert left <= 9.8
    job.eta_seconds = 4.0
    assert clock(job) == 4.0
    job.eta_seconds = None
    assert clock(job) is None


def test_words_are_plain_unicode() -> None:
    # The final words contain no control characters and no private-use glyphs.
    job = fake_job(status="completed")
    for ch in cli.final_line(job).plain:
        assert unicodedata.category(ch) not in ("Cc", "Cf", "Co"), repr(ch)
