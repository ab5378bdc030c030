"""Sweeps: the brace grammar, and one transaction per sweep against a real relay (the
emulator with a key: charges recorded, POSTs counted by the server itself)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import sora_widgets as sw
from sora_widgets.core.errors import BudgetExceededError, ConfirmationRequired, ValidationError
from sora_widgets.core.text import substitute_names
from sora_widgets.emulator import RunningEmulator
from sora_widgets.studio import sweeps
from sora_widgets.studio.studio import Studio
from sora_widgets.studio.sweeps import MAX_JOBS, RATIO_AXIS, Axis, escape_braces, expand, plan

# -- the grammar --------------------------------------------------------------------------------


def prompts(template: str) -> list[str]:
    return [p for p, _ in expand(template)[1]]


def test_every_combination_first_axis_slowest() -> None:
    axes, combos = expand("a {red|blue} fox {running|sleeping}")
    assert axes == (Axis("{red|blue}", ("red", "blue")),
                    Axis("{running|sleeping}", ("running", "sleeping")))
    assert combos == [("a red fox running", ("red", "running")),
                      ("a red fox sleeping", ("red", "sleeping")),
                      ("a blue fox running", ("blue", "running")),
                      ("a blue fox sleeping", ("blue", "sleeping"))]


def test_alternatives_are_trimmed_and_text_around_them_kept_exactly() -> None:
    assert prompts("a { red | blue }  fox\nat dusk") == ["a red  fox\nat dusk",
                                                         "a blue  fox\nat dusk"]


def test_nested_groups_add_values_to_their_axis() -> None:
    axes, combos = expand("a {red|{dark|light} blue} fox")
    assert axes == (Axis("{red|{dark|light} blue}", ("red", "dark blue", "light blue")),)
    assert [p for p, _ in combos] == ["a red fox", "a dark blue fox", "a light blue fox"]
    # A group that ends where its parent ends: '}}' inside braces is structure.
    assert prompts("{a|{b|c}}") == ["a", "b", "c"]


def test_doubled_braces_are_literal_and_braces_without_a_bar_stay_as_written() -> None:
    assert prompts("a {{red|blue}} fox") == ["a {red|blue} fox"]
    assert prompts("json {{\"k\": 1}} and {x} and {os.environ['K']}") == [
        "json {\"k\": 1} and {x} and {os.environ['K']}"]
    # Braces without '|' inside an alternative are a literal brace there.
    assert prompts("{plain|{x}}") == ["plain", "{x}"]
    assert expand("no braces at all") == ((), [("no braces at all", ())])


@pytest.mark.parametrize(("template", "words"), [
    ("a {red|} fox", "empty alternative"),
    ("a {|blue} fox", "empty alternative"),
    ("a {red||blue} fox", "empty alternative"),
    ("a { | } fox", "empty alternative"),
    ("a {red|{|x}} fox", "empty alternative"),
    ("a {red|blue fox", "never closed"),
    ("a {red|{blue} fox", "never closed"),
    ("a red} fox", "closes nothing"),
    ("a {red|blue}} fox", "closes nothing"),
    ("{x {red|blue}}", "inside braces that are not a sweep"),
    ("{red|red}", "twice"),
])
def test_bad_templates_are_refused_with_where_and_how(template: str, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        expand(template)
    message = str(info.value)
    assert words in message and "column" in message and "{{" in message, message
    assert info.value.field == "prompt"


def test_more_combinations_than_one_call_may_make_are_refused() -> None:
    with pytest.raises(ValidationError, match=f"at most {MAX_JOBS}"):
        expand("x" + "{a|b|c|d|e}" * 3)   # 125
    with pytest.raises(ValidationError, match=f"at most {MAX_JOBS}"):
        plan("{" + "|".join(f"v{i}" for i in range(60)) + "}", aspect_ratio=["16:9", "9:16"])


def test_a_notebook_variable_is_data_and_a_bar_in_braces_is_a_sweep() -> None:
    """The magic substitutes ``{name}`` first, with the value's braces doubled."""
    ns = {"animal": "fox", "odd": "a {weird|value}"}
    escaped = {k: escape_braces(v) for k, v in ns.items()}
    text = substitute_names("a {animal} in {red|blue} and {odd} and {{x}}", escaped,
                            unescape=False)
    assert prompts(text) == ["a fox in red and a {weird|value} and {x}",
                             "a fox in blue and a {weird|value} and {x}"]
    # An undefined name is kept as written, and stays literal text.
    assert prompts(substitute_names("a {nobody} {x|y}", {}, unescape=False)) == [
        "a {nobody} x", "a {nobody} y"]


