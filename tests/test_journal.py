"""The journal's behaviour, the same on both backends: a sqlite file and a real PostgreSQL.

Every test here gets a ``journal`` of each kind (a fresh file; a fresh database on the
session's server, see ``tests/pgserver.py``). The concurrency tests with processes and the
emulator are in ``test_team.py``; the backend-specific ones (0.1's sqlite journal, the
PostgreSQL errors and URL handling) are at the end.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sora_widgets.core.errors import BudgetExceededError, ConfirmationRequired, JournalError
from sora_widgets.core.lifecycle import UNKNOWN_OUTCOME, Charge, Phase, RelayStatus, Status
from sora_widgets.core.models import VideoRequest
from sora_widgets.core.owner import current_owner
from sora_widgets.journal import Journal, Limits, SqliteJournal, open_journal
from sora_widgets.journal.base import COLUMNS, INTERRUPTED, SCHEMA_VERSION, JobRecord
from sora_widgets.journal.ledger import utc_day_start, utc_month_start
from sora_widgets.journal.postgres import PostgresJournal, redact_url, to_pyformat

from .pg_fixtures import pg_server, pg_url
from .pgserver import PASSWORD, PASSWORD_USER, REJECTED_USER, PgServer

__all__ = ["pg_server", "pg_url"]   # fixtures used by name

RELAY = "https://relay.example"
PRICE = 0.90
BACKENDS = ("sqlite", "postgres")
NO_LIMITS = Limits()


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh journal lives: a sqlite file path or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "journal.sqlite3")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def journal(location: str) -> Iterator[Journal]:
    journal = open_journal(location)
    yield journal
    journal.close()


# -- helpers ----------------------------------------------------------------------------------

_ids = iter(range(10**9))


def new_id() -> str:
    return f"job{next(_ids):06d}"


def req(prompt: str = "a cat in a space helmet", ratio: str = "16:9") -> VideoRequest:
    return VideoRequest.create(prompt, aspect_ratio=ratio)


def claim(journal: Journal, prompt: str = "a cat in a space helmet", *, n: int = 1,
          session: str = "s1", user: str = "ann", force: bool = False,
          limits: Limits = NO_LIMITS, emulator: bool = False, backend: str = RELAY,
          ratio: str = "16:9") -> Any:
    return journal.claim(request=req(prompt, ratio), backend=backend, emulator=emulator,
                         price_usd=PRICE, session=session, n=n, force=force, limits=limits,
                         user=user, host="host-a", new_ids=[new_id() for _ in range(n)])


def one(journal: Journal, prompt: str = "a cat in a space helmet", **kw: Any) -> JobRecord:
    result = claim(journal, prompt, **kw)
    assert len(result.created) == 1 and not result.reused
    record: JobRecord = result.created[0]
    return record


def accept(journal: Journal, local_id: str, task_id: str | None = None,
           phase: Phase = Phase.POLLING) -> None:
    """What the engine writes when the relay accepted the submit."""
    journal.update(local_id, task_id=task_id or f"task_{local_id}", charge=Charge.CHARGED.value,
                   phase=phase.value, relay_status=RelayStatus.QUEUED.value,
                   status=Status.QUEUED.value)


def reject(journal: Journal, local_id: str) -> None:
    """A submit the relay refused (403): settled, nothing paid."""
    journal.update(local_id, phase=Phase.SETTLED.value, error_type="PermissionDeniedError",
                   error_code="403", status=Status.FAILED.value)


# -- the claim: cache, force ------------------------------------------------------------------


def test_claim_writes_an_intent_and_a_rerun_reuses_it(journal: Journal) -> None:
    first = one(journal, user="ann")
    assert (first.phase, first.status, first.charge) == ("submitting", "submitting", "none")
    assert (first.user_name, first.host, first.session, first.price_usd) == (
        "ann", "host-a", "s1", PRICE)
    assert first.owner == str(current_owner()) and first.pid == os.getpid()
    assert json.loads(first.request)["prompt"] == "a cat in a space helmet"

    again = claim(journal)
    assert again.created == [] and [r.local_id for r in again.reused] == [first.local_id]

    accept(journal, first.local_id)
    again = claim(journal, session="another session", user="bob")
    assert [r.local_id for r in again.reused] == [first.local_id]
    assert again.reused[0].task_id == f"task_{first.local_id}"


def test_claim_reuses_only_the_same_request_on_the_same_relay(journal: Journal) -> None:
    first = one(journal)
    assert one(journal, ratio="9:16").local_id != first.local_id
    assert one(journal, "a dog in a space helmet").local_id != first.local_id
    assert one(journal, backend="https://other.relay").local_id != first.local_id


def test_force_pays_again_and_n_reuses_what_exists(journal: Journal) -> None:
    first = one(journal)
    forced = claim(journal, force=True)
    assert forced.reused == [] and len(forced.created) == 1
    several = claim(journal, n=3)
    reused_ids = {r.local_id for r in several.reused}
    assert reused_ids == {first.local_id, forced.created[0].local_id}
    assert len(several.created) == 1
    assert len(journal.history()) == 3


def test_a_rejected_submit_is_not_reused(journal: Journal) -> None:
    first = one(journal)
    reject(journal, first.local_id)
    again = claim(journal)
    assert again.reused == [] and len(again.created) == 1
    # ...but a failed *accepted* job is (the relay took the money; re-running shows it).
    accepted = again.created[0]
    journal.update(accepted.local_id, task_id="t-failed", charge=Charge.CHARGED.value,
                   phase=Phase.SETTLED.value, relay_status=RelayStatus.FAILED.value,
                   error_type="JobFailed", status=Status.FAILED.value)
    assert [r.local_id for r in claim(journal).reused] == [accepted.local_id]


# -- budgets by scope -------------------------------------------------------------------------


def test_session_budget_counts_this_session_only(journal: Journal) -> None:
    limits = Limits(session_usd=1.80)
    one(journal, "p1", limits=limits)
    one(journal, "p2", limits=limits)
    with pytest.raises(BudgetExceededError) as refused:
        claim(journal, "p3", limits=limits)
    error = refused.value
    assert (error.scope, error.spent_usd, error.budget_usd, error.price_usd) == (
        "session", 1.80, 1.80, PRICE)
    text = str(error)
    assert "SORA_BUDGET_USD=$1.80" in text and "$1.80 spent this session" in text
    assert "$0.00 left" in text and "nothing was sent" in text
    # Another session has its own cap; the refusal wrote nothing.
    one(journal, "p3", limits=limits, session="s2")
    assert len(journal.history()) == 3


def test_team_budget_says_who_spent_it_and_counts_unknown_outcomes(journal: Journal) -> None:
    limits = Limits(team_usd=3.00)
    a = one(journal, "p1", user="ann", session="k1", limits=limits)
    b = one(journal, "p2", user="ann", session="k2", limits=limits)
    c = one(journal, "p3", user="bob", session="k3", limits=limits)
    accept(journal, a.local_id)
    # b's answer was lost: maybe charged, and it counts.
    journal.update(b.local_id, phase=Phase.SETTLED.value, charge=Charge.MAYBE.value,
                   error_type=UNKNOWN_OUTCOME, status=Status.UNKNOWN.value)
    # c is still submitting: reserved, and it counts too. A rejected job does not.
    d = one(journal, "p4", user="cy", session="k4", limits=Limits())
    reject(journal, d.local_id)
    with pytest.raises(BudgetExceededError) as refused:
        claim(journal, "p5", user="dee", session="k5", limits=limits)
    error = refused.value
    assert error.scope == "team" and error.spent_usd == 2.70
    text = str(error)
    assert "SORA_TEAM_BUDGET_USD=$3.00" in text and "$2.70 spent this month (UTC)" in text
    assert "$0.30 left" in text
    assert "spent by ann $1.80, bob $0.90" in text and "cy" not in text
    assert c.status == "submitting"


def test_emulator_jobs_cost_nothing_and_pass_every_cap(journal: Journal) -> None:
    limits = Limits(session_usd=0.0, daily_usd=0.0, team_usd=0.0, confirm_usd=0.0)
    result = claim(journal, n=10, emulator=True, backend="emulator", limits=limits)
    assert len(result.created) == 10
    assert journal.spend().worst_case_usd == 0.0
    one(journal, "paid", limits=Limits(team_usd=0.90))


def test_daily_and_team_budgets_by_date(journal: Journal) -> None:
    now = time.time()
    day, month = utc_day_start(now), utc_month_start(now)
    old_month = one(journal, "last month")
    yesterday = one(journal, "yesterday")
    today = one(journal, "today")
    for record in (old_month, yesterday, today):
        accept(journal, record.local_id)
    journal.update(old_month.local_id, created_at=month - 3600)
    journal.update(yesterday.local_id, created_at=day - 3600)
    journal.update(today.local_id, created_at=day + 1)
    # Today: only "today" counts.
    with pytest.raises(BudgetExceededError) as refused:
        claim(journal, "next", limits=Limits(daily_usd=1.00))
    assert refused.value.scope == "day" and refused.value.spent_usd == 0.90
    assert "SORA_DAILY_BUDGET_USD=$1.00" in str(refused.value)
    assert "today (UTC)" in str(refused.value) and "spent by ann $0.90" in str(refused.value)
    # This month: "today", and "yesterday" unless today is the 1st.
    month_spend = 0.90 + (0.90 if day - 3600 >= month else 0.0)
    with pytest.raises(BudgetExceededError) as refused:
        claim(journal, "next", limits=Limits(team_usd=month_spend + 0.5))
    assert refused.value.scope == "team" and refused.value.spent_usd == pytest.approx(month_spend)
    one(journal, "next", limits=Limits(daily_usd=1.80, team_usd=month_spend + 0.90))


def test_every_cap_is_checked_and_the_first_one_passed_refuses(journal: Journal) -> None:
    one(journal, "p1", session="me")
    one(journal, "p2", session="other")
    limits = Limits(session_usd=10.0, daily_usd=10.0, team_usd=2.0)
    with pytest.raises(BudgetExceededError) as refused:
        claim(journal, "p3", session="me", limits=limits)
    assert refused.value.scope == "team"
    limits = Limits(session_usd=1.0, daily_usd=10.0, team_usd=2.0)
    with pytest.raises(BudgetExceededError) as refused:
        claim(journal, "p3", session="me", limits=limits)
    assert refused.value.scope == "session"


def test_every_scope_read_at_once_counts_what_each_counts_alone(journal: Journal) -> None:
    """The claim reads the session, day and team totals in one pass over the journal: each
    keeps its own rows (this session's from last month too; other sessions' only by date)."""
    now = time.time()
    day, month = utc_day_start(now), utc_month_start(now)
    mine_last_month = one(journal, "a", session="me")
    accept(journal, mine_last_month.local_id)
    journal.update(mine_last_month.local_id, created_at=month - 3600)
    theirs_this_month = one(journal, "b", session="other")
    accept(journal, theirs_this_month.local_id)
    journal.update(theirs_this_month.local_id, created_at=month + 1)
    mine_maybe = one(journal, "c", session="me")
    journal.update(mine_maybe.local_id, phase=Phase.SETTLED.value, charge=Charge.MAYBE.value,
                   error_type=UNKNOWN_OUTCOME, status=Status.UNKNOWN.value)
    one(journal, "d", session="other")                       # in flight: reserved
    reject(journal, one(journal, "e", session="other").local_id)          # nothing paid
    claim(journal, "f", session="me", emulator=True, backend="emulator")  # free
    billed_nothing = one(journal, "g", session="me")
    accept(journal, billed_nothing.local_id)
    journal.update(billed_nothing.local_id, billed_usd=0.0)  # counts the least charge
    session_spent = 0.90 + 0.90 + 0.01
    day_spent = 0.90 + 0.90 + 0.01 + (0.90 if month + 1 >= day else 0.0)
    team_spent = 0.90 + 0.90 + 0.90 + 0.01
    loose = {"session_usd": 100.0, "daily_usd": 100.0, "team_usd": 100.0}
    for scope, field, spent in (("session", "session_usd", session_spent),
                                ("day", "daily_usd", day_spent),
                                ("team", "team_usd", team_spent)):
        limits = Limits(**{**loose, field: spent + 0.5})
        with pytest.raises(BudgetExceededError) as refused:
            claim(journal, "h", session="me", limits=limits)
        assert refused.value.scope == scope
        assert refused.value.spent_usd == pytest.approx(spent)
        quote = journal.quote(request=req("h"), backend=RELAY, emulator=False,
                              price_usd=PRICE, session="me", limits=limits)
        with pytest.raises(BudgetExceededError) as refused:
            quote.require()                              # the read-only quote: the same
        assert refused.value.scope == scope
        assert refused.value.spent_usd == pytest.approx(spent)
        alone = Limits(**{field: spent + 0.5})          # the same cap, read on its own
        with pytest.raises(BudgetExceededError) as refused:
            claim(journal, "h", session="me", limits=alone)
        assert refused.value.spent_usd == pytest.approx(spent)
    one(journal, "h", session="me", limits=Limits(**loose))


def test_confirmation_above_the_threshold(journal: Journal) -> None:
    limits = Limits(confirm_usd=5.00)
    with pytest.raises(ConfirmationRequired) as asked:
        claim(journal, n=6, limits=limits)
    assert "6 new × $0.90 = $5.40" in str(asked.value) and "SORA_CONFIRM_USD=$5.00" in str(
        asked.value)
    assert getattr(asked.value.quote, "new", None) == 6
    assert journal.history() == []
    assert len(claim(journal, n=5, limits=limits).created) == 5    # $4.50: no question
    # Reused jobs are free: 6 asked, 5 reused, 1 new.
    result = claim(journal, n=6, limits=limits)
    assert (len(result.reused), len(result.created)) == (5, 1)
    # confirm=True is a Limits without a threshold.
    assert len(claim(journal, "other", n=6, limits=Limits()).created) == 6


def test_quote_tells_what_claim_would_do(journal: Journal) -> None:
    one(journal)
    quote = journal.quote(request=req(), backend=RELAY, emulator=False, price_usd=PRICE,
                          session="s1", n=3, limits=Limits(team_usd=1.80))
    assert (quote.new, quote.reused) == (2, 1)
    assert quote.blocked is not None and "SORA_TEAM_BUDGET_USD=$1.80" in quote.blocked
    quote = journal.quote(request=req(), backend=RELAY, emulator=False, price_usd=PRICE,
                          session="s1", n=1, limits=Limits(team_usd=1.80))
    assert (quote.new, quote.reused, quote.blocked) == (0, 1, None)
    assert len(journal.history()) == 1


def test_concurrent_claims_of_threads_never_pass_the_cap(journal: Journal) -> None:
    limits = Limits(team_usd=4.50)           # room for 5
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker(k: int) -> None:
        start.wait()
        for i in range(2):
            try:
                claim(journal, f"thread {k} prompt {i}", session=f"t{k}", limits=limits)
                result = "ok"
            except BudgetExceededError:
                result = "refused"
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["ok"] * 5 + ["refused"] * 11
    assert journal.spend().pending_usd == 4.50


# -- recovery, unfinished ---------------------------------------------------------------------


def _dead_local_owner() -> str:
    me = current_owner()
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return f"{me.host}/{me.boot}/{proc.pid}/1/deadbeef0000"


def test_recover_interrupted_submits_of_a_dead_owner(journal: Journal) -> None:
    mine = one(journal, "mine")
    dead_here = one(journal, "dead here")
    silent_host = one(journal, "silent host")
    live_host = one(journal, "live host")
    emulated = one(journal, "emulated", emulator=True, backend="emulator")
    accepted = one(journal, "accepted")
    accept(journal, accepted.local_id)
    now = time.time()
    journal.update(dead_here.local_id, owner=_dead_local_owner())
    journal.update(silent_host.local_id, owner="other-host/boot/42/1/aaaaaaaaaaaa",
                   heartbeat_at=now - 3600)
    journal.update(live_host.local_id, owner="other-host/boot/43/1/bbbbbbbbbbbb",
                   heartbeat_at=now)
    journal.update(emulated.local_id, owner="junk")

    recovered = {r.local_id: r for r in journal.recover_interrupted_submits()}
    assert set(recovered) == {dead_here.local_id, silent_host.local_id, emulated.local_id}
    for local_id in (dead_here.local_id, silent_host.local_id):
        record = recovered[local_id]
        assert (record.phase, record.status, record.charge, record.error_type) == (
            "settled", "unknown", "maybe", UNKNOWN_OUTCOME)
        assert record.error_message == INTERRUPTED and record.state.status is Status.UNKNOWN
    assert recovered[emulated.local_id].charge == "none"   # the emulator charges nothing
    for untouched, phase in ((mine, "submitting"), (live_host, "submitting"),
                             (accepted, "polling")):
        current = journal.get(untouched.local_id)
        assert current is not None and current.phase == phase
    assert journal.recover_interrupted_submits() == []
    # Maybe-charged jobs stay in the spend: the money rule is pessimistic.
    spend = journal.spend()
    assert (spend.maybe_usd, spend.charged_usd, spend.pending_usd) == (1.80, 0.90, 1.80)


def test_unfinished_lists_jobs_that_still_need_the_relay(journal: Journal) -> None:
    submitting = one(journal, "submitting")
    polling = one(journal, "polling")
    saving = one(journal, "saving")
    settled = one(journal, "settled")
    accept(journal, polling.local_id)
    accept(journal, saving.local_id, phase=Phase.SAVING)
    accept(journal, settled.local_id, phase=Phase.SETTLED)
    assert [r.local_id for r in journal.unfinished()] == [polling.local_id, saving.local_id]
    assert submitting.local_id not in {r.local_id for r in journal.unfinished()}


def test_heartbeat_and_adopt_move_the_lease(journal: Journal) -> None:
    record = one(journal)
    journal.update(record.local_id, owner="other-host/boot/42/1/aaaaaaaaaaaa", heartbeat_at=1.0)
    journal.adopt(record.local_id)
    adopted = journal.get(record.local_id)
    assert adopted is not None and adopted.owner == str(current_owner())
    journal.update(record.local_id, heartbeat_at=1.0)
    journal.heartbeat([record.local_id])
    renewed = journal.get(record.local_id)
    assert renewed is not None and renewed.heartbeat_at is not None
    assert renewed.heartbeat_at > time.time() - 60


# -- history, find, spend ---------------------------------------------------------------------


def test_history_filters_and_pages(journal: Journal) -> None:
    records = [one(journal, prompt) for prompt in (
        "A red fox in snow", "a blue whale", "red sunset over a CITY", "100% pure_orange")]
    for i, record in enumerate(records):
        journal.update(record.local_id, created_at=1000.0 + i)
    accept(journal, records[1].local_id)
    journal.update(records[0].local_id, starred=1, note="keep")
    journal.update(records[2].local_id, starred=True)      # a bool is stored as 1 too

    newest_first = [r.local_id for r in reversed(records)]
    assert [r.local_id for r in journal.history()] == newest_first
    assert [r.local_id for r in journal.history(2)] == newest_first[:2]
    assert [r.local_id for r in journal.history(2, offset=1)] == newest_first[1:3]
    assert [r.local_id for r in journal.history(offset=3)] == newest_first[3:]
    starred = journal.history(starred=True)
    assert [r.local_id for r in starred] == [records[2].local_id, records[0].local_id]
    assert all(r.starred is True for r in starred) and starred[1].note == "keep"
    assert len(journal.history(starred=False)) == 2
    assert [r.local_id for r in journal.history(search="RED")] == [
        records[2].local_id, records[0].local_id]
    assert [r.local_id for r in journal.history(search="red city")] == [records[2].local_id]
    assert [r.local_id for r in journal.history(search="100% pure_")] == [records[3].local_id]
    assert journal.history(search="nothing like it") == []
    assert [r.local_id for r in journal.history(status="queued")] == [records[1].local_id]
    assert len(journal.history(status="submitting", limit=10)) == 3
    with pytest.raises(ValueError):
        journal.history(status="no such status")


def test_find_by_task_id_local_id_or_prefix(journal: Journal) -> None:
    a, b = one(journal, "one"), one(journal, "two")
    accept(journal, a.local_id, task_id="vabc123")
    accept(journal, b.local_id, task_id="vabd456")
    assert journal.find("vabc123").local_id == a.local_id     # type: ignore[union-attr]
    assert journal.find(b.local_id).local_id == b.local_id    # type: ignore[union-attr]
    assert journal.find("vabd").local_id == b.local_id        # type: ignore[union-attr]
    assert journal.find("vab") is None                         # ambiguous
    assert journal.find("nope") is None


def test_spend_by_kind_and_session(journal: Journal) -> None:
    charged = one(journal, "charged", session="k1")
    maybe = one(journal, "maybe", session="k1")
    one(journal, "pending", session="k2")
    rejected = one(journal, "rejected", session="k1")
    one(journal, "emulated", session="k1", emulator=True, backend="emulator")
    accept(journal, charged.local_id)
    journal.update(maybe.local_id, charge=Charge.MAYBE.value, phase=Phase.SETTLED.value,
                   error_type=UNKNOWN_OUTCOME, status=Status.UNKNOWN.value)
    reject(journal, rejected.local_id)
    spend = journal.spend()
    assert (spend.charged_usd, spend.maybe_usd, spend.pending_usd, spend.jobs) == (
        0.90, 0.90, 0.90, 4)
    assert spend.worst_case_usd == 2.70
    session = journal.spend("k1")
    assert (session.charged_usd, session.maybe_usd, session.pending_usd, session.jobs) == (
        0.90, 0.90, 0.0, 3)
    assert journal.spend("nobody").worst_case_usd == 0.0
    assert [r.local_id for r in journal.iter_all()][:2] == [charged.local_id, maybe.local_id]


def test_update_rejects_unknown_columns(journal: Journal) -> None:
    record = one(journal)
    with pytest.raises(ValueError, match="unknown journal columns"):
        journal.update(record.local_id, api_key="sk-secret")


# -- schema -----------------------------------------------------------------------------------


def _columns(journal: Journal) -> list[str]:
    with journal._read() as cur:
        row = cur.execute("SELECT * FROM jobs WHERE 1 = 0").description
    return [d[0] for d in row]


def test_a_new_journal_gets_the_current_schema_and_reopens_as_is(location: str) -> None:
    journal = open_journal(location)
    assert journal.schema_version == SCHEMA_VERSION   # type: ignore[attr-defined]
    assert tuple(_columns(journal)) == COLUMNS
    record = one(journal)
    journal.close()
    again = open_journal(location)
    assert again.schema_version == SCHEMA_VERSION     # type: ignore[attr-defined]
    assert [r.local_id for r in again.history()] == [record.local_id]
    with again._read() as cur:
        rows = cur.execute("SELECT version FROM schema_version").fetchall()
    assert [int(r["version"]) for r in rows] == [SCHEMA_VERSION]
    again.close()


OPENER = """
import sys, time
from sora_widgets.journal import open_journal
location, start = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
journal = open_journal(location)
print(journal.schema_version, len(journal.history()))
"""


def test_processes_opening_a_new_journal_at_once_all_succeed(location: str) -> None:
    start = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", OPENER, location, repr(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    results = [p.communicate(timeout=60) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert out.split() == [str(SCHEMA_VERSION), "0"]


def test_a_forked_child_uses_its_own_connection(journal: Journal) -> None:
    parent = one(journal, "parent")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                      # the child: claim, report, leave
        code = 1
        try:
            child = one(journal, "child")
            seen = len(journal.history())
            os.write(write, f"{child.local_id} {seen}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    answer = os.read(read, 1000).decode().split()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0 and answer[1] == "2"
    # The parent's connection still works (the child neither used nor closed it).
    assert {r.local_id for r in journal.history()} == {parent.local_id, answer[0]}
    assert [r.local_id for r in claim(journal, "child").reused] == [answer[0]]


# -- sqlite: a journal of 0.1 ------------------------------------------------------------------

V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    local_id      TEXT PRIMARY KEY,
    task_id       TEXT,
    fingerprint   TEXT NOT NULL,
    request       TEXT NOT NULL,
    backend       TEXT NOT NULL,
    emulator      INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL,
    progress      INTEGER NOT NULL DEFAULT 0,
    video_url     TEXT,
    error_message TEXT,
    error_code    TEXT,
    price_usd     REAL NOT NULL DEFAULT 0,
    charge        TEXT NOT NULL DEFAULT 'none',
    local_path    TEXT,
    session       TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    completed_at  REAL
);
CREATE INDEX IF NOT EXISTS jobs_fingerprint ON jobs (fingerprint, backend);
CREATE INDEX IF NOT EXISTS jobs_task ON jobs (task_id);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
"""

