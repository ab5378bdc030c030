"""What the artifex and openai relay styles bring (issue 15), against the emulator speaking
one of them with SORA_API_STYLE set to match: the catalogue's limits refused before sending,
status synonyms and a word never seen before through the engine, a relay of the other style
(400, nothing charged), the poll hint as a floor, the embedded emulator in each style, the
magic's sizes and the panel's choices. The end-to-end path itself (submit, poll, download,
cache, budget, resume, magic, CLI) runs in all three styles in ``test_three_styles.py``.

Every wait has a deadline; nothing sleeps and hopes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import sora_widgets as sw
from sora_widgets.core.errors import BadRequestError, ValidationError
from sora_widgets.core.lifecycle import Charge, RelayStatus
from sora_widgets.core.models import VideoRequest
from sora_widgets.engine.job import Job
from sora_widgets.studio import studio as studio_module
from sora_widgets.ui.magic.magics import SoraMagics
from sora_widgets.ui.widget import SoraWidget

from .conftest import TEST_TIME_SCALE, VIP_KEY
from .doubles import wait_until
from .doubles.styles import Styled, styled_relay

#: The two styles this file is about (the router's own tests: test_router_wire.py,
#: test_emulator_router.py, test_models_end_to_end.py).
STYLES = ("artifex", "openai")


@pytest.fixture(params=STYLES)
def styled(request: pytest.FixtureRequest, studio: studio_module.Studio,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Styled]:
    """The conftest's relay of each style, in this file's two styles only (it overrides it)."""
    with styled_relay(str(request.param), monkeypatch, key=VIP_KEY,
                      time_scale=TEST_TIME_SCALE) as relay:
        yield relay


# -- the catalogue's limits -----------------------------------------------------------------


def test_outside_the_catalogue_is_refused_with_zero_posts(styled: Styled) -> None:
    bad: dict[str, list[dict[str, Any]]] = {
        "artifex": [{"seconds": 8}, {"size": "1280x720"}, {"model": "sora-2-pro"}],
        "openai": [{"seconds": 10}, {"size": "1792x1024"},
                   {"model": "sora-2-pro", "size": "1920x1080"}]}
    for kwargs in bad[styled.style]:
        with pytest.raises(ValidationError) as info:
            sw.generate("a kite", **kwargs)
        assert "nothing was sent" in str(info.value)
    assert styled.posts() == 0 and sw.jobs() == []


def test_quote_for_sora_2_pro_8_s_at_1792x1024(styled: Styled,
                                               studio: studio_module.Studio) -> None:
    if styled.style == "artifex":
        with pytest.raises(ValidationError, match="sora-2"):
            VideoRequest.create("x", model="sora-2-pro", size="1792x1024", seconds=8)
        return
    request = VideoRequest.create("a dune sea", model="sora-2-pro", size="1792x1024",
                                  seconds=8)
    quote = studio.quote(request)
    assert (quote.new, quote.price_usd, quote.new_usd) == (1, 4.00, 4.00)   # 8 s x $0.50
    assert "$4.00" in quote.text
    job = studio.submit(request)[0].wait(timeout=30)
    assert job.cost_usd == 4.00 and sw.spend()["session"].charged_usd == 4.00
    task = styled.emu.task(str(job.id))
    assert task is not None and (task.model, task.size, task.duration) == (
        "sora-2-pro", "1792x1024", 8)


# -- the engine meets the style's words -----------------------------------------------------


def test_synonyms_through_the_engine(styled: Styled) -> None:
    """Every gateway word answered for a whole job's life, in each style."""
    rounds = [{"queued": "pending", "in_progress": "processing", "completed": "succeeded",
               "failed": "error"},
              {"queued": "submitted", "in_progress": "running", "completed": "success",
               "failed": "cancelled"},
              {"completed": "finished", "failed": "expired"}]
    seen: set[str] = set()
    for number, words in enumerate(rounds):
        styled.emu.config.status_synonyms = dict(words)
        jobs = []
        for rate in (0.0, 1.0):
            styled.emu.config.failure_rate = rate      # read when the task is created
            job = sw.generate(f"round {number}, failure rate {rate}")
            job.observe(lambda change: seen.add(str(change["new"])), names="relay_status")
            wait_until(lambda: job.id is not None, 10)   # noqa: B023 (waited for right here)
            jobs.append(job)
        good, bad = jobs
        assert good.wait(timeout=30).status == "completed"
        with pytest.raises(sw.JobFailed):
            bad.wait(timeout=30)
        assert bad.status == "failed" and bad.charge == Charge.CHARGED
        assert good.relay_status == words["completed"] and bad.relay_status == words["failed"]
    every = {w for r in rounds for w in r.values()}
    assert every <= seen, every - seen