def test_a_ratio_list_is_one_more_axis_and_every_request_is_validated(home: Path) -> None:
    the_plan = plan("a {red|blue} fox", aspect_ratio=["16:9", "9:16"])
    assert the_plan.axes[-1] == Axis(RATIO_AXIS, ("16:9", "9:16"))
    assert [(r.prompt, r.aspect_ratio) for r in the_plan.requests] == [
        ("a red fox", "16:9"), ("a red fox", "9:16"),
        ("a blue fox", "16:9"), ("a blue fox", "9:16")]
    assert the_plan.values[1] == ("red", "9:16")
    with pytest.raises(ValidationError, match="aspect_ratio"):
        plan("a {red|blue} fox", aspect_ratio=["16:9", "4:3"])


# -- one transaction per sweep, against the relay ----------------------------------------------


def posted_prompts(relay: RunningEmulator, jobs: Any) -> list[str]:
    tasks = [relay.task(job.id) for job in jobs]
    return [task.prompt for task in tasks if task is not None]


def test_a_2x2_sweep_sends_4_posts_and_a_rerun_sends_none(relay: RunningEmulator,
                                                           studio: Studio) -> None:
    made = sw.sweep("a {red|blue} fox {running|sleeping}")
    assert isinstance(made, sw.Sweep) and len(made) == 4
    made.wait(30)
    assert relay.stats()["posts"] == 4
    assert posted_prompts(relay, made) == ["a red fox running", "a red fox sleeping",
                                           "a blue fox running", "a blue fox sleeping"]
    assert made.values(2) == {"{red|blue}": "blue", "{running|sleeping}": "running"}
    assert made.quote is not None and made.quote.new == 4 and made.quote.new_usd == 3.6
    assert "4 new × $0.90 = $3.60" in made.quote.text

    again = sw.sweep("a {red|blue} fox {running|sleeping}")
    assert relay.stats()["posts"] == 4, "a re-run of the same sweep paid again"
    assert [j.local_id for j in again] == [j.local_id for j in made]
    assert all(job.reused for job in again)
    assert again.quote is not None and again.quote.text == "nothing new to pay · 4 reused free"


def test_a_sweep_can_be_quoted_without_sending_anything(relay: RunningEmulator,
                                                        studio: Studio) -> None:
    from sora_widgets.studio import sweeps

    sw.sweep("a {red|blue} fox").wait(30)
    before = relay.stats()["posts"]
    quoted = sweeps.quote("a {red|blue|green} fox", aspect_ratio=["16:9", "9:16"])
    assert quoted.text == "4 new × $0.90 = $3.60 · 2 reused free"
    assert relay.stats()["posts"] == before and len(studio.jobs()) == 2


def test_an_8_job_sweep_asks_first_and_sends_8_once_confirmed(
        relay: RunningEmulator, studio: Studio) -> None:
    template = "a {red|blue} fox {running|sleeping} at {dawn|dusk}"
    with pytest.raises(ConfirmationRequired) as info:
        sw.sweep(template)
    assert relay.stats()["posts"] == 0
    assert info.value.quote.new == 8 and "$7.20" in info.value.quote.text
    assert studio.jobs() == [], "a refused sweep left rows in the journal"

    made = sw.sweep(template, confirm=True)
    made.wait(30)
    assert relay.stats()["posts"] == 8
    assert len(set(posted_prompts(relay, made))) == 8


