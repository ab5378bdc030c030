"""``%sora`` / ``%%sora`` through a real IPython shell, against the emulator over loopback.

Display output is captured with IPython's own ``CapturingDisplayPublisher``, so the
tests see exactly the messages a frontend would: a slot (``display_id``) and its
updates. Background results are awaited with ``job.wait`` or a polled deadline.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ipywidgets
import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.error import StdinNotImplementedError, UsageError
from IPython.core.interactiveshell import InteractiveShell

from sora_widgets.core import settings as config_module
from sora_widgets.core.errors import JobFailed
from sora_widgets.emulator import RunningEmulator
from sora_widgets.engine.job import Job, video_file_name
from sora_widgets.studio import studio as studio_module
from sora_widgets.ui.magic.magics import SoraMagics

from .conftest import VIP_KEY
from .doubles import wait_until

#: Jobs run 60-180 s x FAST: a few hundred ms each, so the whole file stays quick.
FAST = 0.003
TRAIT_DEFAULTS = {"default_ratio": "16:9", "model": "", "base_url": "", "autodownload": True,
                  "embed": False, "media_dir": "sora_videos"}


@dataclass
class Session:
    shell: InteractiveShell
    pub: CapturingDisplayPublisher
    magics: SoraMagics
    stdout: list[str] = field(default_factory=list)

    def run(self, source: str) -> Any:
        """Run a cell; return its result (``error_in_exec`` holds a UsageError)."""
        return self.shell.run_cell(source, store_history=False)

    def fails(self, source: str) -> str:
        result = self.run(source)
        assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
        return str(result.error_in_exec)

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return list(self.pub.outputs)

    def slots(self) -> dict[str, list[dict[str, Any]]]:
        """Every display id with its messages in order (first: the display, then updates)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for out in self.outputs:
            display_id = (out.get("transient") or {}).get("display_id")
            if display_id:
                found.setdefault(display_id, []).append(out)
        return found

    def final(self, index: int = -1) -> dict[str, Any]:
        """The current content of the index-th slot (its last update wins)."""
        return list(self.slots().values())[index][-1]["data"]

    def settled_slot(self, index: int = -1, timeout: float = 20.0) -> dict[str, Any]:
        """Wait (with a deadline) until the slot holds the final HTML; return it."""
        wait_until(lambda: self.slots() and _is_final(self.final(index)), timeout)
        return self.final(index)

    def widget(self, index: int = 0) -> Any:
        """The live widget displayed by the index-th output."""
        from ipywidgets.widgets.widget import _instances

        view = self.outputs[index]["data"]["application/vnd.jupyter.widget-view+json"]
        return _instances[view["model_id"]]

    def all_text(self) -> str:
        return json.dumps(self.outputs, default=str, ensure_ascii=False)


def _is_final(data: dict[str, Any]) -> bool:
    html = data.get("text/html", "")
    return "sora-video" in html or "sora-error" in html


@pytest.fixture(scope="module")
def shell() -> InteractiveShell:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "sora_widgets")
    return ip