#: local_id: (task_id, status, charge, local_path, error_code) of 0.1, and what schema 2
#: must make of it: (phase, relay_status, error kind, status).
V1_ROWS: dict[str, tuple[tuple[Any, ...], tuple[Any, ...]]] = {
    "submitting": ((None, "submitting", "none", None, None),
                   ("submitting", None, None, "submitting")),
    "unknown": ((None, "unknown", "maybe", None, None),
                ("settled", None, UNKNOWN_OUTCOME, "unknown")),
    "rejected": ((None, "failed", "none", None, "403"),
                 ("settled", None, "permission_denied", "failed")),
    "rejected_odd": ((None, "failed", "none", None, "418"),
                     ("settled", None, "api", "failed")),
    "failed": (("t-failed", "failed", "charged", None, "content_policy"),
               ("settled", "failed", "relay_failed", "failed")),
    "saved": (("t-saved", "completed", "charged", "/videos/a.mp4", None),
              ("settled", "completed", None, "completed")),
    "unsaved": (("t-unsaved", "completed", "charged", None, None),
                ("saving", "completed", None, "completed")),
    "running": (("t-running", "in_progress", "charged", None, None),
                ("polling", "in_progress", None, "in_progress")),
    "queued": (("t-queued", "queued", "charged", None, None),
               ("polling", "queued", None, "queued")),
}


