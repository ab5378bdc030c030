"""The money rules, pure (core/money.py), the typed refusal through the Studio, error kinds
in the journal (and 0.2's class names migrated), and the settings' one precedence."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

import sora_widgets as sw
from sora_widgets.core import errors
from sora_widgets.core.errors import BudgetExceededError, ConfirmationRequired, ErrorKind
from sora_widgets.core.lifecycle import Charge, Phase, RelayStatus, Status
from sora_widgets.core.models import VideoRequest
from sora_widgets.core.money import Limits, Quote, Scope, cents, decide, total
from sora_widgets.core.settings import ENV_VARS, api_style, preferences, settings
from sora_widgets.emulator import RunningEmulator
from sora_widgets.journal import open_journal
from sora_widgets.journal.records import SCHEMA_VERSION
from sora_widgets.studio.studio import Studio

from .pg_fixtures import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]   # fixtures used by name


class Book:
    """A ledger of fixed totals (what a journal would supply)."""

    def __init__(self, **spent: float) -> None:
        self._spent = {Scope(k): v for k, v in spent.items()}
        self.asked: list[Scope] = []

    def spent(self, scope: Scope) -> float:
        self.asked.append(scope)
        return self._spent.get(scope, 0.0)

    def spenders(self, scope: Scope) -> Sequence[tuple[str, float]]:
        return [("ann", self._spent.get(scope, 0.0))]


def test_a_quote_is_decided_from_totals_alone() -> None:
    quote = total([(3, 1, 0.90)], emulator=False)
    assert (quote.new, quote.reused, quote.new_usd) == (2, 1, 1.80)
    assert decide(quote, Limits(), Book()).refusal is None
    book = Book(team=8.00)
    refused = decide(quote, Limits(session_usd=10, team_usd=9.00), book)
    assert refused.refusal is not None and refused.refusal.scope is Scope.TEAM
    assert book.asked == [Scope.SESSION, Scope.TEAM]        # no cap: not asked
    assert "SORA_TEAM_BUDGET_USD=$9.00" in (refused.blocked or "")
    assert "spent by ann $8.00" in (refused.blocked or "")
    with pytest.raises(BudgetExceededError) as raised:
        refused.require()
    assert (raised.value.scope, raised.value.spent_usd, raised.value.budget_usd) == (
        "team", 8.00, 9.00)
    # The emulator, or nothing new: never refused, no total read.
    free = Book()
    assert decide(total([(9, 0, 0.9)], emulator=True), Limits(team_usd=0), free).refusal is None
    assert decide(total([(1, 1, 0.9)], emulator=False), Limits(team_usd=0), free).refusal is None
    assert free.asked == []


def test_the_confirmation_names_no_ui_flag() -> None:
    quote = decide(total([(6, 0, 0.90)], emulator=False), Limits(confirm_usd=5.0), Book())
    assert quote.refusal is not None and quote.refusal.scope is None
    with pytest.raises(ConfirmationRequired) as asked:
        quote.require()
    text = str(asked.value)
    assert "6 new × $0.90 = $5.40" in text and "SORA_CONFIRM_USD=$5.00" in text
    assert "--yes" not in text and "confirm=True" not in text
    assert isinstance(asked.value.quote, Quote) and asked.value.quote.new == 6


def test_charges_round_up_to_the_cent() -> None:
    assert cents(0.004) == 0.01 and cents(0.90) == 0.90 and cents(5.4) == 5.40
    assert cents(0.0) == 0.0 and cents(0.8000000000000002) == 0.80


def test_the_storyboard_and_submit_refuse_with_one_class(relay: RunningEmulator,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         studio: Studio) -> None:
    monkeypatch.setenv("SORA_BUDGET_USD", "1.00")
    quote = studio.quote(VideoRequest.create("two foxes"), 2)
    with pytest.raises(BudgetExceededError) as by_quote:
        studio.require(quote)
    with pytest.raises(BudgetExceededError) as by_submit:
        studio.submit(VideoRequest.create("two foxes"), 2)
    assert str(by_quote.value) == str(by_submit.value)
    with pytest.raises(BudgetExceededError):
        sw.storyboard(["a fox wakes", "the fox runs"])
    assert relay.stats()["posts"] == 0


# -- error kinds ------------------------------------------------------------------------------


def test_every_error_has_a_kind_that_raises_its_class_again() -> None:
    cases = [errors.PermissionDeniedError("no", status_code=403),
             errors.BadRequestError("bad"), errors.RateLimitError("slow"),
             errors.SubmissionUnknown("lost"), errors.JobFailed("failed"),
             errors.APIConnectionError("refused"), errors.ValidationError("input")]
    for exc in cases:
        kind = errors.kind_of(exc)
        assert kind.value != type(exc).__name__
        again = errors.error_of(kind.value, "text", code="403")
        assert type(again) is type(exc), kind
    assert errors.kind_named("PermissionDeniedError") is ErrorKind.PERMISSION_DENIED
    assert errors.kind_named("SomethingNew") is ErrorKind.ERROR


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "journal.sqlite3")
    return str(request.getfixturevalue("pg_url"))


def _raw(location: str, sql: str) -> list[tuple[object, ...]]:
    """Run SQL on the journal's database directly, as 0.2 (or a teammate) would."""
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as db:
            cur = db.execute(sql)
            return list(cur.fetchall()) if cur.description else []
    db = sqlite3.connect(location)
    try:
        rows = db.execute(sql).fetchall()
        db.commit()
        return rows
    finally:
        db.close()


