"""Storyboards against the real emulator: POSTs counted by the emulator itself, plans read
back from the journal, a killed process (SIGKILL) continued by ``%sora resume`` in a new
one, and the ``%%sora --storyboard`` cell through a real IPython shell.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import sora_widgets as sw
from sora_widgets.core.errors import BudgetExceededError, ConfirmationRequired, SoraError
from sora_widgets.core.lifecycle import Status
from sora_widgets.emulator import EmulatorConfig, RunningEmulator, start_emulator
from sora_widgets.journal import open_journal
from sora_widgets.media.frames import last_frame, probe
from sora_widgets.studio import studio as studio_module
from sora_widgets.studio.storyboard import KIND, Stage, Storyboard, resume_storyboards

from .conftest import VIP_KEY
from .doubles import wait_until
from .doubles.images import difference, first_frame
from .scripts.storyboard_victim import SHOTS as VICTIM_SHOTS

REPO = Path(__file__).resolve().parents[1]
SHOTS = ["a paper lantern floats up from a lake at night",
         "the lantern drifts over a sleeping village",
         "the lantern joins a thousand others in the sky"]
DEADLINE = 90.0


def tasks_in_order(emulator: RunningEmulator) -> list[dict[str, Any]]:
    """The emulator's own record of every POST it accepted, oldest first."""
    tasks = emulator.stats()["tasks"]
    return sorted(({"id": k, **v} for k, v in tasks.items()), key=lambda t: t["created_at"])


def plan_of(board: Storyboard) -> tuple[dict[str, Any], bool]:
    journal = studio_module.default_studio().journal()
    done = {plan_id for plan_id, _ in journal.plans(KIND, done=True)}
    for plan_id, body in journal.plans(KIND, done=None):
        if plan_id == board.plan_id:
            return body, plan_id in done
    raise AssertionError(f"no plan {board.plan_id}")


# -- the chain --------------------------------------------------------------------------------


def test_three_shots_are_three_posts_in_order_and_a_rerun_sends_none(
        relay: RunningEmulator) -> None:
    board = sw.storyboard(SHOTS)
    assert isinstance(board, Storyboard)
    assert board.quote is not None and board.quote.new == 3 and board.quote.reused == 0
    assert board.quote.text == "3 new × $0.90 = $2.70"
    board.wait(DEADLINE)
    assert board.stage == Stage.READY and board.error is None

    tasks = tasks_in_order(relay)
    assert relay.stats()["posts"] == 3
    assert [t["prompt"] for t in tasks] == SHOTS
    assert [relay.task(t["id"]).first_frame for t in tasks] == [False, True, True]  # type: ignore[union-attr]
    first, second, third = board.jobs
    assert [j.id for j in board.jobs] == [t["id"] for t in tasks]
    assert first.parent_id is None
    assert second.parent_id == first.local_id and third.parent_id == second.local_id
    assert all(j.status == Status.COMPLETED for j in board.jobs)
    assert board.cost_usd == 2.70
    # Each shot starts on the last frame of the one before (the emulator shows it).
    for parent, child in ((first, second), (second, third)):
        assert child.request.images[0].startswith("data:image/jpeg;base64,")
        assert difference(first_frame(child.local_path), last_frame(parent.local_path)) < 12
    # One film of 36 s, in the videos folder under SORA_WIDGETS_HOME.
    assert board.film_path is not None and board.film_path == board.film
    assert abs(probe(board.film_path).duration - 36.0) < 0.1
    # The plan: saved, finished, every shot with its job and parent, the film's path.
    body, done = plan_of(board)
    assert done and body["stage"] == Stage.READY
    assert [s["job"] for s in body["shots"]] == [j.local_id for j in board.jobs]
    assert [s["parent"] for s in body["shots"]] == [None, first.local_id, second.local_id]
    assert body["film"] == str(board.film_path)

    # The same storyboard again: its shots are reused, nothing is sent, the film stays.
    film_stat = board.film_path.stat()
    again = sw.storyboard(SHOTS)
    assert again.quote is not None
    assert (again.quote.new, again.quote.reused) == (0, 3)
    again.wait(DEADLINE)
    assert relay.stats()["posts"] == 3
    assert [j.local_id for j in again.jobs] == [j.local_id for j in board.jobs]
    assert again.film_path == board.film_path
    assert again.film_path.stat().st_mtime_ns == film_stat.st_mtime_ns   # not re-stitched


