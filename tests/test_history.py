"""History: every journal job, searchable, paginated, posters not players; stars and notes
kept in the journal (a new process sees them); lineage; posters of the right shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import sora_widgets as sw
from sora_widgets.core.lifecycle import Status
from sora_widgets.emulator import RunningEmulator
from sora_widgets.media.frames import probe
from sora_widgets.studio.lineage import word_diff
from sora_widgets.studio.studio import Studio
from sora_widgets.ui.compare import Compare
from sora_widgets.ui.history import History

from .conftest import VIP_KEY
from .doubles import wait_until
from .history_seed import seed_history

ANIMALS = ("fox", "owl", "cat")


def seeded(home: Path, count: int = 30, **kwargs: Any) -> list[str]:
    """Jobs 0..count-1, oldest first; every third a fox, portrait when i % 4 == 0."""
    return seed_history(home, count, prompt=lambda i: f"a {ANIMALS[i % 3]} number {i}",
                        ratio=lambda i: "9:16" if i % 4 == 0 else "16:9", **kwargs)


def send(history: History, **content: Any) -> None:
    """What the front end sends (``model.send``), through the widget's own handler."""
    history.view._handle_custom_msg(content, [])


def test_history_shows_every_journal_job_newest_first_a_page_at_a_time(
        home: Path, studio: Studio) -> None:
    ids = seeded(home, 30)
    history = History(page_size=12)
    view = history.view
    assert [c["id"] for c in view.cards] == ids[::-1][:12], "not newest first"
    assert view.has_next and view.summary.startswith("1–12")
    # Posters, not players: each card has a published still, no card has a video yet.
    assert view.players == {}
    for card in view.cards:
        assert card["poster"].startswith("sora_videos/") and card["poster"].endswith(".jpg")
        assert (Path.cwd() / card["poster"]).is_file()
        assert card["openable"] and card["status"] == Status.COMPLETED
    assert not list(Path.cwd().glob("sora_videos/*.mp4")), "opening history published videos"

    history.next_page()
    assert [c["id"] for c in view.cards] == ids[::-1][12:24]
    view.page = 2                                    # as the front end's "older" does
    assert [c["id"] for c in view.cards] == ids[::-1][24:]
    assert not view.has_next
    history.previous_page()
    assert [c["id"] for c in view.cards] == ids[::-1][12:24]


def test_search_and_filters_narrow_it_and_go_back_to_the_first_page(
        home: Path, studio: Studio) -> None:
    ids = seeded(home, 30, starred={3, 7})
    history = History(page_size=12)
    history.next_page()
    history.view.query = "FOX"                       # typed in the search box
    foxes = [ids[i] for i in range(30) if i % 3 == 0][::-1]
    assert history.view.page == 0
    assert [c["id"] for c in history.view.cards] == foxes[:12]
    assert all("fox" in c["prompt"] for c in history.view.cards)
    history.search("fox number 2")       # every word, in the prompt only (not "duration": 12)
    assert {c["prompt"] for c in history.view.cards} == {
        f"a fox number {i}" for i in (12, 21, 24, 27)}
    history.search("")
    history.filter(starred=True)
    assert [c["id"] for c in history.view.cards] == [ids[7], ids[3]]
    history.filter(starred=False, status=Status.FAILED)
    assert history.view.cards == [] and not history.view.has_next

    # sw.jobs filters the same way (the public API over the same query)
    assert [j.local_id for j in sw.jobs(search="owl number 1")] == [
        ids[i] for i in (19, 16, 13, 10, 1)]
    assert [j.local_id for j in sw.jobs(starred=True)] == [ids[7], ids[3]]
    assert [j.local_id for j in sw.jobs(3, search="cat")] == [ids[29], ids[26], ids[23]]
    assert sw.jobs(search="sora") == [] and sw.jobs(search="ratio") == [], (
        "words of the request's other fields matched")
    (cafe,) = seed_history(home, 1, prompt=lambda i: 'un "café" à l\'aube')
    assert [j.local_id for j in sw.jobs(search='CAFÉ")')] == []
    assert [j.local_id for j in sw.jobs(search='"café"')] == [cafe]
    assert [j.local_id for j in sw.jobs(search="à")] == [cafe]