def test_the_budget_covers_the_whole_sweep(relay: RunningEmulator, studio: Studio,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Two of the four would fit a $2 budget; the call is one: nothing is sent."""
    monkeypatch.setenv("SORA_BUDGET_USD", "2")
    with pytest.raises(BudgetExceededError):
        sw.sweep("a {red|blue} fox {running|sleeping}")
    assert relay.stats()["posts"] == 0
    assert studio.jobs() == []


def test_the_emulator_is_free_and_never_asks(studio: Studio) -> None:
    made = sw.sweep("a {red|blue} fox {running|sleeping} at {dawn|dusk}")
    assert len(made) == 8
    assert made.quote is not None and made.quote.emulator and made.quote.new_usd == 0
    made.wait(60)
    assert {job.aspect_ratio for job in made} == {"16:9"}
    # Its repr (an export, a frontend without the display hook) says it once: in the quote.
    assert made._repr_html_().count("local emulator — no charge") == 1


def test_the_grid_is_labelled_by_rows_and_columns_and_writes_no_files(
        relay: RunningEmulator, studio: Studio) -> None:
    made = sw.sweep("a {red|<b>blue</b>} fox", aspect_ratio=["16:9", "9:16"]).wait(30)
    before = sorted(p.name for p in Path.cwd().rglob("*"))
    html = made._repr_html_()
    assert sorted(p.name for p in Path.cwd().rglob("*")) == before, "the repr wrote files"
    assert "class='sora-sweep-row'" in html and "class='sora-sweep-col'" in html
    assert html.count("class='sora-sweep-cell'") == 4
    assert "&lt;b&gt;blue&lt;/b&gt;" in html and "<b>blue</b>" not in html
    rows = [chunk.split("</div>")[0] for chunk in html.split("class='sora-sweep-row'")[1:]]
    assert [r.split(">", 1)[1] for r in rows] == ["red", "&lt;b&gt;blue&lt;/b&gt;"]
    cols = [chunk.split("</div>")[0] for chunk in html.split("class='sora-sweep-col'")[1:]]
    assert [c.split(">", 1)[1] for c in cols] == ["16:9", "9:16"]
    assert os.environ["SORA_API_KEY"] not in html
    assert repr(made).startswith("<Sweep 4 jobs")


# -- the magic's sweep ---------------------------------------------------------------------------

FAST = 0.003


@pytest.fixture
def magic(studio: Studio, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A real IPython shell with the magics, its display messages captured."""
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setenv("SORA_EMULATOR_TIME_SCALE", str(FAST))
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "sora_widgets")
    pub = CapturingDisplayPublisher()
    monkeypatch.setattr(shell, "display_pub", pub)
    magics = shell.magics_manager.registry["SoraMagics"]
    monkeypatch.setattr(magics, "live_widgets", False)
    yield shell, pub
    for name in ("s", "animal", "odd"):
        shell.user_ns.pop(name, None)


