"""Issue 23 above the wire: the router catalogue, model options (seed, last frame,
resolution, audio) refused before sending where a model lacks them, retirement (refused
with 0 POSTs after the day, warned within 30 days), the billed cost in the journal,
sw.models() / %sora models / sora-widgets models, seed axes, remix/extend refusals.

The paid path runs against a real emulator over loopback (key + base URL). The router
style's wire is helper F's; here its requests are built and checked, never sent.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import sora_widgets as sw
from sora_widgets.core.catalog import catalogue, use_today
from sora_widgets.core.errors import ValidationError
from sora_widgets.core.models import VideoRequest
from sora_widgets.core.money import billed_differs, billing_text, charged_price
from sora_widgets.emulator import EmulatorConfig, RunningEmulator, start_emulator
from sora_widgets.engine.steps import billed_of
from sora_widgets.journal import Journal, SqliteJournal, open_journal
from sora_widgets.studio import studio as studio_module
from sora_widgets.studio.sweeps import SEED_AXIS, plan
from sora_widgets.ui import cli

from .conftest import TEST_TIME_SCALE, VIP_KEY
from .pg_fixtures import pg_server, pg_url  # noqa: F401  (fixtures)
from .test_magic import Session, ip, paid, shell  # noqa: F401  (fixtures)

AFTER = date(2026, 10, 1)        # OpenAI's sora-2* were retired on 2026-09-24
WITHIN = date(2026, 9, 1)        # 23 days before


@pytest.fixture
def openai_relay(studio: studio_module.Studio,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    """A paid OpenAI-shaped relay (key + base URL) on loopback."""
    config = EmulatorConfig(time_scale=TEST_TIME_SCALE, seed=3)
    config.update({"style": "openai"})
    with start_emulator(config) as emu:
        monkeypatch.setenv("SORA_API_KEY", VIP_KEY)
        monkeypatch.setenv("SORA_BASE_URL", emu.base_url)
        monkeypatch.setenv("SORA_POLL_SCALE", str(TEST_TIME_SCALE))
        monkeypatch.setenv("SORA_API_STYLE", "openai")
        yield emu


def posts(emu: RunningEmulator) -> int:
    return int(emu.stats()["posts"])


# -- the catalogue ----------------------------------------------------------------------------


def test_router_catalogue_states_models_options_and_prices(home: Path) -> None:
    book = catalogue()
    veo = book.entry("router", "google/veo-3.1")
    assert (veo.seconds, veo.resolutions, veo.seed, veo.audio, veo.last_frame) == (
        (4, 6, 8), ("720p", "1080p"), True, True, True)
    sora = book.entry("router", "openai/sora-2")
    assert not sora.seed and not sora.last_frame and sora.retires is None
    pro = book.entry("router", "openai/sora-2-pro")
    assert pro.price.of("1080p", 8) == 4.00 and pro.price.of("720p", 8) == 2.40
    assert book.entry("openai", "sora-2").retires == date(2026, 9, 24)
    assert book.entry("openai", "sora-2-pro").retires == date(2026, 9, 24)
    assert book.entry("artifex", "sora-2").retires is None     # the seed's relay still sells it


def test_options_are_refused_where_the_model_takes_none(home: Path) -> None:
    with pytest.raises(ValidationError, match="takes no seed") as seed:
        VideoRequest.create("a fox", seed=7, style="artifex")
    assert seed.value.field == "seed" and "google/veo-3.1" not in str(seed.value)
    with pytest.raises(ValidationError, match=r"takes no seed.*google/veo-3\.1"):
        VideoRequest.create("a fox", model="openai/sora-2", seed=7, style="router")
    with pytest.raises(ValidationError, match="last-frame"):
        VideoRequest.create("a fox", last_frame="https://x.test/a.png", style="openai")
    with pytest.raises(ValidationError, match="720p"):
        VideoRequest.create("a fox", model="openai/sora-2", resolution="1080p", style="router")
    with pytest.raises(ValidationError, match="audio switch"):
        VideoRequest.create("a fox", model="openai/sora-2", generate_audio=False,
                            style="router")
    with pytest.raises(ValidationError, match="whole number"):
        VideoRequest.create("a fox", model="google/veo-3.1", seed=True, style="router")


def test_a_seed_is_part_of_the_identity_only_when_given(home: Path) -> None:
    def veo(**kw: Any) -> VideoRequest:
        return VideoRequest.create("a fox", model="google/veo-3.1", style="router", seconds=8,
                                   **kw)

    assert veo(seed=1).fingerprint() == veo(seed=1).fingerprint()
    assert veo(seed=1).fingerprint() != veo(seed=2).fingerprint()
    assert veo().fingerprint() != veo(seed=1).fingerprint()
    assert "seed" not in veo().to_json()          # journals written before seeds still match
    back = VideoRequest.from_json(veo(seed=9, resolution="1080p", generate_audio=False,
                                      last_frame="https://x.test/z.png").to_json())
    assert (back.seed, back.resolution, back.generate_audio, back.last_frame) == (
        9, "1080p", False, "https://x.test/z.png")
    assert not back.tainted
    assert VideoRequest.from_json({**veo().to_json(), "seed": "7"}).tainted


def test_a_seed_list_is_a_sweep_axis(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = home.parent / "seeded.json"
    path.write_text(json.dumps({"artifex": {"sora-2": {"seed": True}}}))
    monkeypatch.setenv("SORA_CATALOG", str(path))
    made = plan("a {red|blue} fox", model="sora-2", seed=[1, 2, 3])
    assert [a.name for a in made.axes] == ["{red|blue}", SEED_AXIS]
    assert [r.seed for r in made.requests] == [1, 2, 3, 1, 2, 3]
    assert made.values[4] == ("blue", "2")
    monkeypatch.delenv("SORA_CATALOG")
    with pytest.raises(ValidationError, match="takes no seed"):
        plan("a fox", model="sora-2", seed=[1, 2])


# -- retirement -------------------------------------------------------------------------------


def test_a_retired_model_is_refused_with_no_post(openai_relay: RunningEmulator) -> None:
    with use_today(AFTER):
        for force in (False, True):            # force never pays a dead model
            with pytest.raises(ValidationError) as refused:
                sw.generate("a heron", seconds=4, force=force)
            message = str(refused.value)
            assert "retired on 2026-09-24" in message and "no successor" in message
            assert "nothing was sent" in message
    assert posts(openai_relay) == 0


def test_the_successor_is_named_and_a_catalogue_file_can_revive_it(
        openai_relay: RunningEmulator, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = home.parent / "catalog.json"
    path.write_text(json.dumps({"openai": {"sora-2": {"successor": "sora-3"}}}))
    monkeypatch.setenv("SORA_CATALOG", str(path))
    with use_today(AFTER), pytest.raises(ValidationError, match="successor: sora-3"):
        sw.generate("a heron", seconds=4)
    assert posts(openai_relay) == 0
    path.write_text(json.dumps({"openai": {"sora-2": {"retires": "2027-01-01"}}}))
    with use_today(AFTER):
        job = sw.generate("a heron", seconds=4).wait(timeout=30)
    assert job.status == "completed" and posts(openai_relay) == 1


def test_within_thirty_days_every_quote_says_so(openai_relay: RunningEmulator) -> None:
    request = VideoRequest.create("a heron", seconds=4, style="openai")
    with use_today(WITHIN):
        text = studio_module.default_studio().quote(request).text
    assert "sora-2 on the openai style retires on 2026-09-24, in 23 days" in text
    with use_today(date(2026, 6, 1)):
        assert "retires" not in studio_module.default_studio().quote(request).text
    assert posts(openai_relay) == 0


def test_the_emulator_still_plays_a_retired_model_and_says_so(
        studio: studio_module.Studio, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_API_STYLE", "openai")
    request = VideoRequest.create("a heron", seconds=4, style="openai")
    with use_today(AFTER):
        assert "a paid relay is refused" in studio.quote(request).text
        job = studio.submit(request)[0].wait(timeout=30)
    assert job.status == "completed" and job.emulator


# -- the billed cost --------------------------------------------------------------------------


def test_billing_words_and_the_five_percent_flag() -> None:
    assert billing_text(0.80, 0.84) == "quoted $0.80 · billed $0.84"
    assert not billed_differs(0.80, 0.84)
    assert billed_differs(0.80, 0.90) and "+12% from the quote" in billing_text(0.80, 0.90)
    assert billing_text(0.80, None) == "quoted $0.80"
    assert charged_price(0.80, None) == 0.80 and charged_price(0.80, 0.84) == 0.84
    assert billed_of(None, {"billed_usd": 0.84}) == {"billed_usd": 0.84}
    assert billed_of(0.84, {"billed_usd": 0.84}) == {}
    assert billed_of(None, {"billed_usd": float("nan")}) == {}
    assert billed_of(None, {"billed_usd": True}) == {}


def _paid_row(journal: Journal, price: float, session: str = "s1") -> str:
    request = VideoRequest.create("a fox", style="artifex")
    (claim,) = journal.claim_many(items=[(request, 1, price)], backend="https://relay.test",
                                  emulator=False, session=session, force=True,
                                  limits=sw_limits(), parent_id=None, user="ann", host="h",
                                  new_ids=[uuid.uuid4().hex])
    local_id = claim.created[0].local_id
    journal.update(local_id, charge="charged", phase="settled", relay_status="completed")
    return local_id


def sw_limits() -> Any:
    from sora_widgets.core.money import Limits

    return Limits()


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "journal.sqlite3")
    return str(request.getfixturevalue("pg_url"))


def test_the_journal_records_the_bill_and_spend_settles_to_it(location: str) -> None:
    journal = open_journal(location)
    session = uuid.uuid4().hex
    local_id = _paid_row(journal, 0.80, session)
    assert journal.spend(session).charged_usd == 0.80         # the quote, reserved
    journal.update(local_id, billed_usd=0.84)
    record = journal.get(local_id)
    assert record is not None and record.billed_usd == 0.84 and record.price_usd == 0.80
    assert record.cost_usd == 0.84
    assert journal.spend(session).charged_usd == 0.84         # settled to the bill
    journal.close()


def test_a_schema_3_journal_gains_the_billed_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    journal = SqliteJournal(path)
    local_id = _paid_row(journal, 0.90)
    journal.close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE jobs DROP COLUMN billed_usd")
    db.execute("UPDATE schema_version SET version = 3")
    db.commit()
    db.close()
    again = SqliteJournal(path)
    record = again.get(local_id)
    assert record is not None and record.billed_usd is None and record.cost_usd == 0.90
    again.update(local_id, billed_usd=0.95)
    assert again.spend("s1").charged_usd == 0.95
    assert again.spend_by_user_day()[0]["charged_usd"] == 0.95


# -- listing, remix and extend ---------------------------------------------------------------


def test_models_lists_the_current_style(home: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    rows = sw.models()
    assert [r["model"] for r in rows] == ["sora-2"] and rows[0]["price"] == "$0.90/clip"
    veo = {r["model"]: r for r in sw.models("router")}["google/veo-3.1"]
    assert veo["seed"] and veo["audio"] and veo["resolutions"] == ["720p", "1080p"]
    with use_today(AFTER):
        openai = sw.models("openai")
    assert all(r["retired"] and r["retires"] == "2026-09-24" for r in openai)
    assert cli.main(["models", "--style", "openai"]) == 0
    out = capsys.readouterr().out
    assert "sora-2-pro" in out and "2026-09-24" in out and "remix/extend" in out
    with pytest.raises(ValidationError, match="style"):
        sw.models("nonsense")


def test_remix_and_extend_are_refused_before_sending_where_there_is_no_endpoint(
        relay: RunningEmulator) -> None:
    job = sw.generate("a paper boat").wait(timeout=30)
    before = posts(relay)
    with pytest.raises(ValidationError, match=r"no remix endpoint.*continue_with"):
        job.remix("a paper boat, at night")
    with pytest.raises(ValidationError, match=r"no extend endpoint.*continue_with"):
        job.extend("the boat sails on", seconds=12)
    assert posts(relay) == before


def test_a_remix_request_keeps_its_parent_task_in_its_identity(home: Path) -> None:
    parent = VideoRequest.create("a heron", seconds=8, style="openai")
    remix = parent.follow_up("remix", "video_1", "a heron at dusk")
    assert (remix.source_task, remix.operation, remix.duration) == ("video_1", "remix", 8)
    other = parent.follow_up("remix", "video_2", "a heron at dusk")
    assert remix.fingerprint() != other.fingerprint()
    extension = parent.follow_up("extend", "video_1", "it flies off", seconds=4)
    assert extension.duration == 4 and extension.fingerprint() != remix.fingerprint()
    assert VideoRequest.from_json(remix.to_json()) == remix
    assert VideoRequest.from_json({**remix.to_json(), "operation": "delete"}).tainted


# -- the magic --------------------------------------------------------------------------------


def test_magic_models_seed_and_remix(ip: Session, paid: RunningEmulator,  # noqa: F811
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ip.run("%sora models")
    assert "sora-2" in ip.all_text() and "$0.90/clip" in ip.all_text()
    assert "takes no seed" in ip.fails("%sora a paper boat --seed {1|2|3}")
    assert "takes no seed" in ip.fails("%sora a paper boat --seed 7")
    assert "whole numbers" in ip.fails("%sora a paper boat --seed seven")
    assert posts(paid) == 0
    job = sw.generate("a paper boat").wait(timeout=30)
    before = posts(paid)
    message = ip.fails(f'%sora remix {job.local_id} "a paper boat at night"')
    assert "no remix endpoint" in message and "%sora continue ID" in message
    assert "no extend endpoint" in ip.fails(
        f'%sora extend {job.local_id} "it sails on" --seconds 12')
    assert posts(paid) == before


def test_magic_seed_alternatives_make_a_seed_axis(ip: Session,  # noqa: F811
                                                   studio: studio_module.Studio,
                                                   home: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """On a catalogue whose model takes a seed (a user file over the seed's relay), a
    --seed list is one take per seed; the same seed again is reused free."""
    path = home.parent / "seeded.json"
    path.write_text(json.dumps({"artifex": {"sora-2": {"seed": True}}}))
    monkeypatch.setenv("SORA_CATALOG", str(path))
    ip.run('%sora "a red kite" --seed {1|2} --wait -o kites')
    kites = ip.shell.user_ns["kites"]
    assert [job.request.seed for job in kites] == [1, 2]
    assert kites.values(1) == {"seed": "2"}
    again = sw.generate("a red kite", seed=2)
    assert again.reused and again.local_id == kites[1].local_id
    assert not sw.generate("a red kite", seed=3).reused


def test_lineage_shows_the_seed(home: Path) -> None:
    from sora_widgets.studio.lineage import provenance

    take = VideoRequest.create("a fox", model="google/veo-3.1", style="router", seconds=8,
                               seed=42, resolution="1080p", generate_audio=False)
    assert provenance(take) == "seed 42 · 1080p · no audio"
    remix = VideoRequest.create("a heron", style="openai").follow_up("remix", "video_1", "x")
    assert provenance(remix) == "remixed from video_1"
    assert provenance(VideoRequest.create("a fox", style="artifex")) == ""