def test_sqlite_migrates_a_journal_of_0_1(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    for i, (local_id, ((task_id, status, charge, local_path, code), _)) in enumerate(
            V1_ROWS.items()):
        request = req(f"old {local_id}")
        db.execute(
            "INSERT INTO jobs (local_id, task_id, fingerprint, request, backend, emulator,"
            " status, progress, error_code, price_usd, charge, local_path, session, pid,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?, 0, ?, 0.9, ?, ?, 'old', 7,"
            " ?, ?)",
            (local_id, task_id, request.fingerprint(), json.dumps(request.to_json()), RELAY,
             status, code, charge, local_path, 1000.0 + i, 1000.0 + i))
    db.commit()
    db.close()

    journal = SqliteJournal(path)
    assert journal.schema_version == SCHEMA_VERSION
    assert sorted(_columns(journal)) == sorted(COLUMNS)      # added ones come last
    records = {r.local_id: r for r in journal.iter_all()}
    assert set(records) == set(V1_ROWS)
    for local_id, (_, (phase, relay, error_type, status)) in V1_ROWS.items():
        record = records[local_id]
        assert (record.phase, record.relay_status, record.error_type, record.status) == (
            phase, relay, error_type, status), local_id
        assert record.state.status.value == status, local_id     # derived == stored
        assert record.starred is False and record.owner == "" and record.user_name is None
    assert [r.local_id for r in journal.unfinished()] == ["unsaved", "running", "queued"]
    # The old 'submitting' row has no owner that could be alive: it becomes maybe-charged.
    recovered = journal.recover_interrupted_submits()
    assert [(r.local_id, r.status, r.charge) for r in recovered] == [
        ("submitting", "unknown", "maybe")]
    # Old finished jobs are reused by an identical request; the rejected ones are not.
    result = journal.claim(request=req("old saved"), backend=RELAY, emulator=False,
                           price_usd=PRICE, session="new", new_ids=["n1"])
    assert [r.local_id for r in result.reused] == ["saved"]
    result = journal.claim(request=req("old rejected"), backend=RELAY, emulator=False,
                           price_usd=PRICE, session="new", new_ids=["n2"])
    assert result.reused == [] and [r.local_id for r in result.created] == ["n2"]
    journal.close()
    again = SqliteJournal(path)                      # migrating twice changes nothing
    assert len(list(again.iter_all())) == len(V1_ROWS) + 1
    again.close()


# -- PostgreSQL: URLs, placeholders, errors ---------------------------------------------------


def test_placeholders_are_translated_outside_quotes_only() -> None:
    assert to_pyformat("SELECT ? , '?', \"a?\" FROM t WHERE x LIKE ?") == (
        "SELECT %s , '?', \"a?\" FROM t WHERE x LIKE %s")
    assert to_pyformat("SELECT '100%' || ? , 'it''s ?'") == "SELECT '100%%' || %s , 'it''s ?'"


def test_url_passwords_are_never_shown() -> None:
    assert redact_url("postgresql://ann:s3cret@db:5432/studio") == (
        "postgresql://ann:***@db:5432/studio")
    assert redact_url("postgresql://ann@db/studio") == "postgresql://ann@db/studio"
    journal_url = "postgres://ann:s3cret@127.0.0.1:1/studio"
    with pytest.raises(JournalError) as failed:
        PostgresJournal(journal_url, connect_timeout=2)
    assert "s3cret" not in str(failed.value)
    assert "postgresql://ann:***@127.0.0.1:1/studio" in str(failed.value)


def test_server_down_says_so(pg_server: PgServer) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]          # nothing listens here once closed
    with pytest.raises(JournalError, match="cannot be reached: is it running"):
        open_journal(f"postgresql://postgres@127.0.0.1:{port}/nothing")


