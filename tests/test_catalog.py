"""The model catalogue: data per style and model, one price rule, refusals that name the
allowed values, a user file (JSON or TOML) and SORA_PRICE_USD over it.

The money checks go through ``Studio`` against a real emulator: a request outside the
catalogue is refused with 0 POSTs, and the quote, the budget and the recorded spend all
use :func:`sora_widgets.core.catalog.price_of`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import sora_widgets as sw
from sora_widgets.core.catalog import BUILTIN, catalogue, price_of
from sora_widgets.core.errors import BudgetExceededError, ValidationError
from sora_widgets.core.models import VideoRequest
from sora_widgets.core.settings import settings
from sora_widgets.emulator import EmulatorConfig, RunningEmulator, start_emulator
from sora_widgets.journal import SqliteJournal
from sora_widgets.studio import studio as studio_module

from .conftest import TEST_TIME_SCALE, VIP_KEY


def rule(style: str, model: str, size: str, seconds: int) -> float:
    """The price the catalogue's data states (computed here from BUILTIN, not the code)."""
    price = BUILTIN[style][model]["price"]
    unit = float(price.get("by_size", {}).get(size, price["usd"]))
    return round(unit * (seconds if price["per"] == "second" else 1), 2)


# -- the data and the rule ------------------------------------------------------------------


def test_builtin_catalogue_states_the_known_relays(home: Path) -> None:
    seed = catalogue().entry("artifex", "sora-2")
    assert (seed.shapes, seed.seconds, seed.price.per, seed.price.usd) == (
        ("16:9", "9:16"), (12,), "clip", 0.90)
    pro = catalogue().entry("openai", "sora-2-pro")
    assert set(pro.shapes) == {"1280x720", "720x1280", "1792x1024", "1024x1792"}
    assert pro.seconds == (4, 8, 12) and pro.price.per == "second"
    assert pro.sizes_for("16:9") == ("1280x720", "1792x1024")
    assert catalogue().entry("openai", "sora-2").sizes_for("9:16") == ("720x1280",)
    # A dated snapshot is checked and priced as its model.
    assert catalogue().entry("openai", "sora-2-pro-2025-10-06") is pro


@pytest.mark.parametrize(("style", "model", "size", "seconds", "expected"), [
    ("artifex", "sora-2", None, 12, 0.90),
    ("openai", "sora-2", "1280x720", 4, 0.40),
    ("openai", "sora-2", "720x1280", 12, 1.20),
    ("openai", "sora-2-pro", "1280x720", 8, 2.40),
    ("openai", "sora-2-pro", "1792x1024", 8, 4.00),
    ("openai", "sora-2-pro", "1024x1792", 12, 6.00),
])
def test_price_rule_per_clip_and_per_second(home: Path, style: str, model: str,
                                            size: str | None, seconds: int,
                                            expected: float) -> None:
    request = VideoRequest.create("a kite", style=style, model=model, size=size,
                                  seconds=seconds)
    assert price_of(request) == expected
    assert price_of(request) == rule(style, model, size or "16:9", seconds)