@pytest.mark.slow   # a subprocess kernel
def test_a_rerun_in_a_new_process_sends_nothing_either(relay: RunningEmulator,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    board = sw.storyboard(SHOTS[:2])
    board.wait(DEADLINE)
    assert relay.stats()["posts"] == 2
    studio_module.default_studio().close()          # the kernel restarts
    fresh = studio_module.Studio()
    monkeypatch.setattr(studio_module, "_default", fresh)
    try:
        again = sw.storyboard(SHOTS[:2])
        assert again is not board
        assert again.quote is not None and (again.quote.new, again.quote.reused) == (0, 2)
        again.wait(DEADLINE)
        assert relay.stats()["posts"] == 2
        assert [j.local_id for j in again.jobs] == [j.local_id for j in board.jobs]
        assert all(j.reused for j in again.jobs)
    finally:
        fresh.close()


def test_the_whole_storyboard_is_refused_before_any_post(relay: RunningEmulator,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.setenv("SORA_CONFIRM_USD", "2.00")
    with pytest.raises(ConfirmationRequired, match=r"3 new × \$0\.90 = \$2\.70") as refused:
        sw.storyboard(SHOTS)
    assert refused.value.quote.new == 3
    monkeypatch.setenv("SORA_BUDGET_USD", "2.00")
    with pytest.raises(BudgetExceededError, match="SORA_BUDGET_USD"):
        sw.storyboard(SHOTS, confirm=True)
    assert relay.stats()["posts"] == 0
    journal = studio_module.default_studio().journal()
    assert journal.plans(KIND, done=None) == []           # nothing planned either
    # Bad input is refused before anything too.
    with pytest.raises(SoraError, match="shot 2"):
        sw.storyboard(["a cat", "   "])
    with pytest.raises(SoraError, match="aspect_ratio"):
        sw.storyboard(["a cat", "a dog"], aspect_ratio="4:3")
    with pytest.raises(SoraError, match="list of prompts"):
        sw.storyboard("a single string")
    assert relay.stats()["posts"] == 0


def test_the_emulator_never_asks_for_confirmation(studio: studio_module.Studio,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_CONFIRM_USD", "0.10")
    board = sw.storyboard(SHOTS[:2])
    assert board.quote is not None and board.quote.emulator
    assert board.quote.text == "2 new · local emulator — no charge"
    board.wait(DEADLINE)
    assert board.stage == Stage.READY and board.cost_usd == 0.0


def test_a_failed_shot_stops_the_chain_and_a_rerun_continues_from_it(
        relay: RunningEmulator) -> None:
    def fail_from_shot_2(change: dict[str, Any]) -> None:
        if change["new"] == 1:            # the driver is about to submit shot 2
            relay.config.failure_rate = 1.0

    board = sw.storyboard(SHOTS)
    board.observe(fail_from_shot_2, names="current")
    if board.current >= 1:                # observed too late: the test would prove nothing
        pytest.fail("shot 2 started before the test could observe it")
    with pytest.raises(SoraError) as stopped:
        board.wait(DEADLINE)
    message = str(stopped.value)
    assert board.stage == Stage.STOPPED
    assert message.startswith("shot 2 of 3 failed: ")
    failed = board.jobs[1]
    assert failed is not None and failed.status == Status.FAILED
    assert failed.error and failed.error in message                 # why: the relay's words
    assert "Paid so far: $1.80 for 2 shot(s)" in message            # what was paid
    assert "retry from shot 2" in message
    assert board.jobs[2] is None and relay.stats()["posts"] == 2
    _, done = plan_of(board)
    assert done                    # a resume does not pay for the failed shot by itself
    assert resume_storyboards() == []

    relay.config.failure_rate = 0.0
    again = sw.storyboard(SHOTS)
    assert again.quote is not None
    assert (again.quote.new, again.quote.reused, again.quote.new_usd) == (2, 1, 1.80)
    again.wait(DEADLINE)
    assert relay.stats()["posts"] == 4
    assert again.jobs[0].local_id == board.jobs[0].local_id            # shot 1 reused
    assert again.jobs[1].local_id != failed.local_id
    assert again.jobs[1].parent_id == again.jobs[0].local_id
    assert again.jobs[2].parent_id == again.jobs[1].local_id
    assert abs(probe(again.film_path).duration - 36.0) < 0.1


def test_stop_then_resume_in_a_new_studio(relay: RunningEmulator,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    board = sw.storyboard(SHOTS[:2])

    def stop_after_shot_1(change: dict[str, Any]) -> None:
        if change["new"] == 1:
            board.stop()

    board.observe(stop_after_shot_1, names="current")
    with pytest.raises(SoraError, match="resume"):
        board.wait(DEADLINE)
    assert board.stage == Stage.INTERRUPTED and relay.stats()["posts"] == 1
    _, done = plan_of(board)
    assert not done
    studio_module.default_studio().close()
    fresh = studio_module.Studio()
    monkeypatch.setattr(studio_module, "_default", fresh)
    try:
        (resumed,) = resume_storyboards(fresh)
        assert resumed.plan_id == board.plan_id
        assert resume_storyboards(fresh) == [resumed]       # already going: not started twice
        resumed.wait(DEADLINE)
        assert relay.stats()["posts"] == 2
        assert resumed.jobs[0].local_id == board.jobs[0].local_id
        assert resumed.jobs[1].parent_id == board.jobs[0].local_id
        assert resume_storyboards(fresh) == []
    finally:
        fresh.close()


def test_importing_the_storyboard_module_keeps_the_core_clean() -> None:
    code = ("import sys, sora_widgets as sw\n"
            "assert callable(sw.storyboard)\n"
            "import sora_widgets.studio.storyboard as module\n"
            "assert callable(sw.storyboard) and callable(module)  # the module, callable\n"
            "assert sw.Storyboard is module.Storyboard and sw.stitch is module.stitch\n"
            "bad = [m for m in ('IPython', 'ipywidgets', 'av') if m in sys.modules]\n"
            "assert not bad, bad\n"
            "print('clean')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"


# -- kill -9 and %sora resume in a new process ---------------------------------------------------


class _Victim:
    def __init__(self, point: str, env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.scripts.storyboard_victim", point], env=env,
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def reached(self, timeout: float) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"the victim never reached its point; stderr:\n{err}") \
                from None
        return dict(json.loads(line))

    def kill_9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(10) == -signal.SIGKILL


@pytest.fixture
def process_env(home: Path, tmp_path: Path) -> Iterator[tuple[RunningEmulator, dict[str, str],
                                                               Path]]:
    scale = 0.01
    with start_emulator(EmulatorConfig(time_scale=scale, seed=5)) as emu:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SORA_")}
        env.update(SORA_API_KEY=VIP_KEY, SORA_BASE_URL=emu.base_url,
                   SORA_POLL_SCALE=str(scale), SORA_WIDGETS_HOME=str(home),
                   PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        cwd = tmp_path / "notebook"
        cwd.mkdir()
        yield emu, env, cwd


def _resume_in_a_new_process(env: dict[str, str], cwd: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "tests.scripts.storyboard_resumer"],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=240,
                          check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.slow   # SIGKILLed subprocesses
@pytest.mark.parametrize("point", ["after-shot-1", "during-shot-1"])
def test_kill_9_then_sora_resume_in_a_new_process_finishes_with_3_posts(
        process_env: tuple[RunningEmulator, dict[str, str], Path], home: Path,
        point: str) -> None:
    emu, env, cwd = process_env
    if point == "during-shot-1":
        emu.config.time_scale = 0.03       # shot 1 still runs when the process dies
        env["SORA_POLL_SCALE"] = "0.03"
    victim = _Victim(point, env, cwd)
    facts = victim.reached(DEADLINE)
    victim.kill_9()
    assert emu.stats()["posts"] == 1
    journal = open_journal(str(home / "journal.sqlite3"))
    try:
        (unfinished,) = journal.plans(KIND, done=False)
        assert unfinished[0] == facts["plan_id"]
        assert unfinished[1]["shots"][0]["job"] == facts["job"]
        assert [s["job"] for s in unfinished[1]["shots"][1:]] == [None, None]
    finally:
        journal.close()
    if point == "during-shot-1":
        assert facts["status"] != Status.COMPLETED, facts

    answer = _resume_in_a_new_process(env, cwd)

    assert emu.stats()["posts"] == 3                       # shots 2 and 3 only, once each
    tasks = tasks_in_order(emu)
    assert [t["prompt"] for t in tasks] == VICTIM_SHOTS
    assert tasks[0]["id"] == facts["task_id"]               # shot 1 was never sent again
    (plan,) = answer["plans"]
    assert plan["plan_id"] == facts["plan_id"] and plan["stage"] == Stage.READY
    jobs = [s["job"] for s in plan["shots"]]
    assert jobs[0] == facts["job"]
    assert [s["parent"] for s in plan["shots"]] == [None, jobs[0], jobs[1]]
    assert abs(probe(plan["film"]).duration - 36.0) < 0.1
    # The resumed cell ends with the film playing from next to the notebook, shots under it.
    final = answer["html"][-1]
    src = re.search(r"<video class='sora-video sora-film'[^>]* src='([^']+)'", final)
    assert src is not None, final[:400]
    assert (cwd / src.group(1)).is_file()
    assert final.count("class='sora-shot'") == 3


# -- %%sora --storyboard -----------------------------------------------------------------------


@pytest.fixture
def ip(studio: studio_module.Studio,
       monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[InteractiveShell, Any]]:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "sora_widgets")
    pub = CapturingDisplayPublisher()
    monkeypatch.setattr(shell, "display_pub", pub)
    yield shell, pub
    shell.user_ns.pop("board", None)


def _slots(pub: Any) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for out in pub.outputs:
        display_id = (out.get("transient") or {}).get("display_id")
        if display_id:
            found.setdefault(display_id, []).append(out)
    return found


def test_storyboard_cell_quotes_first_then_plays_the_film_with_the_shots_under_it(
        ip: tuple[InteractiveShell, Any], home: Path) -> None:
    shell, pub = ip
    cell = ("%%sora --storyboard --ratio 9:16 -o board\n"
            "a kite <b>rises</b> over a beach\n\n\n"
            "the kite loops\nin the wind\n   \n")
    result = shell.run_cell(cell)
    assert result.error_in_exec is None, result.error_in_exec
    board = shell.user_ns["board"]
    assert board.shots == ["a kite <b>rises</b> over a beach", "the kite loops\nin the wind"]
    quote = pub.outputs[0]["data"]
    assert quote["text/plain"] == "Storyboard of 2 shots: 2 new · local emulator — no charge"
    assert "sora-cost" in quote["text/html"]
    board.wait(DEADLINE)
    (slot,) = _slots(pub).values()
    wait_until(lambda: "sora-film" in slot[-1]["data"]["text/html"], 10, "the final update")
    final = slot[-1]["data"]["text/html"]
    film = re.search(r"<video class='sora-video sora-film'[^>]* src='([^']+)'", final)
    assert film is not None and film.group(1).startswith("sora_videos/storyboard-")
    assert (Path.cwd() / film.group(1)).is_file()
    assert "width='360' height='640'" in final                      # portrait film
    assert "film of 2 shots · 24 s" in final
    shots = re.findall(r"<li class='sora-shot'.*?</li>", final, re.S)
    assert len(shots) == 2
    assert "a kite &lt;b&gt;rises&lt;/b&gt; over a beach" in shots[0]   # escaped
    assert "<b>rises</b>" not in final
    for shot, job in zip(shots, board.jobs, strict=True):
        src = re.search(r"class='sora-shot-video'[^>]* src='([^']+)'", shot)
        assert src is not None and (Path.cwd() / src.group(1)).is_file()
        assert str(job.id) in shot
    assert "Storyboard · 2 shots · 9:16" in final
    assert "film: sora_videos/storyboard-" in slot[-1]["data"]["text/plain"]


def test_storyboard_cell_wait_and_embed(ip: tuple[InteractiveShell, Any]) -> None:
    """``--wait`` blocks the cell until the film is there; ``--embed`` inlines it."""
    shell, pub = ip
    result = shell.run_cell("%%sora --storyboard --wait --embed\na snail climbs a leaf\n")
    assert result.error_in_exec is None, result.error_in_exec
    (slot,) = _slots(pub).values()
    final = slot[-1]["data"]["text/html"]           # already final when the cell returns
    assert re.search(r"<video class='sora-video sora-film'[^>]* src='data:video/mp4;base64,",
                     final)
    assert not (Path.cwd() / "sora_videos").exists()


def test_python_form_displays_live_then_the_film(ip: tuple[InteractiveShell, Any]) -> None:
    shell, pub = ip
    result = shell.run_cell("import sora_widgets as sw\n"
                            "board = sw.storyboard(['a moth circles a lamp'])\nboard")
    assert result.error_in_exec is None, result.error_in_exec
    board = shell.user_ns["board"]
    board.wait(DEADLINE)
    (slot,) = _slots(pub).values()
    wait_until(lambda: "sora-film" in slot[-1]["data"]["text/html"], 10, "the final update")
    src = re.search(r"sora-film'[^>]* src='([^']+)'", slot[-1]["data"]["text/html"])
    assert src is not None and (Path.cwd() / src.group(1)).is_file()


@pytest.mark.parametrize(("cell", "words"), [
    ("%%sora --storyboard\n\n   \n", "one shot per paragraph"),
    ("%%sora --storyboard a prompt on the line\nshot one\n", "not on the magic line"),
    ("%%sora --storyboard -n 3\nshot one\n", "-n is not for storyboards"),
    ("%sora --storyboard", "one shot per paragraph"),
    ("%%sora --storyboard -o class\nshot one\n", "Python variable name"),
])
def test_storyboard_usage_errors_send_nothing(ip: tuple[InteractiveShell, Any], cell: str,
                                              words: str) -> None:
    shell, _ = ip
    result = shell.run_cell(cell)
    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    assert words in str(result.error_in_exec)
    assert studio_module.default_studio().journal().plans(KIND, done=None) == []