def test_a_word_never_seen_is_surfaced_not_guessed(styled: Styled) -> None:
    styled.emu.config.mystery_status = "moderating"
    styled.emu.config.mystery_answers = 2
    notices: list[str] = []
    job = sw.generate("a fox at the edge of the wood")
    job.observe(lambda change: notices.append(str(change["new"])), names="notice")
    wait_until(lambda: job.relay_status == "moderating", 15)
    assert job.status in ("queued", "submitting") and job.state.relay_status in (
        None, RelayStatus.QUEUED)
    assert job.wait(timeout=30).status == "completed"
    assert any("moderating" in n and "not a status this package knows" in n for n in notices)


def test_a_relay_of_the_other_style_refuses_and_nothing_is_charged(
        styled: Styled, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_API_STYLE", styled.other)       # misconfigured: wrong style
    job = sw.generate("spoken in the wrong dialect")
    with pytest.raises(BadRequestError) as info:
        job.wait(timeout=30)
    assert info.value.status_code == 400 and "Unknown parameter" in str(info.value)
    assert job.charge == Charge.NONE and job.cost_usd == 0.0
    assert styled.emu.stats()["tasks_created"] == 0
    assert sw.spend()["all_time"].worst_case_usd == 0.0


def test_the_poll_hint_is_a_floor(styled: Styled) -> None:
    styled.emu.config.poll_hint_ms = 250        # far above the schedule's first steps here
    job = sw.generate("a patient poller").wait(timeout=30)
    stats = styled.emu.stats()["tasks"][job.id]
    times = [stats["created_at"], *stats["get_times"]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) >= 2 and min(gaps) >= 0.25, gaps


def test_a_request_of_another_style_is_not_sent(styled: Styled,
                                                studio: studio_module.Studio) -> None:
    foreign = VideoRequest.create("x", style=styled.other)
    for call in (lambda: studio.submit(foreign), lambda: studio.quote(foreign)):
        with pytest.raises(ValidationError, match="style"):
            call()
    assert styled.posts() == 0


# -- no key: the embedded emulator speaks the style too -------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_embedded_emulator_in_each_style(studio: studio_module.Studio, style: str,
                                         monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("SORA_API_STYLE", style)
    job = sw.generate("free practice", aspect_ratio="9:16").wait(timeout=30)
    assert job.emulator and job.cost_usd == 0.0 and job.local_path is not None
    assert str(job.id).startswith("video_" if style == "openai" else "v_")
    assert job.request.style == style
    folder = "emulator" if style == "artifex" else "emulator-openai"
    assert (home / folder / "tasks" / f"{job.id}.json").is_file()


def test_a_studio_argument_sets_its_own_style(home: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_API_STYLE", "artifex")
    own = studio_module.Studio(api_style="openai")
    try:
        job = own.generate("a studio of its own", seconds=8).wait(timeout=30)
        assert str(job.id).startswith("video_") and job.request.seconds == 8
        assert own.style() == "openai" and studio_module.Studio().style() == "artifex"
    finally:
        own.close()
    with pytest.raises(ValidationError, match="artifex, openai"):
        studio_module.Studio(api_style="grpc")


# -- the magic ------------------------------------------------------------------------------


@pytest.fixture
def shell(studio: studio_module.Studio, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "sora_widgets")
    monkeypatch.setattr(ip, "display_pub",
                        CapturingDisplayPublisher())  # type: ignore[no-untyped-call]
    magics = ip.magics_manager.registry["SoraMagics"]
    assert isinstance(magics, SoraMagics)
    monkeypatch.setattr(magics, "live_widgets", False)
    yield ip
    magics.api_style = ""
    ip.user_ns.pop("job", None)


def run(shell: InteractiveShell, source: str) -> Any:
    return shell.run_cell(source, store_history=False)  # type: ignore[no-untyped-call]


def magic_job(shell: InteractiveShell, line: str) -> Job:
    result = run(shell, f"%sora --wait -o job {line}")
    assert result.error_in_exec is None, result.error_in_exec
    job = shell.user_ns["job"]
    assert isinstance(job, Job)
    return job


def magic_error(shell: InteractiveShell, line: str) -> str:
    result = run(shell, f"%sora {line}")
    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    return str(result.error_in_exec)


def test_magic_sizes_in_each_style(styled: Styled, shell: InteractiveShell) -> None:
    """A size where the style takes one (it sets the ratio), refused where it does not."""
    if styled.style == "openai":
        job = magic_job(shell, '"a paper boat" --seconds 8 --size 720x1280')
        assert (job.request.seconds, job.request.size, job.aspect_ratio) == (8, "720x1280",
                                                                            "9:16")
        assert job.cost_usd == 0.80 and job.status == "completed"
        clash = magic_error(shell, "a boat --size 720x1280 --ratio 16:9")
        assert "aspect_ratio" in clash and "720x1280" in clash
    else:
        assert "aspect_ratio" in magic_error(shell, "a paper boat --size 1280x720")
    assert styled.posts() == (1 if styled.style == "openai" else 0)


def test_config_api_style_overrides_the_environment(styled: Styled,
                                                    shell: InteractiveShell,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_API_STYLE", styled.other)
    run(shell, f'%config SoraMagics.api_style = "{styled.style}"')
    job = magic_job(shell, "configured in the notebook")
    assert job.request.style == styled.style and job.status == "completed"
    run(shell, '%config SoraMagics.api_style = "grpc"')
    assert shell.magics_manager.registry["SoraMagics"].api_style == styled.style  # refused


# -- the panel ------------------------------------------------------------------------------


@pytest.fixture
def panel(styled: Styled) -> Iterator[SoraWidget]:
    made = SoraWidget()
    yield made
    made.close()


def test_panel_offers_the_style_choices(styled: Styled, panel: SoraWidget) -> None:
    lengths = [value for value, _ in panel.choices["seconds"]]
    if styled.style == "artifex":                # a 12-s-only relay shows no length choice
        assert lengths == [] and panel.seconds == 12    # an empty list: hidden
        assert panel.choices["sizes"] == []
        assert panel.generate_label == "Generate · $0.90"
    else:
        assert lengths == [4, 8, 12]
        assert panel.choices["sizes"] == []                    # sora-2: one size per ratio
        panel.seconds = 8
    panel.prompt = "a kite above the cliffs"
    if styled.style == "openai":
        assert panel.generate_label == "Generate · $0.80"
    panel.generate()
    job = panel.cards[0].job.wait(timeout=30)
    assert job.status == "completed" and styled.posts() == 1
    assert job.request.seconds == (8 if styled.style == "openai" else 12)
    assert job.cost_usd == (0.80 if styled.style == "openai" else 0.90)


def test_panel_offers_sizes_for_sora_2_pro(styled: Styled,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_MODEL", "sora-2-pro")
    made = SoraWidget(prompt="a glacier calving")
    try:
        sizes = [value for value, _ in made.choices["sizes"]]
        if styled.style == "artifex":         # not in the seed's catalogue: said, not sent
            assert made.generate_disabled and "sora-2-pro" in made.reason
            return
        assert sizes == ["", "1280x720", "1792x1024"]
        made.size = "1792x1024"
        assert made.generate_label == "Generate · $2.00"      # 4 s x $0.50
        made.aspect_ratio = "9:16"
        assert [v for v, _ in made.choices["sizes"]] == ["", "720x1280", "1024x1792"]
        assert made.size == ""                                 # the wide size went away
        assert made.generate_label == "Generate · $1.20"      # 4 s x $0.30
    finally:
        made.close()
    assert styled.posts() == 0
