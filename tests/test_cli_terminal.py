"""The CLI in a real terminal: tmux runs ``sora-widgets`` in a 120x30 pane, as a user would.

A shell in a private tmux server (its own socket) types the commands; the test waits for
each to finish (the shell's PROMPT_COMMAND appends the exit status to a file), then reads
the screen with ``capture-pane -p``: what the user sees, after every redraw of the live
line. The screens are saved under ``artifacts/terminal/`` to be read by a person.

tmux is required (``apt-get install -y tmux``): without it this test fails, it does not skip.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow   # the CLI in a real terminal (tmux)

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts" / "terminal"
BIN = Path(sys.executable).parent
WIDTH, HEIGHT = 120, 30
PROMPT = "$ "
DONE = re.compile(r"✔ completed in (\d+s|\d+(?::\d\d)+) · task (\S+)")
BAR_GLYPHS = ("━", "╸", "╺", "⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏")
LIVE_WORDS = ("estimating…", "generating", "queued", "submitting", "saving the video", "%")


class Pane:
    """One shell in a tmux server of our own; ``run`` types a command and waits for it."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.socket = tmp / "tmux.sock"
        self.status = tmp / "status"
        self.status.touch()
        self.env = env
        self.live: list[str] = []        # screens seen while a command was running
        self._tmux("new-session", "-d", "-x", str(WIDTH), "-y", str(HEIGHT), "-s", "sora",
                   *(f"-e{k}={v}" for k, v in env.items() if k.startswith("SORA_")),
                   # Records each command's exit status; sets a short prompt.
                   "-e", f"PROMPT_COMMAND=echo $? >> {shlex.quote(str(self.status))}; "
                   f"PS1='{PROMPT}'",
                   "bash --norc --noprofile")
        self._wait_prompts(1, deadline=30)

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-u", "-S", str(self.socket), *args], env=self.env,
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, f"tmux {args[0]}: {done.stderr}"
        return done.stdout

    def _statuses(self) -> list[str]:
        return self.status.read_text().split()

    def _wait_prompts(self, count: int, deadline: float) -> None:
        end = time.monotonic() + deadline
        while len(self._statuses()) < count:
            if time.monotonic() > end:
                pytest.fail(f"the command did not finish within {deadline} s; screen:\n"
                            + self.screen())
            self.live.append(self.screen())
            time.sleep(0.1)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p")

    def run(self, command: str, deadline: float = 120) -> tuple[int, str]:
        """Clear the screen, type ``command``, wait for the prompt: (exit status, screen)."""
        before = len(self._statuses())
        self._tmux("send-keys", "-t", "sora", "clear", "Enter")
        self._wait_prompts(before + 1, deadline=30)
        self.live = []
        self._tmux("send-keys", "-t", "sora", "-l", command)
        self._tmux("send-keys", "-t", "sora", "Enter")
        self._wait_prompts(before + 2, deadline)
        time.sleep(0.2)                  # let tmux draw the prompt after the last write
        return int(self._statuses()[-1]), self.screen()

    def close(self) -> None:
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], env=self.env,
                       capture_output=True, timeout=30)


@pytest.fixture
def short_home() -> Iterator[Path]:
    """A journal home with a short path: a saved file's path fits on one line of the pane
    (pytest's own tmp_path grows with pytest-xdist's ``popen-gwN/`` and then wraps)."""
    path = Path(tempfile.mkdtemp(prefix="sora-"))
    try:
        yield path / "home"
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pane(tmp_path: Path, short_home: Path) -> Iterator[Pane]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed: this terminal test needs it "
                    "(apt-get install -y tmux)")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SORA_") and k not in ("COLUMNS", "LINES")}
    env.update(SORA_WIDGETS_HOME=str(short_home), SORA_EMULATOR_TIME_SCALE="0.01",
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", LANG="C.UTF-8",
               LC_ALL="C.UTF-8", TMUX_TMPDIR=str(tmp_path))
    env.pop("TMUX", None)
    work = tmp_path / "work"
    work.mkdir()
    the_pane = Pane(tmp_path, env)
    try:
        the_pane.run(f"cd {shlex.quote(str(work))}")
        yield the_pane
    finally:
        the_pane.close()