@pytest.fixture
def paid(relay: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> RunningEmulator:
    relay.config.time_scale = FAST
    monkeypatch.setenv("SORA_POLL_SCALE", str(FAST))
    return relay


def html_outputs(pub: Any) -> list[str]:
    return [o["data"].get("text/html", "") for o in pub.outputs]


def run(shell: Any, source: str) -> Any:
    result = shell.run_cell(source, store_history=False)
    return result.error_in_exec


def test_the_magic_quotes_a_2x2_sweep_first_then_shows_a_labelled_grid(
        magic: Any, paid: RunningEmulator) -> None:
    shell, pub = magic
    assert run(shell, "%sora a {red|blue} fox {running|sleeping} --wait -o s") is None
    htmls = html_outputs(pub)
    assert "sora-sweep-quote" in htmls[0], "the quote is not the first output"
    assert ("4 jobs ({red|blue} × {running|sleeping}): 4 new × $0.90 = $3.60"
            in htmls[0])
    made = shell.user_ns["s"]
    assert isinstance(made, sw.Sweep) and len(made) == 4
    assert paid.stats()["posts"] == 4
    assert posted_prompts(paid, made) == ["a red fox running", "a red fox sleeping",
                                          "a blue fox running", "a blue fox sleeping"]
    final = htmls[-1]
    for label in ("'sora-sweep-row'", "'sora-sweep-col'"):
        assert label in final
    rows = [c.split("</div>")[0].split(">", 1)[1] for c in final.split("'sora-sweep-row'")[1:]]
    cols = [c.split("</div>")[0].split(">", 1)[1] for c in final.split("'sora-sweep-col'")[1:]]
    assert (rows, cols) == (["red", "blue"], ["running", "sleeping"])
    players = final.count("<video class='sora-video'")
    assert players == 4 and final.count("poster='data:image/jpeg;base64,") == 4
    for job in made:
        src = f"sora_videos/{job.local_path.name}"
        assert f"src='{src}'" in final and (Path.cwd() / src).is_file()

    pub.outputs.clear()
    assert run(shell, "%sora a {red|blue} fox {running|sleeping} --wait") is None
    assert "nothing new to pay · 4 reused free" in html_outputs(pub)[0]
    assert paid.stats()["posts"] == 4, "the re-run paid again"


def test_the_magic_asks_for_yes_before_an_8_job_sweep(magic: Any,
                                                     paid: RunningEmulator) -> None:
    shell, pub = magic
    error = run(shell, "%sora a {red|blue} fox {running|sleeping} at {dawn|dusk}")
    assert error is not None and "--yes" in str(error) and "$7.20" in str(error)
    assert paid.stats()["posts"] == 0
    assert run(shell, "%sora a {red|blue} fox {running|sleeping} at {dawn|dusk} --yes "
                      "--wait -o s") is None
    assert paid.stats()["posts"] == 8 and len(shell.user_ns["s"]) == 8
    final = html_outputs(pub)[-1]
    assert final.count("class='sora-sweep-block'") == 2      # {red|blue}: two blocks


def test_variables_are_data_and_braces_with_a_bar_are_a_sweep(magic: Any,
                                                             paid: RunningEmulator) -> None:
    shell, _ = magic
    shell.user_ns.update(animal="owl", odd="{x|y}")
    assert run(shell, "%sora a {animal} and {odd} in {red|{animal}} -o s") is None
    first = shell.user_ns["s"]
    assert [j.prompt for j in first] == ["a owl and {x|y} in red", "a owl and {x|y} in owl"]
    assert first.axes[0].values == ("red", "owl")
    assert run(shell, "%sora a {{red|blue}} {odd} fox -o s") is None
    assert shell.user_ns["s"].prompt == "a {red|blue} {x|y} fox"     # one Job, no sweep
    error = run(shell, "%sora a {red|} fox")
    assert error is not None and "empty alternative" in str(error)
    first.wait(30)
    shell.user_ns["s"].wait(30)
    assert paid.stats()["posts"] == 3


def test_a_ratio_list_sweeps_the_ratio_and_n_is_refused_with_a_sweep(
        magic: Any, paid: RunningEmulator) -> None:
    shell, pub = magic
    assert run(shell, "%sora a lighthouse --ratio 16:9,9:16 --wait -o s") is None
    made = shell.user_ns["s"]
    assert [j.aspect_ratio for j in made] == ["16:9", "9:16"]
    assert made.axes == (sweeps.Axis("ratio", ("16:9", "9:16")),)
    final = html_outputs(pub)[-1]
    assert "width='640' height='360'" in final and "width='270' height='480'" in final
    error = run(shell, "%sora a {red|blue} kite -n 2")
    assert error is not None and "-n does not combine" in str(error)
    assert paid.stats()["posts"] == 2


def test_sora_jobs_starred_shows_starred_rows_with_poster_thumbnails(
        magic: Any, studio: Studio) -> None:
    shell, pub = magic
    keep = sw.generate("a keeper at <dusk>", wait=True)
    sw.generate("a throwaway at noon", wait=True)
    keep.star()
    keep.note = "use this <one>"
    assert run(shell, "%sora jobs --starred") is None
    table = html_outputs(pub)[-1]
    assert table.count("<tr>") == 2            # the header and one row
    assert "★ a keeper at &lt;dusk&gt;" in table and "throwaway" not in table
    assert "use this &lt;one&gt;" in table
    # The still is inline: listing history writes no file next to the notebook (issue 11).
    assert "<img class='sora-thumb' src='data:image/jpeg;base64," in table
    assert not (Path.cwd() / "sora_videos" / keep.poster_path.name).exists()
    assert "<video" not in table, "a player per history row"
    pub.outputs.clear()
    assert run(shell, "%sora jobs") is None
    assert html_outputs(pub)[-1].count("<img class='sora-thumb'") == 2