def test_missing_database_says_create_it(pg_server: PgServer) -> None:
    with pytest.raises(JournalError, match="the database does not exist: create it"):
        open_journal(pg_server.url("no_such_database"))


def test_refused_login_says_check_the_credentials(pg_server: PgServer) -> None:
    url = pg_server.url("postgres", user=f"{PASSWORD_USER}:wrong-password")
    with pytest.raises(JournalError, match="refused the login") as failed:
        open_journal(url)
    assert "wrong-password" not in str(failed.value)
    with pytest.raises(JournalError, match="refused the login"):
        open_journal(pg_server.url("postgres", user=REJECTED_USER))
    with pytest.raises(JournalError, match="refused the login"):
        open_journal(pg_server.url("postgres", user="no_such_role"))


def test_missing_permission_says_what_to_grant(pg_server: PgServer, pg_url: str) -> None:
    # PostgreSQL 15: an ordinary role cannot create tables in someone else's database.
    database = pg_url.rsplit("/", 1)[1]
    url = pg_server.url(database, user=f"{PASSWORD_USER}:{PASSWORD}")
    with pytest.raises(JournalError, match=r"lacks a permission.*GRANT"):
        open_journal(url)
    # Once the owner created the tables and granted DML, the role works without CREATE.
    open_journal(pg_url).close()
    pg_server.sql(f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO "
                  f"{PASSWORD_USER}", database=database)
    journal = open_journal(url)
    assert "correct-horse" not in journal.location and "***" in journal.location
    assert one(journal).user_name == "ann"
    journal.close()