def test_sora_price_usd_is_a_flat_price_per_clip_for_every_model(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_PRICE_USD", "0.55")
    for style, model, size in (("artifex", "sora-2", None),
                               ("openai", "sora-2-pro", "1792x1024")):
        assert price_of(VideoRequest.create("x", style=style, model=model, size=size)) == 0.55


# -- refusals name the allowed values -------------------------------------------------------


@pytest.mark.parametrize(("style", "kwargs", "field", "named"), [
    ("artifex", {"seconds": 8}, "seconds", ("12",)),
    ("artifex", {"duration": 10}, "duration", ("12",)),
    ("artifex", {"size": "1280x720"}, "size", ("aspect_ratio", "16:9", "9:16")),
    ("artifex", {"model": "sora-2-pro"}, "model", ("sora-2",)),
    ("openai", {"seconds": 10}, "seconds", ("4", "8", "12")),
    ("openai", {"seconds": "6"}, "seconds", ("4, 8, 12",)),
    ("openai", {"size": "1792x1024"}, "size", ("1280x720", "720x1280")),
    ("openai", {"model": "sora-2-pro", "size": "1920x1080"}, "size",
     ("1280x720", "720x1280", "1792x1024", "1024x1792")),
    ("openai", {"model": "sora-3"}, "model", ("sora-2", "sora-2-pro")),
    ("openai", {"size": "720x1280", "aspect_ratio": "16:9"}, "aspect_ratio", ("720x1280",)),
    ("openai", {"prompt": None, "image": "https://example.com/a.png"}, "prompt", ("prompt",)),
    ("openai", {"image": ["https://e.com/a.png", "https://e.com/b.png"]}, "image", ("1",)),
    ("openai", {"seconds": 8, "duration": 12}, "seconds", ("disagree",)),
])
def test_outside_the_catalogue_is_refused_naming_the_allowed_values(
        home: Path, style: str, kwargs: dict[str, object], field: str,
        named: tuple[str, ...]) -> None:
    prompt = kwargs.pop("prompt", "a kite")
    with pytest.raises(ValidationError) as info:
        VideoRequest.create(prompt, style=style, **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert all(word in str(info.value) for word in named), str(info.value)


def test_aspect_ratio_maps_to_the_style_size(home: Path) -> None:
    assert VideoRequest.create("x", style="openai", aspect_ratio="9:16").size == "720x1280"
    wide = VideoRequest.create("x", style="openai", model="sora-2-pro", size="1792x1024")
    assert (wide.aspect_ratio, wide.seconds) == ("16:9", 4)      # the style's default length
    seed = VideoRequest.create("x", style="artifex", aspect_ratio="9:16")
    assert (seed.size, seed.duration, seed.seconds) == (None, 12, 12)


def test_fingerprint_counts_style_size_and_seconds(home: Path) -> None:
    base = VideoRequest.create("a kite", style="openai", seconds=8)
    assert base.fingerprint() == VideoRequest.create("a kite ", style="openai",
                                                     seconds="8").fingerprint()
    others = [VideoRequest.create("a kite", style="openai", seconds=4),
              VideoRequest.create("a kite", style="openai", seconds=8, model="sora-2-pro"),
              VideoRequest.create("a kite", style="openai", seconds=8, aspect_ratio="9:16"),
              VideoRequest.create("a kite", style="artifex")]
    prints = {base.fingerprint(), *(r.fingerprint() for r in others)}
    assert len(prints) == 5
    # Round trip through the journal's form, and the seed's form is still 0.1's.
    assert VideoRequest.from_json(base.to_json()) == base
    assert others[-1].to_json() == {"model": "sora-2", "prompt": "a kite",
                                    "aspect_ratio": "16:9", "duration": 12}


# -- the user file --------------------------------------------------------------------------


def test_user_json_file_overrides_a_price_and_adds_a_model(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "catalog.json").write_text(json.dumps({
        "openai": {"sora-2": {"price": {"per": "second", "usd": 0.12}},
                   "veo-3": {"sizes": ["1280x720"], "seconds": [8],
                             "price": {"per": "clip", "usd": 3.2}}},
        "artifex": {"sora-2": {"seconds": [10, 15]}},
    }))
    assert price_of(VideoRequest.create("x", style="openai", seconds=8)) == 0.96
    veo = VideoRequest.create("x", style="openai", model="veo-3")
    assert (veo.size, veo.seconds, price_of(veo)) == ("1280x720", 8, 3.2)
    # Fields not given keep the built-in values; a changed length list moves the default.
    assert catalogue().entry("openai", "sora-2").seconds == (4, 8, 12)
    seed = VideoRequest.create("x", style="artifex")
    assert seed.duration == 10 and price_of(seed) == 0.90
    with pytest.raises(ValidationError, match="10, 15"):
        VideoRequest.create("x", style="artifex", duration=12)
    # SORA_PRICE_USD still wins over the file.
    monkeypatch.setenv("SORA_PRICE_USD", "2")
    assert price_of(veo) == 2.0


def test_user_toml_file_and_sora_catalog_path(home: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "relay.toml"
    path.write_text('[artifex."sora-2-pro"]\nratios = ["16:9"]\nseconds = [12]\n'
                    'price = {per = "clip", usd = 1.5}\n')
    monkeypatch.setenv("SORA_CATALOG", str(path))
    request = VideoRequest.create("x", style="artifex", model="sora-2-pro")
    assert price_of(request) == 1.5
    with pytest.raises(ValidationError, match="16:9"):
        VideoRequest.create("x", style="artifex", model="sora-2-pro", aspect_ratio="9:16")
    assert str(path) in catalogue().source


@pytest.mark.parametrize(("text", "words"), [
    ("{not json", ("not valid JSON",)),
    ('{"gemini": {}}', ("gemini", "artifex, openai")),
    ('{"openai": {"new": {"seconds": [4]}}}', ("new model needs",)),
    ('{"openai": {"sora-2": {"ratios": ["16:9"]}}}', ("takes 'sizes'",)),
    ('{"openai": {"sora-2": {"sizes": ["wide"]}}}', ("not WxH",)),
    ('{"openai": {"sora-2": {"seconds": [4.5]}}}', ("whole seconds",)),
    ('{"openai": {"sora-2": {"price": {"per": "minute", "usd": 1}}}}', ("'per'",)),
    ('{"openai": {"sora-2": {"price": {"per": "clip", "usd": -1}}}}', ("dollars",)),
    ('{"openai": {"sora-2": {"colour": true}}}', ("unknown field", "colour")),
])
def test_a_broken_user_file_is_an_error_naming_the_file(home: Path, text: str,
                                                        words: tuple[str, ...]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "catalog.json").write_text(text)
    with pytest.raises(ValidationError) as info:
        VideoRequest.create("x", style="openai")
    message = str(info.value)
    assert str(home / "catalog.json") in message and all(w in message for w in words), message


def test_the_file_is_read_again_when_it_changes(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "catalog.json"
    request = VideoRequest.create("x", style="artifex")
    for usd in (1.0, 1.25):
        path.write_text(json.dumps({"artifex": {"sora-2": {"price": {"per": "clip",
                                                                       "usd": usd}}}}))
        assert price_of(request) == usd
    path.unlink()
    assert price_of(request) == 0.90 and catalogue().source == "the built-in catalogue"


# -- money through the studio, against a real relay ------------------------------------------


@pytest.fixture(params=["artifex", "openai"])
def styled_relay(request: pytest.FixtureRequest, studio: studio_module.Studio,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    style = str(request.param)
    config = EmulatorConfig(time_scale=TEST_TIME_SCALE, seed=3)
    config.update({"style": style})
    with start_emulator(config) as emu:
        monkeypatch.setenv("SORA_API_KEY", VIP_KEY)
        monkeypatch.setenv("SORA_BASE_URL", emu.base_url)
        monkeypatch.setenv("SORA_POLL_SCALE", str(TEST_TIME_SCALE))
        monkeypatch.setenv("SORA_API_STYLE", style)
        yield emu


def test_outside_the_catalogue_sends_nothing(styled_relay: RunningEmulator,
                                             home: Path) -> None:
    for bad in ({"seconds": 6}, {"size": "1920x1080"}, {"model": "sora-9"}):
        with pytest.raises(sw.ValidationError):
            sw.generate("a kite", **bad)
    assert styled_relay.stats()["posts"] == 0
    journal = home / "journal.sqlite3"
    assert not journal.exists() or SqliteJournal(journal).history() == []


def test_quote_budget_and_spend_use_the_same_rule(styled_relay: RunningEmulator,
                                                  studio: studio_module.Studio,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    style = settings().api_style
    kwargs = {"model": "sora-2-pro", "size": "1792x1024", "seconds": 8} if style == "openai" \
        else {}
    request = VideoRequest.create("a kite over dunes", **kwargs)  # type: ignore[arg-type]
    price = rule(style, request.model, request.size or "16:9", request.seconds)
    assert price == (4.00 if style == "openai" else 0.90)
    quote = studio.quote(request, 2, confirm=True)
    assert (quote.price_usd, quote.new_usd) == (price, round(2 * price, 2))
    # A budget of one clip plus a cent: the first is sent, the second refused unsent.
    monkeypatch.setenv("SORA_BUDGET_USD", f"{price + 0.01:.2f}")
    job = studio.submit(request)[0]
    job.wait(timeout=30)
    assert job.price_usd == price and job.cost_usd == price
    with pytest.raises(BudgetExceededError):
        studio.submit(request, force=True)
    assert styled_relay.stats()["posts"] == 1
    assert studio.spend()["session"].charged_usd == price