@pytest.fixture
def ip(shell: InteractiveShell, studio: studio_module.Studio,
       monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    monkeypatch.setenv("SORA_EMULATOR_TIME_SCALE", str(FAST))
    pub = CapturingDisplayPublisher()
    monkeypatch.setattr(shell, "display_pub", pub)
    magics = shell.magics_manager.registry["SoraMagics"]
    assert isinstance(magics, SoraMagics)
    for name, value in TRAIT_DEFAULTS.items():
        setattr(magics, name, value)
    magics.live_widgets = None
    yield Session(shell, pub, magics)
    for name, value in TRAIT_DEFAULTS.items():
        setattr(magics, name, value)
    shell.user_ns.pop("job", None)
    config_module.set_session_key(None)


@pytest.fixture
def paid(relay: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> RunningEmulator:
    """The relay fixture (a key: $0.90 a job), on a faster clock."""
    relay.config.time_scale = FAST
    monkeypatch.setenv("SORA_POLL_SCALE", str(FAST))
    return relay


def video_srcs(html: str) -> list[str]:
    return re.findall(r"<video[^>]* src='([^']+)'", html)


def live_parts(root: Any) -> tuple[Any, Any]:
    """(status HTML, progress bar) of a one-job live view."""
    (cell,) = [c for c in root.children if "sora-running" in c._dom_classes]
    status, bar = cell.children
    return status, bar


# -- loading, help, config ---------------------------------------------------------------------


def test_load_ext_twice_registers_once(ip: Session) -> None:
    import sora_widgets

    sora_widgets.load_ipython_extension(ip.shell)
    ip.run("%load_ext sora_widgets")
    assert sum(isinstance(c, SoraMagics) for c in ip.shell.configurables) == 1
    assert ip.shell.find_line_magic("sora") is not None
    assert ip.shell.find_cell_magic("sora") is not None


def test_help_lists_options_and_subcommands(ip: Session,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    doc = ip.shell.find_line_magic("sora").__doc__
    for word in ("--ratio", "--image", "--model", "--force", "-n N", "--wait", "-o NAME",
                 "--embed", "%sora jobs", "%sora show ID", "%sora resume", "%sora cost",
                 "%sora key"):
        assert word in doc, word
    assert doc.startswith("Usage:\n  %sora [-r RATIO]"), doc[:40]
    assert "::" not in doc and "``" not in doc          # no Sphinx markup in %sora?
    ip.run("%sora?")
    shown = capsys.readouterr().out
    assert "--ratio" in shown and "::" not in shown


def test_config_traits(ip: Session, home: Path) -> None:
    ip.run('%config SoraMagics.default_ratio = "9:16"')
    ip.run('%config SoraMagics.media_dir = "clips"')
    assert ip.magics.default_ratio == "9:16"
    ip.run("%sora --wait -o job a lighthouse at dusk")
    job = ip.shell.user_ns["job"]
    assert job.aspect_ratio == "9:16"
    src = video_srcs(ip.final()["text/html"])[0]
    assert src.startswith("clips/") and (Path.cwd() / src).is_file()
    assert "width='270' height='480'" in ip.final()["text/html"]
    # Bad values are refused by the trait (and the previous value kept).
    ip.run('%config SoraMagics.default_ratio = "4:3"')
    ip.run('%config SoraMagics.media_dir = "/etc"')
    ip.run('%config SoraMagics.media_dir = "../up"')
    assert ip.magics.default_ratio == "9:16" and ip.magics.media_dir == "clips"


def test_config_from_ipython_config_object(shell: InteractiveShell) -> None:
    from traitlets.config import Config

    cfg = Config()
    cfg.SoraMagics.default_ratio = "9:16"
    cfg.SoraMagics.embed = True
    magics = SoraMagics(shell=None, config=cfg)
    assert magics.default_ratio == "9:16" and magics.embed is True


# -- generating ---------------------------------------------------------------------------------


def test_line_magic_returns_at_once_then_plays_the_local_copy(
        ip: Session, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ip.shell.user_ns["animal"] = "corgi"
    monkeypatch.setenv("SORA_EMULATOR_TIME_SCALE", "0.02")   # a job takes 1.2 s at least
    result = ip.run("%sora a {animal} surfing a wave -o job")
    assert result.error_in_exec is None
    assert result.result is None  # no Out[] repr next to the slot
    job: Job = ip.shell.user_ns["job"]
    assert not job.done   # the cell returned at once, while the job still runs
    assert job.prompt == "a corgi surfing a wave"
    first = ip.outputs[0]
    assert first["update"] is False and "sora-status" in first["data"]["text/html"]
    assert "local emulator — no charge" in first["data"]["text/html"]
    job.wait(timeout=20)
    final = ip.settled_slot()
    slot = next(iter(ip.slots().values()))
    assert slot[-1]["update"] is True and len(ip.slots()) == 1  # same slot, replaced
    (src,) = video_srcs(final["text/html"])
    assert src == f"sora_videos/{video_file_name(job.id)}"
    assert (Path.cwd() / src).read_bytes() == job.local_path.read_bytes()
    assert "local emulator — no charge" in final["text/html"]
    assert "download mp4" in final["text/html"] and job.id in final["text/plain"]
    assert "width='640' height='360'" in final["text/html"]


def test_cell_magic_wait_ratio_multiline_prompt_and_interpolation(ip: Session) -> None:
    ip.shell.user_ns["place"] = "Kyoto"
    ip.shell.user_ns["hour"] = "dawn"
    result = ip.run("%%sora --wait --ratio 9:16 -o job\na quiet street in {place}\nat $hour\n")
    assert result.error_in_exec is None
    job = ip.shell.user_ns["job"]
    assert job.prompt == "a quiet street in Kyoto\nat dawn"
    assert job.status == "completed" and job.aspect_ratio == "9:16"
    final = ip.final()  # --wait: already replaced when the cell returned
    assert "width='270' height='480'" in final["text/html"]
    assert (Path.cwd() / video_srcs(final["text/html"])[0]).is_file()


def test_quoted_prompt_images_and_model(ip: Session, paid: RunningEmulator) -> None:
    ip.run('%sora "a cat, in a hat" -i https://example.com/a.jpg --image '
           'https://example.com/b.png --model sora-2 -r 9:16 --wait -o job')
    job = ip.shell.user_ns["job"]
    assert job.prompt == "a cat, in a hat"
    assert job.request.images == ("https://example.com/a.jpg", "https://example.com/b.png")
    assert job.request.model == "sora-2" and job.aspect_ratio == "9:16"
    assert job.status == "completed"
    final = ip.final()                           # the accepted image is shown, as a link
    assert "class='sora-first-frame' href='https://example.com/a.jpg'" in final["text/html"]
    assert "first frame: https://example.com/a.jpg" in final["text/plain"]
    # A model outside the catalogue is refused before sending; the user file adds it.
    assert "catalogue" in ip.fails('%sora --model sora-2-custom --wait not listed yet')
    catalog = {"artifex": {"sora-2-custom": {"ratios": ["16:9", "9:16"], "seconds": [12],
                                             "price": {"per": "clip", "usd": 1.10}}}}
    (Path(os.environ["SORA_WIDGETS_HOME"]) / "catalog.json").write_text(json.dumps(catalog))
    ip.run('%config SoraMagics.model = "sora-2-custom"')
    ip.run("%sora --wait -o job a second one")
    assert ip.shell.user_ns["job"].request.model == "sora-2-custom"
    assert ip.shell.user_ns["job"].cost_usd == 1.10


def test_base_url_trait_points_at_the_relay(ip: Session, paid: RunningEmulator,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SORA_BASE_URL")
    ip.run(f'%config SoraMagics.base_url = "{paid.base_url}/"')
    ip.run('%config SoraMagics.base_url = "ftp://nope"')  # refused, the URL above stays
    assert ip.magics.base_url == paid.base_url
    ip.run("%sora --wait -o job sent to the configured relay")
    assert ip.shell.user_ns["job"].status == "completed" and paid.stats()["posts"] == 1
    monkeypatch.delenv("SORA_API_KEY")  # a relay but no key: refused, not faked
    assert "no SORA_API_KEY" in ip.fails("%sora another one")
    assert paid.stats()["posts"] == 1


def test_rerun_is_cached_and_force_pays_again(ip: Session, paid: RunningEmulator) -> None:
    ip.run("%sora --wait -o job a paid fox")
    first = ip.shell.user_ns["job"]
    assert paid.stats()["posts"] == 1 and "$0.90" in ip.final()["text/html"]
    ip.run("%sora --wait -o job a paid fox")
    assert ip.shell.user_ns["job"] is first and paid.stats()["posts"] == 1
    assert "reused — no new charge" in ip.final()["text/html"]
    ip.run("%sora --wait --force -o job a paid fox")
    assert ip.shell.user_ns["job"] is not first and paid.stats()["posts"] == 2
    assert VIP_KEY not in ip.all_text()


def test_variations_state_the_cost_first_and_show_a_grid(ip: Session,
                                                         paid: RunningEmulator) -> None:
    ip.run("%sora -n 3 --wait -o jobs three otters")
    jobs = ip.shell.user_ns["jobs"]
    assert isinstance(jobs, list) and len(jobs) == 3
    assert len({j.id for j in jobs}) == 3 and paid.stats()["posts"] == 3
    cost = ip.outputs[0]["data"]["text/plain"]
    assert "3 new × $0.90 = $2.70" in cost
    assert not (ip.outputs[0].get("transient") or {}).get("display_id")  # stated first
    final = ip.final()["text/html"]
    assert "sora-grid" in final and len(video_srcs(final)) == 3
    for src in video_srcs(final):
        assert (Path.cwd() / src).is_file()
    # Re-running reuses the three (free); --force pays for N new ones.
    ip.run("%sora -n 3 --wait -o jobs three otters")
    assert {j.id for j in ip.shell.user_ns["jobs"]} == {j.id for j in jobs}
    assert paid.stats()["posts"] == 3
    assert "nothing new to pay" in ip.all_text()
    ip.run("%sora -n 4 -o jobs three otters")
    assert "1 new × $0.90 = $0.90 · 3 reused free" in ip.all_text()
    for job in ip.shell.user_ns["jobs"]:
        job.wait(timeout=20)
    ip.run("%sora -n 2 --force --wait three otters")
    assert "2 new × $0.90 = $1.80" in ip.all_text() and paid.stats()["posts"] == 6


def test_variations_on_the_emulator_say_no_charge(ip: Session) -> None:
    ip.run("%sora -n 2 -o jobs two pandas")
    assert "local emulator — no charge" in ip.outputs[0]["data"]["text/plain"]
    for job in ip.shell.user_ns["jobs"]:
        job.wait(timeout=20)
    final = ip.settled_slot()
    assert len(video_srcs(final["text/html"])) == 2


def test_embed_inlines_base64_and_states_the_size(ip: Session) -> None:
    ip.run("%sora --embed --wait -o job a tiny robot")
    html = ip.final()["text/html"]
    (src,) = video_srcs(html)
    assert src.startswith("data:video/mp4;base64,")
    assert re.search(r"embedded in this notebook: \d+ KB mp4", html)
    assert not (Path.cwd() / "sora_videos").exists()
    ip.run("%config SoraMagics.embed = True")
    ip.run("%sora --wait another tiny robot")
    assert video_srcs(ip.final()["text/html"])[0].startswith("data:video/mp4;base64,")


def test_autodownload_off_plays_the_relay_link(ip: Session) -> None:
    ip.run("%config SoraMagics.autodownload = False")
    ip.run("%sora --wait a kite")
    html = ip.final()["text/html"]
    assert video_srcs(html)[0].startswith("http://127.0.0.1:")
    assert "which expires" in html


def test_user_strings_are_escaped(ip: Session) -> None:
    ip.run("%sora --wait -o job <script>alert(1)</script> <img src=x onerror=alert(2)>")
    html = "".join(out["data"].get("text/html", "") for out in ip.outputs)
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in ip.final()["text/html"]


# -- live widgets -------------------------------------------------------------------------------


def test_live_widgets_update_from_the_poller_then_give_way(ip: Session) -> None:
    from ipywidgets.widgets.widget import _instances

    ip.magics.live_widgets = True
    ip.run("%sora -o job a widget-watched <i>heron</i>")
    job = ip.shell.user_ns["job"]
    box = ip.widget()
    model_id = box.model_id
    status, bar = live_parts(box)
    assert "sora-live" in box._dom_classes                   # the restart CSS hooks here
    restart = next(c for c in box.children if "sora-restart" in c._dom_classes)
    assert "kernel restarted" in restart.value and "%sora resume" in restart.value
    seen: list[tuple[str, object]] = []
    bar.observe(lambda c: seen.append((threading.current_thread().name, c["new"])),
                names=["value", "bar_style"])
    job.wait(timeout=20)         # (this wait shows its own progress slot: live_widgets)
    final = ip.settled_slot(0)
    assert _is_final(final) and "application/vnd.jupyter.widget-view+json" not in final
    # Traits are set from the engine's events thread (never the poller's loop, never two).
    assert seen and {name for name, _ in seen} == {"sora-widgets-events"}
    assert bar.value == 100 and bar.bar_style == "success"
    assert "<i>" not in status.value and "&lt;i&gt;heron" in status.value
    wait_until(lambda: model_id not in _instances)  # closed: nothing left in saved state
    assert bar.comm is None


def test_failed_job_is_a_red_box_with_the_relays_words(ip: Session,
                                                        paid: RunningEmulator) -> None:
    paid.config.failure_rate = 1.0
    ip.magics.live_widgets = True
    ip.run("%sora -o job a doomed scene")
    job = ip.shell.user_ns["job"]
    _, bar = live_parts(ip.widget())
    assert isinstance(bar, ipywidgets.IntProgress)
    with pytest.raises(JobFailed):
        job.wait(timeout=20)
    final = ip.settled_slot(0)
    assert "sora-error" in final["text/html"] and "Generation failed" in final["text/html"]
    assert job.error and job.error.split()[0] in final["text/html"]
    assert bar.bar_style == "danger"


# -- money and keys -----------------------------------------------------------------------------


def test_non_vip_key_says_so_plainly(ip: Session, paid: RunningEmulator,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_API_KEY", "nonvip-abc123")
    ip.run("%sora --wait -o job a forbidden castle")
    html = ip.final()["text/html"]
    assert "this key is not in the VIP group" in html and "sora-error" in html
    assert "nonvip-abc123" not in ip.all_text()


def test_unknown_outcome_says_it_may_have_been_charged(ip: Session,
                                                       paid: RunningEmulator) -> None:
    paid.inject("accept_then_drop", method="POST")
    ip.run("%sora --wait -o job a lost answer")
    assert ip.shell.user_ns["job"].status == "unknown"
    html = ip.final()["text/html"]
    assert "may have been charged" in html and "sora-error" in html


def test_key_subcommand_asks_with_getpass_and_never_echoes(
        ip: Session, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    secret = "sk-secret-do-not-show-42"
    prompts: list[str] = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": prompts.append(prompt) or secret)
    assert ip.run("%sora key").error_in_exec is None
    key = config_module.settings().api_key
    assert prompts and key is not None and key.reveal() == secret
    message = ip.fails(f"%sora key {secret}")
    assert secret not in message and "paste" in message
    ip.run("%sora key --forget")
    assert config_module.settings().api_key is None
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": "  ")
    ip.run("%sora key")
    assert config_module.settings().api_key is None
    out = capsys.readouterr()
    assert secret not in out.out + out.err and secret not in ip.all_text()
    assert "never saved or shown" in out.out


def test_key_in_a_frontend_without_stdin_is_a_usage_error(
        ip: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_stdin(prompt: str = "") -> str:
        raise StdinNotImplementedError("getpass is not supported here")

    monkeypatch.setattr(getpass, "getpass", no_stdin)
    assert "SORA_API_KEY" in ip.fails("%sora key")


def test_session_key_is_used_and_never_shown(ip: Session, paid: RunningEmulator,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SORA_API_KEY")
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": VIP_KEY)
    ip.run("%sora key")
    ip.run("%sora --wait -o job paid with a session key")
    assert ip.shell.user_ns["job"].cost_usd == 0.90 and paid.stats()["posts"] == 1
    assert VIP_KEY not in ip.all_text() and VIP_KEY not in repr(ip.shell.user_ns["job"])


# -- usage errors: clear, no traceback, nothing sent --------------------------------------------


@pytest.mark.parametrize(("source", "words"), [
    ("%sora --ratio 4:3 a cat", "16:9 or 9:16"),
    ("%sora", "give a prompt or an image"),
    ("%sora --image ftp://example.com/x.jpg a cat", "image"),
    ("%sora --image /no/such/file.png a cat", "image"),
    ("%sora -n 0 a cat", "between 1 and 10"),
    ("%sora -n 11 a cat", "between 1 and 10"),
    ("%sora -n x a cat", "invalid int"),
    ("%sora --bogus a cat", "unrecognized"),
    ("%sora -o 1bad a cat", "variable name"),
    ("%sora -o class a cat", "variable name"),
    ('%sora "unbalanced a cat', "closing quotation"),
    ("%%sora a cat on the line\nand a body", "not both"),
    ("%sora show me a cat", 'quote it:\n    %sora "show me a cat"'),
    ("%sora jobs of my dog", '%sora "jobs of my dog"'),
    ("%sora show", "required"),
    ("%sora show v_nope", "no job"),
    ("%sora jobs -n many", "invalid int"),
    ("%sora cost now", "unrecognized"),
    ("%%sora jobs\nbody", "no cell body"),
])
def test_usage_errors_send_nothing(ip: Session, paid: RunningEmulator, source: str,
                                   words: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert words in ip.fails(source)
    assert paid.stats()["posts"] == 0 and not ip.outputs
    shown = capsys.readouterr()
    assert "UsageError: " in shown.err and "Traceback" not in shown.out + shown.err


def test_budget_is_checked_before_sending(ip: Session, paid: RunningEmulator,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_BUDGET_USD", "0.50")
    assert "budget" in ip.fails("%sora a costly whale")
    monkeypatch.setenv("SORA_BUDGET_USD", "2.00")
    message = ip.fails("%sora -n 3 three costly whales")
    assert "3 new × $0.90 = $2.70" in message and "nothing was sent" in message
    assert paid.stats()["posts"] == 0
    monkeypatch.setenv("SORA_BUDGET_USD", "oops")
    assert "SORA_BUDGET_USD" in ip.fails("%sora a whale")


# -- sub-commands -------------------------------------------------------------------------------


def test_jobs_show_and_cost(ip: Session, paid: RunningEmulator) -> None:
    ip.run("%sora --wait -o job <b>bold</b> penguin")
    job = ip.shell.user_ns["job"]
    ip.run("%sora jobs")
    table = ip.outputs[-1]["data"]["text/html"]
    assert "sora-jobs" in table and job.id in table and "&lt;b&gt;bold" in table
    assert f"sora_videos/{video_file_name(job.id)}" in table and "$0.90" in table
    ip.run("%sora jobs -n 1")
    assert ip.outputs[-1]["data"]["text/html"].count("<tr>") == 2  # head + one row
    ip.run(f"%sora show {job.id[:10]}")
    assert video_srcs(ip.final()["text/html"]) == [f"sora_videos/{video_file_name(job.id)}"]
    ip.run(f"%sora show {job.id} --embed")
    assert video_srcs(ip.final()["text/html"])[0].startswith("data:video/mp4")
    ip.run("%sora cost")
    cost = ip.outputs[-1]["data"]
    assert "This session: <b>$0.90</b>" in cost["text/html"]
    assert "(1 paid jobs)" in cost["text/plain"] and VIP_KEY not in ip.all_text()


def test_jobs_and_cost_on_the_emulator(ip: Session) -> None:
    ip.run("%sora jobs")
    assert "No jobs yet." in ip.outputs[-1]["data"]["text/html"]
    ip.run("%sora --wait a free fish")
    ip.run("%sora jobs")
    assert "local emulator — no charge" in ip.outputs[-1]["data"]["text/html"]
    ip.run("%sora cost")
    assert "local emulator — no charge" in ip.outputs[-1]["data"]["text/html"]


def test_resume_after_a_restart(ip: Session, paid: RunningEmulator,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    ip.run("%sora resume")
    assert "Nothing to resume" in ip.outputs[-1]["data"]["text/plain"]
    ip.run("%sora -o job an interrupted eagle")
    job = ip.shell.user_ns["job"]
    wait_until(lambda: job.id is not None)
    studio_module.default_studio().close()           # the kernel "restarts"
    fresh = studio_module.Studio()
    monkeypatch.setattr(studio_module, "_default", fresh)
    try:
        ip.run("%sora resume")
        (resumed,) = fresh.jobs()
        assert resumed.id == job.id and resumed is not job
        resumed.wait(timeout=20)
        final = ip.settled_slot()
        assert video_srcs(final["text/html"]) == [f"sora_videos/{video_file_name(job.id)}"]
        assert paid.stats()["posts"] == 1  # re-attached, never resubmitted
    finally:
        fresh.close()


# -- the first hour (issue 12) ------------------------------------------------------------------


def test_cached_single_rerun_says_reused_on_the_emulator(ip: Session) -> None:
    ip.run("%sora --wait -o job a lonely lighthouse")
    first = ip.final()["text/html"]
    assert "reused — no new charge" not in first and "local emulator — no charge" in first
    ip.run("%sora --wait -o again a lonely lighthouse")
    assert ip.shell.user_ns["again"] is ip.shell.user_ns["job"]
    html = ip.final()["text/html"]
    assert "reused — no new charge" in html and "sora-reused" in html
    assert "reused — no new charge" in ip.final()["text/plain"]
    ip.run("%sora --wait --force -o fresh a lonely lighthouse")
    assert "reused" not in ip.final()["text/html"]
    ip.run(f"%sora show {ip.shell.user_ns['job'].id}")     # showing is not a reuse
    assert "reused" not in ip.final()["text/html"]


def test_three_variations_one_badge_no_hole(ip: Session) -> None:
    ip.magics.live_widgets = True
    ip.run("%sora -n 3 -o jobs three herons")
    root = ip.widget(1)                                   # 0: the cost line
    (grid,) = [c for c in root.children if "sora-running" in c._dom_classes]
    assert grid.layout.grid_template_columns == "repeat(3, minmax(0, 1fr))"
    assert said_free(ip.outputs[0]["data"]) == (1, 1)     # the quote says it, nothing else
    assert said_free(ip.outputs[1]["data"]) == (0, None)   # None: a live view's text
    for job in ip.shell.user_ns["jobs"]:
        job.wait(timeout=20)
    final = ip.settled_slot(0)["text/html"]
    assert "local emulator" not in final
    assert "repeat(3, minmax(0, 1fr))" in final and len(video_srcs(final)) == 3


FREE = "local emulator — no charge"
#: Every kind of output that shows several jobs (and the single job), as a user types it;
#: each leaves what it made in ``out``.
BADGE_CELLS = {
    "one": "%sora -o out one lone owl",
    "variations": "%sora -n 3 -o out three owls",
    "sweep": "%sora -o out a {red|blue} owl",
    "ratios": "%sora -o out --ratio 16:9,9:16 an owl",
    "storyboard": "%%sora --storyboard -o out\nan owl wakes\n\nthe owl flies off",
    "sw.grid": "out = [sw.generate(f'a {c} owl') for c in ('red', 'blue')]\nsw.grid(out)",
    "sw.sweep": "out = sw.sweep('a {red|blue} owl')\nout",
    "sw.storyboard": "out = sw.storyboard(['an owl wakes', 'the owl flies off'])\nout",
}


def said_free(data: dict[str, Any]) -> tuple[int, int | None]:
    """How often one display bundle says "local emulator — no charge": (in its HTML, in its
    text). A live ipywidgets view counts the HTML of every widget in it; its text only says
    "live progress" (None)."""
    view = data.get("application/vnd.jupyter.widget-view+json")
    if view is None:
        return data.get("text/html", "").count(FREE), data.get("text/plain", "").count(FREE)
    from ipywidgets.widgets.widget import _instances

    found, todo = 0, [_instances[view["model_id"]]]
    while todo:
        widget = todo.pop()
        todo += getattr(widget, "children", ())
        value = getattr(widget, "value", None)
        found += value.count(FREE) if isinstance(value, str) else 0
    return found, None


def cell_bundles(ip: Session, start: int) -> list[dict[str, Any]]:
    """What the cell shows now: each output without a display id, and each display id's
    latest state (the live slot, or what replaced it)."""
    plain: list[dict[str, Any]] = []
    slots: dict[str, dict[str, Any]] = {}
    for out in ip.outputs[start:]:
        display_id = (out.get("transient") or {}).get("display_id")
        if display_id:
            slots[display_id] = out["data"]
        else:
            plain.append(out["data"])
    return plain + list(slots.values())


def assert_said_once(bundles: list[dict[str, Any]]) -> None:
    counts = [said_free(b) for b in bundles]
    assert sum(html for html, _ in counts) == 1, counts
    texts = [text for _, text in counts if text is not None]
    assert not texts or sum(texts) == 1, counts


@pytest.mark.parametrize("widgets", [True, False], ids=["widgets", "plain"])
@pytest.mark.parametrize("cell", list(BADGE_CELLS))
def test_a_cell_says_local_emulator_once(ip: Session, cell: str, widgets: bool) -> None:
    """Issue 22: "local emulator — no charge" once per cell output — not in the quote and
    again above the grid, nor on every tile or status line — while the jobs run and in what
    replaces the live view."""
    import sora_widgets as sw

    ip.magics.live_widgets = widgets
    ip.shell.user_ns["sw"] = sw
    start = len(ip.outputs)
    result = ip.run(BADGE_CELLS[cell])
    assert result.error_in_exec is None, result.error_in_exec
    assert_said_once(cell_bundles(ip, start))                 # live
    # Not job.wait(): in a kernel its hook would show a progress view of its own.
    wait_until(lambda: all(_is_final(b) for b in cell_bundles(ip, start)
                           if "sora-cost" not in b.get("text/html", "")), 30)
    final = cell_bundles(ip, start)
    assert_said_once(final)                                   # and what replaced it
    assert sum(len(video_srcs(b.get("text/html", ""))) for b in final) >= (
        1 if cell == "one" else 2)


def test_live_status_ticks_every_second_and_estimates(ip: Session,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_EMULATOR_TIME_SCALE", "0.3")     # 18-54 s: stays running here
    ip.magics.live_widgets = True
    ip.run("%sora -o job a slow glacier")
    job = ip.shell.user_ns["job"]
    status, _ = live_parts(ip.widget())
    seen: list[str] = []
    ticked = threading.Event()

    def record(change: dict[str, Any]) -> None:
        seen.append(change["new"])
        if len({re.sub(r"<[^>]+>", "", v) for v in seen}) >= 3:
            ticked.set()

    status.observe(record, names="value")
    try:
        assert ticked.wait(8), f"the status did not move on its own: {seen}"
        assert job.status in ("queued", "in_progress", "submitting")   # no poll needed
        texts = " ".join(seen)
        assert "estimating…" in texts or "left" in texts
        if job.eta_seconds is None:
            assert "estimating…" in status.value
    finally:
        job.cancel()


def test_wait_shows_progress_then_a_line(ip: Session) -> None:
    import sora_widgets as sw

    ip.magics.live_widgets = True
    ip.shell.user_ns["sw"] = sw
    ip.run("job = sw.generate('a waiting walrus')")
    before = len(ip.slots())
    result = ip.run("job.wait(timeout=20)")
    assert result.error_in_exec is None
    slots = list(ip.slots().values())
    assert len(slots) == before + 1
    shown, *updates = slots[-1]
    assert "application/vnd.jupyter.widget-view+json" in shown["data"]   # live progress
    assert "waited" in updates[-1]["data"]["text/plain"] and "completed" in \
        updates[-1]["data"]["text/plain"]
    # The magic's own --wait shows its view once: the hook stays quiet inside it.
    count = len(ip.slots())
    ip.run("%sora --wait a second walrus")
    assert len(ip.slots()) == count + 1


def test_sw_grid_shows_jobs_side_by_side(ip: Session) -> None:
    import sora_widgets as sw

    ip.shell.user_ns["sw"] = sw
    ip.run("jobs = [sw.generate(f'a fox, {s} look') for s in ('golden', 'noir', 'ink')]\n"
           "sw.grid(jobs, wait=True)")
    final = ip.final()["text/html"]
    srcs = video_srcs(final)
    assert len(srcs) == 3 and all((Path.cwd() / src).is_file() for src in srcs)
    assert "repeat(3, minmax(0, 1fr))" in final
    assert final.count("local emulator — no charge") == 1
    assert "golden" in final and "noir" in final and "reused" not in final
    ip.run("again = [sw.generate('a fox, noir look')]\nsw.grid(again + jobs[:1], wait=True)")
    assert ip.final()["text/html"].count("reused — no new charge") == 1   # the cached one
    assert sw.grid(ip.shell.user_ns["jobs"])._repr_html_().count("<video") == 3
    with pytest.raises(ValueError):
        sw.grid([])


def test_jobs_listing_writes_no_file_and_shows_inline_stills(ip: Session,
                                                              paid: RunningEmulator) -> None:
    """Issue 11: history views start no server and write no file (issue 13's thumbnails are
    inline stills, not posters copied next to the notebook)."""
    ip.run("%sora --wait -o job a heron in the reeds")
    before = sorted(p.relative_to(Path.cwd()) for p in Path.cwd().rglob("*"))
    ip.run("%sora jobs")
    table = ip.outputs[-1]["data"]["text/html"]
    assert sorted(p.relative_to(Path.cwd()) for p in Path.cwd().rglob("*")) == before
    assert "class='sora-thumb' src='data:image/jpeg;base64," in table