def test_stars_and_notes_from_the_view_survive_a_new_process(home: Path,
                                                             studio: Studio) -> None:
    ids = seeded(home, 5)
    history = History()
    send(history, action="star", id=ids[1], on=True)
    send(history, action="note", id=ids[1], text="keeper: the <b>best</b> light")
    send(history, action="star", id=ids[2], on=True)
    send(history, action="star", id=ids[2], on=False)
    card = next(c for c in history.view.cards if c["id"] == ids[1])
    assert card["starred"] and card["note"] == "keeper: the <b>best</b> light"
    assert history.view.message == ""

    code = ("import json, sora_widgets as sw; "
            "print(json.dumps([[j.local_id, j.starred, j.note] for j in sw.jobs()]))")
    env = {**os.environ, "SORA_WIDGETS_HOME": str(home)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    marks = {local_id: (starred, note) for local_id, starred, note in json.loads(out)}
    assert marks[ids[1]] == (True, "keeper: the <b>best</b> light")
    assert marks[ids[2]] == (False, "")
    assert marks[ids[0]] == (False, "")


def test_opening_a_card_publishes_its_video_and_shows_one_player(home: Path,
                                                                 studio: Studio) -> None:
    ids = seeded(home, 3)
    history = History()
    send(history, action="open", id=ids[0])
    src = history.view.players[ids[0]]
    assert src.startswith("sora_videos/") and src.endswith(".mp4")
    assert (Path.cwd() / src).stat().st_size == studio.get(ids[0]).local_path.stat().st_size
    assert list(history.view.players) == [ids[0]]
    send(history, action="open", id="no-such-job")
    assert "no longer on this page" in history.view.message


def test_load_and_vary_call_the_form_and_compare_shows_the_checked_takes(
        home: Path, studio: Studio) -> None:
    ids = seeded(home, 4)
    loaded: list[tuple[str, bool]] = []
    history = History(on_load=lambda job, vary: loaded.append((job.local_id, vary)))
    assert history.view.can_load
    send(history, action="load", id=ids[3])
    send(history, action="vary", id=ids[2])
    assert loaded == [(ids[3], False), (ids[2], True)]

    send(history, action="select", id=ids[0], on=True)
    send(history, action="compare")
    assert "two or more" in history.view.message and history.compare_view is None
    send(history, action="select", id=ids[1], on=True)
    assert history.view.selected == [ids[0], ids[1]]
    send(history, action="compare")
    compare = history.compare_view
    assert isinstance(compare, Compare) and compare in history.compare_box.children
    assert [item["id"] for item in compare.items] == [ids[0], ids[1]]

    alone = History()
    assert not alone.view.can_load
    send(alone, action="load", id=ids[3])
    assert "not attached to a form" in alone.view.message


def test_a_varied_job_shows_its_prompt_as_a_word_diff_against_its_parent(
        relay: RunningEmulator, studio: Studio) -> None:
    parent = sw.generate("a red fox <running> in snow", wait=True)
    request = parent.request
    child = studio.submit(type(request).create("a blue fox <running> in deep snow"),
                          parent_id=parent.local_id)[0]
    child.wait(30)
    history = History()
    card = next(c for c in history.view.cards if c["id"] == child.local_id)
    assert card["parent"] == "a red fox <running> in snow"
    assert card["diff"] == [["same", "a "], ["del", "red "], ["add", "blue "],
                            ["same", "fox <running> in "], ["add", "deep "], ["same", "snow"]]
    state = json.dumps(history.view.get_state(), default=str)
    assert VIP_KEY not in state


def test_punctuation_added_to_a_word_is_one_insertion() -> None:
    """'look' -> 'look,' reads as a comma added, not a word deleted and another added."""
    assert word_diff("a look", "a look,") == [("same", "a look"), ("add", ",")]
    removed = word_diff("a look, then", "a look then")
    assert [(op, text.strip()) for op, text in removed if op != "same"] == [("del", ",")]


def test_posters_exist_beside_saved_videos_with_the_videos_aspect_ratio(
        studio: Studio) -> None:
    wide = sw.generate("a wide meadow at noon", aspect_ratio="16:9", wait=True)
    tall = sw.generate("a tall tower at noon", aspect_ratio="9:16", wait=True)
    for job in (wide, tall):
        assert job.local_path is not None and job.poster_path is not None
        assert job.poster_path.is_file()
        assert job.poster_path.parent == job.local_path.parent
        info = probe(job.local_path)
        with Image.open(job.poster_path) as still:
            assert still.format == "JPEG"
            assert abs(still.width / still.height - info.width / info.height) < 0.02, (
                job.aspect_ratio, still.size, (info.width, info.height))
    with Image.open(wide.poster_path) as a, Image.open(tall.poster_path) as b:
        assert a.width > a.height and b.height > b.width


@pytest.mark.parametrize("count", [200])
def test_two_hundred_jobs_make_one_page_of_posters(home: Path, studio: Studio,
                                                   count: int) -> None:
    seeded(home, count)
    history = History()
    assert len(history.view.cards) == 12 and history.view.players == {}
    published = list(Path.cwd().glob("sora_videos/*"))
    assert len(published) == 12 and all(p.suffix == ".jpg" for p in published)


# -- in the panel ---------------------------------------------------------------------------


@pytest.fixture
def panel(studio: Studio) -> Any:
    from sora_widgets.ui.widget import SoraWidget

    made = SoraWidget()
    yield made
    made.close()


def panel_send(panel: Any, **content: Any) -> None:
    """What History's front end sends inside the panel (panel.js tags it for its part)."""
    panel._on_msg(panel, {**content, "target": "history"}, [])


def test_the_panels_history_loads_the_form_and_vary_records_the_parent(
        home: Path, panel: Any, studio: Studio) -> None:
    ids = seeded(home, 20)
    assert panel.history.page is None, "the history was read before it was opened"
    assert panel.history_view == {} and not panel.history_open
    view = panel.history.open()                             # the "History" button
    assert view is not None and panel.history_open
    assert len(view.view.cards) == 12 and view.view.can_load
    assert panel.history_view["cards"] == view.view.cards   # what the browser gets

    newest = studio.get(ids[-1])
    panel_send(panel, action="load", id=ids[-1])
    assert panel.prompt == newest.prompt
    assert panel.aspect_ratio == newest.aspect_ratio
    assert panel.history.parent_id is None

    tall = studio.get(ids[-4])                              # i = 16: a portrait owl
    panel_send(panel, action="vary", id=tall.local_id)
    assert (panel.prompt, panel.aspect_ratio) == (tall.prompt, "9:16")
    assert panel.history.parent_id == tall.local_id
    assert panel.vary_line == tall.prompt                   # "a variation of: …"
    panel.prompt = tall.prompt.replace("owl", "red owl")
    panel.generate()
    child = panel.cards[0].job
    assert child.parent_id == tall.local_id
    assert studio.journal().get(child.local_id).parent_id == tall.local_id
    assert panel.history.parent_id is None and panel.vary_line == "", "one vary, one child"
    card = view.view.cards[0]                               # refreshed after the submit
    assert card["id"] == child.local_id
    assert ["add", "red "] in card["diff"] and card["parent"] == tall.prompt
    assert panel.history_view["cards"][0]["id"] == child.local_id


def test_a_sweep_in_the_panel_quotes_first_and_asks_to_confirm_a_big_one(
        relay: RunningEmulator, panel: Any) -> None:
    panel.prompt = "a {red|blue} kite at dawn"
    assert panel.generate_label == "Generate 2 · 2 new × $0.90 = $1.80"
    assert not panel.generate_disabled
    panel.generate()
    assert [c.job.prompt for c in panel.cards] == ["a red kite at dawn", "a blue kite at dawn"]
    wait_until(lambda: relay.stats()["posts"] == 2)

    panel.prompt = "a {red|blue} kite at {dawn|dusk|noon|night}"
    assert panel.generate_label == (
        "Generate 8 · 6 new × $0.90 = $5.40 · 2 reused free")
    panel.generate()
    assert relay.stats()["posts"] == 2 and len(panel.cards) == 2, "sent before confirming"
    assert panel.confirm_label == "Confirm: pay $5.40"
    assert "SORA_CONFIRM_USD" in panel.reason and "nothing was sent" in panel.reason
    panel.confirm()
    assert panel.confirm_label == ""
    assert len(panel.cards) == 8
    wait_until(lambda: relay.stats()["posts"] == 8)
    assert "6 new, 2 reused" in panel.reason

    # A changed form drops a pending confirmation.
    panel.prompt = "a {green|gold} kite {high|low} at {noon|night}"
    panel.generate()
    assert panel.confirm_label != ""
    panel.prompt = "something else"
    assert panel.confirm_label == "" and relay.stats()["posts"] == 8
    panel.confirm()                                         # a stale Confirm click: nothing
    assert relay.stats()["posts"] == 8


def test_a_card_redraws_progress_at_most_once_a_second_and_keeps_the_last_value(
        studio: Studio) -> None:
    """Progress set 200 times in a burst (as a fast relay would): the card's item changes
    once at once and once at the end of the second (the last value), not 200 times."""
    from sora_widgets.engine.job import Job
    from sora_widgets.ui.widget import JobCard

    job = Job(sw.VideoRequest.create("a burst"), studio.backend(), studio.journal(),
              home_videos := Path.cwd(), status=Status.IN_PROGRESS, progress=1)
    assert home_videos.exists()
    values: list[int] = []
    card = JobCard(job, root=Path.cwd(),
                   on_update=lambda c: values.append(c.item["progress"]))
    for progress in range(2, 202):
        job.progress = progress % 100
    assert len(values) <= 1, f"{len(values)} item updates in a burst"
    wait_until(lambda: card.item["progress"] == 201 % 100, 5)
    assert len(values) <= 2 and values[-1] == 1
    job.status = Status.FAILED.value          # any other change redraws at once
    assert card.item["tone"] == "danger"
    card.detach()


def test_the_cli_lists_starred_jobs_with_their_marks(home: Path, studio: Studio) -> None:
    ids = seeded(home, 6)
    studio.get(ids[2]).star()
    studio.get(ids[2]).note = "best \x1b[31mlight"
    env = {**os.environ, "SORA_WIDGETS_HOME": str(home), "COLUMNS": "160"}
    cli = str(Path(sys.executable).with_name("sora-widgets"))
    out = subprocess.run([cli, "jobs", "--starred"], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert "★ a cat number 2 — note: best" in out and "\x1b[31m" not in out, out
    assert "owl" not in out and "fox" not in out, out
    found = subprocess.run([cli, "jobs", "--search", "owl"], env=env, capture_output=True,
                           text=True, timeout=60, check=True).stdout
    assert "a owl number 1" in found and "a owl number 4" in found and "cat" not in found


@pytest.mark.slow   # a whole notebook headless, twice
def test_the_sweeps_and_history_notebook_runs_headless_and_again_from_the_journal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """notebooks/sweeps-and-history.ipynb, top to bottom on the emulator, then again in a
    fresh kernel (a restart): the second run is answered from the journal, not one new job."""
    import re
    import shutil

    import nbformat
    from nbclient import NotebookClient

    for name in ("SORA_API_KEY", "SORA_BASE_URL", "SORA_BUDGET_USD", "SORA_POLL_SCALE"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("SORA_WIDGETS_HOME", str(home))
    monkeypatch.setenv("SORA_EMULATOR_TIME_SCALE", "0.01")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    work = tmp_path / "notebooks"
    work.mkdir()
    source = Path(__file__).resolve().parents[1] / "notebooks" / "sweeps-and-history.ipynb"
    shutil.copyfile(source, work / source.name)
    shipped = nbformat.read(source, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in shipped.cells if c.cell_type == "code"), "the notebook ships outputs"

    def execute() -> Any:
        nb = nbformat.read(work / source.name, as_version=4)
        NotebookClient(nb, kernel_name="python3", timeout=180, allow_errors=False,
                       resources={"metadata": {"path": str(work)}}).execute()
        errors = [o for c in nb.cells for o in c.get("outputs", [])
                  if o.get("output_type") == "error" or o.get("name") == "stderr"]
        assert errors == [], errors
        return nb

    def html(nb: Any, start: str) -> str:
        cell = next(c for c in nb.cells if c.cell_type == "code" and start in c.source)
        return "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs)

    def journal_size() -> int:
        from sora_widgets.journal import SqliteJournal

        journal = SqliteJournal(home / "journal.sqlite3")
        try:
            return len(journal.history())
        finally:
            journal.close()

    nb = execute()
    boats = html(nb, "%sora a paper boat")
    assert "4 jobs ({red|yellow} × {dusk|dawn})" in boats
    assert "a paper boat drifting down a street in the rain, red boat, dusk light" in boats
    assert boats.count("class='sora-sweep-row'") == 2
    assert html(nb, "lighthouse = sw.sweep").count("class='sora-sweep-col'") == 2
    sources = re.findall(r"<video[^>]*\ssrc='([^']+)'", boats + html(nb, "lighthouse ="))
    assert len(sources) == 8
    for src in sources:
        assert src.startswith("sora_videos/") and (work / src).stat().st_size > 10_000
    starred = html(nb, "%sora jobs --starred")
    assert starred.count("<img class='sora-thumb'") == 1 and "★ " in starred
    made = journal_size()
    assert made == 8, made

    execute()                                      # a fresh kernel: a restart
    assert journal_size() == made, "re-running the notebook submitted new jobs"


# -- live (issue 22) ----------------------------------------------------------------------------


def test_an_open_history_shows_a_take_finished_elsewhere_without_a_click(
        relay: RunningEmulator, studio: Studio) -> None:
    history = History()
    try:
        assert history.view.cards == []
        job = sw.generate("a hot air balloon over hills")     # %sora, another cell
        job.wait(timeout=30)

        def shown() -> dict[str, Any] | None:
            return next((c for c in history.view.cards if c["id"] == job.local_id), None)

        # No refresh, no message from the front end: the studio's job events did it.
        wait_until(lambda: (shown() or {}).get("status") == Status.COMPLETED
                 and bool((shown() or {}).get("poster")))
        card = shown()
        assert card is not None and card["openable"]
        assert (Path.cwd() / card["poster"]).is_file()
        assert "%" not in card["status_text"]
    finally:
        history.close()
    calls: list[int] = []
    history.refresh = lambda **_kw: calls.append(1)      # type: ignore[method-assign]
    sw.generate("a second balloon").wait(timeout=30)    # closed: no longer refreshed
    assert calls == []


def test_a_panel_take_made_with_vary_turns_completed_in_the_open_history(
        home: Path, panel: Any, studio: Studio) -> None:
    ids = seeded(home, 3)
    view = panel.history.open()
    assert view is not None
    panel_send(panel, action="vary", id=ids[-1])
    panel.prompt = "a fox number 2, at night"
    panel.generate()
    child = panel.cards[0].job
    child.wait(timeout=30)

    def status() -> object:
        return next((c["status"] for c in view.view.cards if c["id"] == child.local_id),
                    None)

    wait_until(lambda: status() == Status.COMPLETED)
    assert studio.journal().get(child.local_id).parent_id == ids[-1]
    # The browser's copy too (the part mirrors the page into the panel's trait).
    assert next(c["status"] for c in panel.history_view["cards"]
                if c["id"] == child.local_id) == Status.COMPLETED