def test_a_journal_of_0_2_opens_and_stores_kinds(location: str) -> None:
    journal = open_journal(location)
    request = VideoRequest.create("an old rejected job")
    for local_id, name, status in (("a", "PermissionDeniedError", Status.FAILED),
                                   ("b", "SubmissionUnknown", Status.UNKNOWN),
                                   ("c", "JobFailed", Status.FAILED)):
        journal.claim(request=request, backend="https://relay.example", emulator=False,
                      price_usd=0.9, session="s", force=True, new_ids=[local_id])
        journal.update(local_id, phase=Phase.SETTLED.value, error_type=name,
                       status=status.value, charge=Charge.MAYBE.value if local_id == "b"
                       else Charge.NONE.value,
                       relay_status=RelayStatus.FAILED.value if local_id == "c" else None)
    journal.close()
    _raw(location, "UPDATE schema_version SET version = 2")        # as 0.2 left it
    journal = open_journal(location)
    assert journal.schema_version == SCHEMA_VERSION == 4        # type: ignore[attr-defined]
    raw = {str(k): v for k, v in _raw(location, "SELECT local_id, error_type FROM jobs")}
    assert raw == {"a": "permission_denied", "b": "unknown_outcome", "c": "relay_failed"}
    states = {r.local_id: r.state.status for r in journal.iter_all()}
    assert states == {"a": Status.FAILED, "b": Status.UNKNOWN, "c": Status.FAILED}
    journal.close()


# -- settings: one place, one precedence ------------------------------------------------------


def test_every_sora_variable_is_listed_once(home: Path) -> None:
    package = Path(sw.__file__).parent

    names: set[str] = set()
    for source in package.rglob("*.py"):
        if "emulator" in source.parts:
            continue
        names |= set(re.findall(r"\bSORA_[A-Z_]+[A-Z]\b", source.read_text()))
    assert names <= set(ENV_VARS), sorted(names - set(ENV_VARS))
    reads = re.compile(r"(environ\b[^\n]*|getenv\([^\n]*)[\"']SORA_")
    readers = [p.relative_to(package).as_posix() for p in package.rglob("*.py")
               if p.name != "settings.py" and "emulator" not in p.parts
               and reads.search(p.read_text())]
    assert readers == [], f"SORA_* read outside core/settings.py: {readers}"


@pytest.mark.parametrize("configured", [False, True])
def test_config_wins_over_the_environment_and_the_environment_over_defaults(
        home: Path, monkeypatch: pytest.MonkeyPatch, configured: bool) -> None:
    monkeypatch.setenv("SORA_MODEL", "sora-2-env")
    monkeypatch.setenv("SORA_API_STYLE", "openai")
    monkeypatch.setenv("SORA_BASE_URL", "https://env.example")
    monkeypatch.setattr(preferences, "model", "sora-2-config" if configured else "")
    monkeypatch.setattr(preferences, "api_style", "artifex" if configured else "")
    monkeypatch.setattr(preferences, "base_url", "https://config.example/" if configured else "")
    current = settings()
    if configured:
        assert preferences.model_or(current) == "sora-2-config"
        assert api_style(current) == "artifex"
        assert preferences.base_url_or(current) == "https://config.example"
    else:
        assert preferences.model_or(current) == "sora-2-env"
        assert api_style(current) == "openai"
        assert preferences.base_url_or(current) == "https://env.example"
    for name in ("SORA_MODEL", "SORA_API_STYLE", "SORA_BASE_URL"):
        monkeypatch.delenv(name)
    monkeypatch.setattr(preferences, "model", "")
    monkeypatch.setattr(preferences, "api_style", "")
    monkeypatch.setattr(preferences, "base_url", "")
    current = settings()
    assert (preferences.model_or(current), api_style(current),
            preferences.base_url_or(current)) == ("sora-2", "artifex", "https://artifex.help")
