"""The ``%sora`` line parsed once (``SoraCommand``), an unknown flag answered with the valid
ones, and ``%sora jobs`` a page at a time — through a real IPython shell."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from sora_widgets.studio import studio as studio_module
from sora_widgets.ui.magic.command import SoraCommand, sora_parser

from .history_seed import seed_history


def parse(line: str, cell: str | None = None, **names: object) -> SoraCommand:
    from sora_widgets.core.text import substitute_names

    return SoraCommand.parse(line, cell, lambda text: substitute_names(text, names))


def test_the_line_is_parsed_once_and_values_are_unquoted_then_substituted() -> None:
    cmd = parse('--ratio "9:16" -o clip -n $count a {animal} "on a hill"',
                count="3", animal="corgi")
    assert cmd.subcommand is None
    assert cmd.n == 3 and cmd.output == "clip" and cmd.ratio("16:9") == "9:16"
    assert cmd.prompt() == "a corgi on a hill"
    assert cmd.template() == "a {animal} on a hill"      # what a sweep reads


def test_a_variable_is_data_never_a_flag() -> None:
    cmd = parse("{flags} a cat", flags="--force --yes")
    assert not cmd.flag("force") and not cmd.flag("yes")
    assert cmd.prompt() == "--force --yes a cat"


def test_one_o_check_one_n_check_and_the_ratio_list() -> None:
    with pytest.raises(UsageError, match="variable name"):
        _ = parse("-o class a cat").output
    with pytest.raises(UsageError, match="between 1 and 10"):
        _ = parse("-n 11 a cat").n
    with pytest.raises(UsageError, match="invalid int value: 'x'"):
        _ = parse("-n x a cat").n
    assert parse("--ratio 16:9,9:16 a cat").ratios("16:9") == ["16:9", "9:16"]
    assert parse("--size 1280x720 a cat").ratios("16:9") == [None]


def test_a_subcommand_keeps_its_words_and_refuses_a_body() -> None:
    cmd = parse("show {jid} --wait", jid="v_123")
    assert cmd.subcommand == "show" and cmd.rest == ["v_123", "--wait"]
    with pytest.raises(UsageError, match="no cell body"):
        parse("jobs", "a body")


def test_the_command_never_shows_its_words() -> None:
    cmd = parse("key {secret}", secret="sk-live-0123456789")
    assert "sk-live" not in repr(cmd) and "key" in repr(cmd)


def test_an_unknown_flag_lists_the_valid_ones() -> None:
    with pytest.raises(UsageError) as info:
        parse("--bogus-flag a cat")
    message = str(info.value)
    assert "unrecognized arguments: --bogus-flag" in message
    for flag in ("-r/--ratio RATIO", "-i/--image URL_OR_FILE", "--force", "-n N",
                 "-o/--output NAME", "--storyboard", "--yes"):
        assert flag in message, flag
    assert "-r/--ratio" in sora_parser().valid_flags()


# -- through the shell ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shell() -> InteractiveShell:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "sora_widgets")
    return ip


@pytest.fixture
def pub(shell: InteractiveShell, studio: studio_module.Studio,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[CapturingDisplayPublisher]:
    capture = CapturingDisplayPublisher()
    monkeypatch.setattr(shell, "display_pub", capture)
    yield capture


def run(shell: InteractiveShell, source: str) -> Any:
    return shell.run_cell(source, store_history=False)


def test_sora_bogus_flag_says_the_valid_flags(shell: InteractiveShell,
                                             pub: CapturingDisplayPublisher) -> None:
    result = run(shell, "%sora --bogus-flag a cat")
    assert isinstance(result.error_in_exec, UsageError)
    assert "valid flags of %sora:" in str(result.error_in_exec)
    assert "--ratio" in str(result.error_in_exec) and not pub.outputs
    result = run(shell, "%sora jobs --bogus")
    assert "valid flags of %sora jobs: -n LIMIT, --page P, --starred, --team" in str(
        result.error_in_exec)


def test_sora_jobs_pages_and_says_how_to_see_the_next(shell: InteractiveShell, home: Path,
                                                     pub: CapturingDisplayPublisher) -> None:
    seed_history(home, 28, prompt=lambda i: f"a seeded heron number {i}")
    run(shell, "%sora jobs")
    first = pub.outputs[-1]["data"]
    assert first["text/html"].count("<tr>") == 21          # head + 20 rows
    assert "jobs 1–20 · next: %sora jobs --page 2" in first["text/plain"]
    assert "jobs 1–20 · next: %sora jobs --page 2" in first["text/html"]   # what Lab shows
    assert "a seeded heron number 27" in first["text/html"]   # newest first
    run(shell, "%sora jobs --page 2")
    second = pub.outputs[-1]["data"]
    assert second["text/html"].count("<tr>") == 9
    assert "jobs 21–28 · previous: %sora jobs --page 1" in second["text/plain"]
    assert "next:" not in second["text/plain"]
    assert "a seeded heron number 0" in second["text/html"]
    run(shell, "%sora jobs -n 30")
    assert "jobs 1" not in pub.outputs[-1]["data"]["text/plain"]   # one page: no footer
