"""7. Bad input at every entry point: a clear message naming the problem, nothing sent.

Entry points: ``sw.generate``, the ``%sora`` magic, the ``SoraWidget`` form (Generate
disabled, with the reason), and the CLI (``sora_widgets.ui.cli.main`` in process, and
once as ``python -m sora_widgets.ui.cli`` in a subprocess). After every case the relay
(the emulator) has seen 0 POSTs and the journal holds no row: nothing charged,
nothing recorded.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import sora_widgets as sw
from sora_widgets.emulator import RunningEmulator
from sora_widgets.journal import SqliteJournal as Journal
from sora_widgets.studio import studio as studio_module
from sora_widgets.ui import cli
from sora_widgets.ui.widget import SoraWidget

from .conftest import VIP_KEY

#: (name, generate() kwargs, environment changes, words the message must contain)
CASES: list[tuple[str, dict[str, Any], dict[str, str], tuple[str, ...]]] = [
    ("no prompt, no image", {"prompt": None}, {}, ("prompt", "image")),
    ("blank prompt", {"prompt": "   \n\t"}, {}, ("prompt", "image")),
    ("prompt not text", {"prompt": 12345}, {}, ("prompt",)),
    ("prompt too long", {"prompt": "x" * 10_001}, {}, ("prompt", "10000")),
    ("ratio 4:3", {"prompt": "a cat", "aspect_ratio": "4:3"}, {}, ("aspect_ratio", "16:9")),
    ("ratio 16x9", {"prompt": "a cat", "aspect_ratio": "16x9"}, {}, ("aspect_ratio",)),
    ("ratio blank", {"prompt": "a cat", "aspect_ratio": ""}, {}, ("aspect_ratio",)),
    ("duration 5", {"prompt": "a cat", "duration": 5}, {}, ("duration", "12")),
    ("duration 0", {"prompt": "a cat", "duration": 0}, {}, ("duration", "12")),
    ("duration '12'", {"prompt": "a cat", "duration": "12"}, {}, ("duration",)),
    ("duration 12.0", {"prompt": "a cat", "duration": 12.0}, {}, ("duration",)),
    ("duration True", {"prompt": "a cat", "duration": True}, {}, ("duration",)),
    ("image words", {"prompt": "a cat", "image": "not a url"}, {}, ("image", "http")),
    ("image ftp", {"prompt": "a cat", "image": "ftp://example.com/a.png"}, {}, ("image",)),
    ("image file url", {"image": "file:///etc/passwd"}, {}, ("image",)),
    ("image javascript", {"image": "javascript:alert(1)"}, {}, ("image",)),
    ("image no host", {"prompt": "a cat", "image": "https://"}, {}, ("image",)),
    ("image with space", {"image": "https://exa mple.com/a.png"}, {}, ("image",)),
    ("image data html", {"image": "data:text/html,<b>x</b>"}, {}, ("image", "data:image")),
    ("image missing file", {"image": "no_such_picture.png"}, {}, ("image",)),
    ("image not an image", {"image": "NOTES_FILE"}, {}, ("image", "not an image")),
    ("image list with a bad one", {"image": ["https://ok.test/a.png", "nope"]}, {},
     ("image",)),
    ("model blank", {"prompt": "a cat", "model": "   "}, {}, ("model",)),
    ("budget exceeded", {"prompt": "a cat"}, {"SORA_BUDGET_USD": "0.50"},
     ("budget", "SORA_BUDGET_USD", "nothing was sent")),
    ("budget not a number", {"prompt": "a cat"}, {"SORA_BUDGET_USD": "ten dollars"},
     ("SORA_BUDGET_USD", "number")),
    ("price not a number", {"prompt": "a cat"}, {"SORA_PRICE_USD": "free"},
     ("SORA_PRICE_USD", "number")),
]


def _kwargs(kwargs: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    if kwargs.get("image") == "NOTES_FILE":
        notes = tmp_path / "notes.txt"
        notes.write_text("not a picture")
        return {**kwargs, "image": str(notes)}
    return kwargs


def assert_nothing_sent(relay: RunningEmulator, home: Path) -> None:
    assert relay.stats()["posts"] == 0
    path = home / "journal.sqlite3"
    assert not path.exists() or Journal(path).history() == []


# -- sw.generate -----------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "env", "words"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_generate_refuses_bad_input_before_sending(
        relay: RunningEmulator, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        kwargs: dict[str, Any], env: dict[str, str], words: tuple[str, ...]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(sw.ValidationError) as info:
        sw.generate(**_kwargs(kwargs, tmp_path))
    message = str(info.value)
    assert all(word.lower() in message.lower() for word in words), message
    assert len(message) < 400 and "Traceback" not in message
    assert_nothing_sent(relay, home)


# -- the magic -------------------------------------------------------------------------------


@pytest.fixture
def shell(studio: studio_module.Studio, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "sora_widgets")
    monkeypatch.setattr(ip, "display_pub", CapturingDisplayPublisher())
    magics = ip.magics_manager.registry["SoraMagics"]
    monkeypatch.setattr(magics, "live_widgets", False)
    yield ip


def magic_error(shell: InteractiveShell, source: str) -> str:
    result = shell.run_cell(source, store_history=False)
    assert isinstance(result.error_in_exec, UsageError), (source, result.error_in_exec)
    return str(result.error_in_exec)


MAGIC_CASES: list[tuple[str, str, dict[str, str], tuple[str, ...]]] = [
    ("no prompt, no image", "%sora", {}, ("prompt", "image")),
    ("blank cell", "%%sora\n   \n", {}, ("prompt",)),
    ("ratio 4:3", "%sora a cat --ratio 4:3", {}, ("aspect_ratio",)),
    ("duration option", "%sora a cat --duration 5", {}, ("--duration",)),
    ("image words", "%sora a cat -i notaurl", {}, ("image", "http")),
    ("image javascript", "%sora a cat -i javascript:alert(1)", {}, ("image",)),
    ("image file url", "%sora a cat --image file:///etc/passwd", {}, ("image",)),
    ("prompt too long", "%sora " + "x" * 10_001, {}, ("prompt", "10000")),
    ("-n 0", "%sora a cat -n 0", {}, ("-n",)),
    ("-n 11", "%sora a cat -n 11", {}, ("-n", "10")),
    ("-o not a name", "%sora a cat -o 1bad", {}, ("-o",)),
    ("line and body", "%%sora a cat\na dog", {}, ("not both",)),
    ("unclosed quote", '%sora "a cat', {}, ("quotation",)),
    ("budget exceeded", "%sora a cat", {"SORA_BUDGET_USD": "0.50"},
     ("budget", "SORA_BUDGET_USD")),
    ("budget exceeded, -n 3", "%sora a cat -n 3", {"SORA_BUDGET_USD": "1.00"},
     ("budget", "nothing was sent")),
    ("budget not a number", "%sora a cat", {"SORA_BUDGET_USD": "lots"},
     ("SORA_BUDGET_USD",)),
]


@pytest.mark.parametrize(("source", "env", "words"), [c[1:] for c in MAGIC_CASES],
                         ids=[c[0] for c in MAGIC_CASES])
def test_magic_refuses_bad_input_before_sending(
        relay: RunningEmulator, home: Path, shell: InteractiveShell,
        monkeypatch: pytest.MonkeyPatch, source: str, env: dict[str, str],
        words: tuple[str, ...]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    message = magic_error(shell, source)
    assert all(word.lower() in message.lower() for word in words), message
    assert_nothing_sent(relay, home)


# -- the widget ------------------------------------------------------------------------------

WIDGET_CASES: list[tuple[str, dict[str, str], dict[str, str], tuple[str, ...]]] = [
    # An empty form is guidance, not an error (issue 12): no red text, the tooltip says what to do.
    ("empty form", {}, {}, ()),
    ("blank prompt", {"prompt": "  \n "}, {}, ()),
    ("prompt too long", {"prompt": "x" * 10_001}, {}, ("prompt", "10000")),
    ("image words", {"prompt": "a cat", "image": "not a url"}, {}, ("image", "http")),
    ("image javascript", {"prompt": "a cat", "image": "javascript:alert(1)"}, {}, ("image",)),
    ("image data html", {"image": "data:text/html,<b>x</b>"}, {}, ("image",)),
    ("budget exceeded", {"prompt": "a cat"}, {"SORA_BUDGET_USD": "0.50"},
     ("budget", "SORA_BUDGET_USD")),
    ("budget not a number", {"prompt": "a cat"}, {"SORA_BUDGET_USD": "lots"},
     ("SORA_BUDGET_USD",)),
]


@pytest.mark.parametrize(("form", "env", "words"), [c[1:] for c in WIDGET_CASES],
                         ids=[c[0] for c in WIDGET_CASES])
def test_widget_disables_generate_and_says_why(
        relay: RunningEmulator, home: Path, monkeypatch: pytest.MonkeyPatch,
        form: dict[str, str], env: dict[str, str], words: tuple[str, ...]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    panel = SoraWidget()
    try:
        panel.prompt = form.get("prompt", "")
        panel.image = form.get("image", "")
        assert panel.generate_disabled
        reason = panel.reason                      # plain text beside the button
        if not words:
            assert reason == "", reason
            assert "Describe" in panel.generate_tooltip
        assert all(word in reason for word in words), reason
        panel.generate()                           # a click that slips through anyway
        panel._on_msg(panel, {"action": "generate"}, [])   # or one queued in the browser
        assert panel.cards == []
    finally:
        panel.close()
    assert_nothing_sent(relay, home)


def test_widget_refuses_a_bad_ratio(relay: RunningEmulator, home: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    dropped: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: dropped.append(u.exc_value))
    with pytest.raises(ValueError, match="aspect_ratio") as refused:
        SoraWidget(prompt="a cat", aspect_ratio="4:3")
    del refused            # its traceback held the half-made panel
    gc.collect()           # Widget.__del__ closes it: quietly, though __init__ stopped early
    assert dropped == []
    panel = SoraWidget(prompt="a cat")
    try:
        panel.aspect_ratio = "4:3"                 # what a hostile front end could set
        assert panel.generate_disabled and "aspect_ratio" in panel.reason
        panel.generate()
        assert panel.cards == []
    finally:
        panel.close()
    assert_nothing_sent(relay, home)


# -- the CLI ---------------------------------------------------------------------------------

CLI_CASES: list[tuple[str, list[str], dict[str, str], tuple[str, ...]]] = [
    ("no prompt, no image", ["generate"], {}, ("prompt", "image")),
    ("ratio 4:3", ["generate", "a cat", "--ratio", "4:3"], {}, ("--ratio", "4:3")),
    ("duration option", ["generate", "a cat", "--duration", "5"], {}, ("--duration",)),
    ("image words", ["generate", "a cat", "--image", "notaurl"], {}, ("image", "http")),
    ("image javascript", ["generate", "--image", "javascript:alert(1)"], {}, ("image",)),
    ("prompt too long", ["generate", "x" * 10_001], {}, ("prompt", "10000")),
    ("budget exceeded", ["generate", "a cat"], {"SORA_BUDGET_USD": "0.50"},
     ("budget", "SORA_BUDGET_USD")),
    ("budget not a number", ["generate", "a cat"], {"SORA_BUDGET_USD": "lots"},
     ("SORA_BUDGET_USD",)),
]


@pytest.mark.parametrize(("argv", "env", "words"), [c[1:] for c in CLI_CASES],
                         ids=[c[0] for c in CLI_CASES])
def test_cli_refuses_bad_input_before_sending(
        relay: RunningEmulator, home: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], argv: list[str], env: dict[str, str],
        words: tuple[str, ...]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        code = cli.main(argv)
    except SystemExit as exc:               # argparse's own usage errors
        code = exc.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert code == 2, err
    assert all(word in err for word in words), err
    assert "Traceback" not in err
    assert_nothing_sent(relay, home)


def test_cli_as_a_real_command(relay: RunningEmulator, home: Path) -> None:
    env = {**os.environ, "SORA_API_KEY": VIP_KEY, "SORA_BASE_URL": relay.base_url}
    result = subprocess.run([sys.executable, "-m", "sora_widgets.ui.cli", "generate", "--image",
                             "notaurl"], env=env, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 2, result.stderr
    assert "image" in result.stderr and "Traceback" not in result.stderr
    assert_nothing_sent(relay, home)


# -- a key-less call aimed at a relay ------------------------------------------------------


def test_a_base_url_without_a_key_is_an_error_not_the_emulator(
        relay: RunningEmulator, home: Path, shell: InteractiveShell,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """SORA_BASE_URL names a relay but SORA_API_KEY is missing (a typo, a kernel started
    without it). Decision: that is a clear error naming SORA_API_KEY at every entry point,
    not a silent switch to the local emulator (which would make the user believe their
    relay answered, and say "no charge" about a job they meant to pay for)."""
    monkeypatch.delenv("SORA_API_KEY")
    did: list[str] = []
    try:
        job = sw.generate("keyless but aimed at a relay")
        did.append(f"sw.generate returned a job on the {'emulator' if job.emulator else '?'}")
    except sw.SoraError as exc:
        if "SORA_API_KEY" not in str(exc):
            did.append(f"sw.generate: unclear error {exc}")
    result = shell.run_cell("%sora keyless magic aimed at a relay", store_history=False)
    if not isinstance(result.error_in_exec, UsageError):
        did.append("%sora submitted (to the embedded emulator)")
    elif "SORA_API_KEY" not in str(result.error_in_exec):
        did.append(f"%sora: unclear error {result.error_in_exec}")
    panel = SoraWidget(prompt="keyless panel aimed at a relay")
    try:
        if not panel.generate_disabled:
            did.append(f"the widget offers {panel.generate_label!r}")
        elif "SORA_API_KEY" not in panel.reason:
            did.append(f"the widget: unclear reason {panel.reason}")
    finally:
        panel.close()
    code = cli.main(["generate", "--quiet", "keyless cli aimed at a relay"])
    if code != 2 or "SORA_API_KEY" not in capsys.readouterr().err:
        did.append(f"the CLI exited {code} after running the job on the emulator")
    assert relay.stats()["posts"] == 0
    assert did == []