def save(name: str, screen: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{name}.txt").write_text(screen)


def output_of(screen: str, command: str) -> list[str]:
    """The lines a command wrote: after its command line, up to the next prompt."""
    lines = [line.rstrip() for line in screen.splitlines()]
    start = next(i for i, line in enumerate(lines) if line == PROMPT + command)
    out = []
    for line in lines[start + 1:]:
        if line.startswith(PROMPT.rstrip()):
            break
        out.append(line)
    return out


def assert_no_live_leftovers(lines: list[str]) -> None:
    for line in lines:
        assert not any(glyph in line for glyph in BAR_GLYPHS), f"a bar was left: {line!r}"
        assert not any(word in line for word in LIVE_WORDS), f"a live line was left: {line!r}"


def assert_generated(lines: list[str], first: str) -> tuple[str, Path]:
    """``first`` line, one clean completion line, the saved file: (task id, file)."""
    assert len(lines) == 3, lines
    assert lines[0] == first, lines[0]
    done = DONE.fullmatch(lines[1])
    assert done, f"not one clean completion line: {lines[1]!r}"
    assert lines[2].endswith(".mp4") and Path(lines[2]).is_file(), lines[2]
    assert_no_live_leftovers(lines)
    return done.group(2), Path(lines[2])


def test_generate_and_jobs_in_a_real_terminal(pane: Pane) -> None:
    command = 'sora-widgets generate "a test prompt" --ratio 16:9'
    status, screen = pane.run(command)
    save("generate", screen)
    live = [s for s in pane.live if any(glyph in s for glyph in BAR_GLYPHS)]
    if live:
        save("generate-live", live[len(live) // 2])
    assert status == 0, screen
    first, _ = assert_generated(output_of(screen, command),
                             "no SORA_API_KEY: running on the local emulator — no charge")

    # The same request again: the earlier job, said so, and not paid again.
    status, screen = pane.run(command)
    save("generate-again", screen)
    assert status == 0, screen
    again, _ = assert_generated(
        output_of(screen, command),
        f"reused job {first} (completed) — no new charge; --force pays again")
    assert again == first

    multi = "sora-widgets generate $'a second prompt\\non two [bold]lines[/bold]' --ratio 9:16"
    status, screen = pane.run(multi)
    save("generate-multiline", screen)
    assert status == 0, screen
    second, video = assert_generated(output_of(screen, multi),
                              "no SORA_API_KEY: running on the local emulator — no charge")
    assert second != first

    status, screen = pane.run("sora-widgets jobs")
    save("jobs", screen)
    assert status == 0, screen
    lines = output_of(screen, "sora-widgets jobs")
    header = lines[0].split()
    assert header[:2] == ["created", "task"] and all(
        name in lines[0] for name in ("created", "task id", "status", "ratio", "cost",
                                      "prompt", "file")), lines[0]
    assert set(lines[1]) == {"─"}, lines[1]
    rows = [line for line in lines if re.match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} ", line)]
    assert len(rows) == 2, lines
    by_id = {task: [row for row in rows if task in row] for task in (first, second)}
    assert all(len(found) == 1 for found in by_id.values()), by_id
    (row2,) = by_id[second]
    # One line, newline collapsed, markup literal, cut with an ellipsis; the file's end shown.
    assert "9:16" in row2 and "a second prompt on two [bold]" in row2 and "…" in row2
    assert row2.endswith(".mp4") and video.name.endswith(row2.split()[-1].lstrip("…"))
    assert all(len(line) <= WIDTH for line in lines)
    assert "free: local emulator — no charge" in lines
    assert lines[-1] == "Spent: $0.00 all time."