def test_a_restarted_connection_is_replaced(pg_server: PgServer, pg_url: str) -> None:
    journal = open_journal(pg_url)
    one(journal)
    database = pg_url.rsplit("/", 1)[1]
    pg_server.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                  f"'{database}' AND pid <> pg_backend_pid()")
    with pytest.raises(JournalError):
        journal.history()              # the one call that met the dead connection
    assert len(journal.history()) == 1
    # A connection idle for a while is checked first: the server's restart goes unnoticed.
    pg_server.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                  f"'{database}' AND pid <> pg_backend_pid()")
    journal._local.used -= 3600          # type: ignore[attr-defined]
    assert len(claim(journal, "after a restart").created) == 1
    journal.close()


# -- take-over: who works on a row (resume across processes and machines) ---------------------

_TAKE_OVER = """
import sys
from sora_widgets.journal import open_journal
record, mine = open_journal(sys.argv[1]).take_over(sys.argv[2])
print("mine" if mine else "not-mine", record.owner if record else None, flush=True)
sys.stdin.read()        # stay alive (a live owner) until every racer has answered
"""


def test_take_over_keeps_a_live_owners_row_and_hands_a_dead_ones_to_one_process(
        journal: Journal, location: str) -> None:
    """Issue 16: a job is resumed by its own process, or by anyone once its owner is gone —
    never by two at once. Eight processes race for a dead owner's row: exactly one wins."""
    live = one(journal, "a live kernel's job")
    accept(journal, live.local_id)
    other_live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        me = current_owner()
        start = Path(f"/proc/{other_live.pid}/stat").read_text().rpartition(")")[2].split()[19]
        journal.update(live.local_id, owner=f"{me.host}/{me.boot}/{other_live.pid}/{start}/"
                                            "cafecafecafe")
        record, mine = journal.take_over(live.local_id)
        assert record is not None and not mine and "cafecafecafe" in record.owner
    finally:
        other_live.kill()
        other_live.wait()
    dead = one(journal, "a dead kernel's job")
    accept(journal, dead.local_id)
    journal.update(dead.local_id, owner=_dead_local_owner())
    racers = [subprocess.Popen([sys.executable, "-c", _TAKE_OVER, location, dead.local_id],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
              for _ in range(8)]
    answers = [p.stdout.readline().split() for p in racers if p.stdout is not None]
    for p in racers:
        p.communicate("", timeout=60)
    assert sum(answer[0] == "mine" for answer in answers) == 1, answers
    winner = next(answer[1] for answer in answers if answer[0] == "mine")
    final = journal.get(dead.local_id)
    assert final is not None and final.owner == winner
    # The winner is gone too (its process ended): the row can be taken over again, by us.
    record, mine = journal.take_over(dead.local_id)
    assert mine and record is not None and record.owner == str(current_owner())


def test_take_over_settles_a_dead_owners_submit_as_unknown_never_to_resend(
        journal: Journal) -> None:
    record = one(journal, "a submit whose kernel died")
    journal.update(record.local_id, owner=_dead_local_owner())
    taken, mine = journal.take_over(record.local_id)
    assert not mine and taken is not None
    assert taken.state.error_type == UNKNOWN_OUTCOME and taken.charge == Charge.MAYBE.value
    assert taken.status == Status.UNKNOWN.value and taken.state.settled
