"""Kernels start warm (issue 21 #13): a relay's learned poll prior is kept in the journal,
read by a new kernel's first job, and a poisoned row is ignored, never raised."""

from __future__ import annotations

import asyncio
import json
import math
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sora_widgets.core.models import VideoRequest
from sora_widgets.emulator import RunningEmulator
from sora_widgets.engine.backend import Backend
from sora_widgets.engine.events import EventsThread
from sora_widgets.engine.histogram import NBINS
from sora_widgets.engine.job import Job
from sora_widgets.engine.prior import NHISTS, RelayPrior
from sora_widgets.engine.warm import PriorBook, decode, encode, relay_key
from sora_widgets.journal import Journal, SqliteJournal, open_journal

from .conftest import TEST_TIME_SCALE, VIP_KEY
from .pg_fixtures import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]

SCRIPT = Path(__file__).parent / "scripts" / "warm_kernel.py"


def _env(home: Path, base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORA_")}
    env.update(SORA_API_KEY=VIP_KEY, SORA_BASE_URL=base_url, SORA_WIDGETS_HOME=str(home),
               SORA_POLL_SCALE=str(TEST_TIME_SCALE), SORA_CONFIRM_USD="1000",
               PYTHONPATH=str(SCRIPT.parent.parent.parent))
    return env


def _kernel(home: Path, base_url: str, *args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, str(SCRIPT), *args], env=_env(home, base_url),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _rows(home: Path) -> list[sqlite3.Row]:
    db = sqlite3.connect(_journal_file(home))
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM relay_priors").fetchall()
    finally:
        db.close()


def _journal_file(home: Path) -> Path:
    files = [p for p in home.rglob("journal.sqlite3") if p.is_file()]
    assert len(files) == 1, files
    return files[0]


def test_a_prior_learned_in_one_kernel_is_where_the_next_kernels_first_job_starts(
        home: Path, emulator: RunningEmulator) -> None:
    learned = _kernel(home, emulator.base_url, "learn", "3")
    assert learned == {"learned": 3}
    rows = _rows(home)
    assert len(rows) == 1 and rows[0]["jobs"] == 3
    assert VIP_KEY not in json.dumps([dict(r) for r in rows])
    stored = decode(rows[0]["body"])
    assert stored is not None and stored[1] == 3

    first = _kernel(home, emulator.base_url, "first")
    assert first["jobs_learned"] == 3       # before its own job completed: read, not learned
    expected = RelayPrior()
    expected.adopt(*stored)
    got = first["weights"]
    assert isinstance(got, list)
    for mine, theirs in zip(expected.export(), got, strict=True):
        assert all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
                   for a, b in zip(mine, theirs, strict=True))
    assert first["summary"] == json.loads(json.dumps(expected.summary()))
    assert first["summary"] != json.loads(json.dumps(RelayPrior().summary()))   # not cold


def test_a_poisoned_prior_row_is_ignored_and_the_job_runs_cold(
        home: Path, emulator: RunningEmulator) -> None:
    _kernel(home, emulator.base_url, "learn", "1")
    db = sqlite3.connect(_journal_file(home))
    body = json.loads(db.execute("SELECT body FROM relay_priors").fetchone()[0])
    body["hists"][0][0] = 1e300                   # out of range (json has no NaN of ours)
    db.execute("UPDATE relay_priors SET body = ?, jobs = 1", (json.dumps(body),))
    db.commit()
    db.close()
    first = _kernel(home, emulator.base_url, "first")
    assert first["jobs_learned"] == 1             # its own job only: the row was not used


def _valid() -> dict[str, object]:
    return {"format": 1, "jobs": 4, "hists": RelayPrior().export()}


@pytest.mark.parametrize("poison", [
    "not json", "[]", "{}", json.dumps({**_valid(), "format": 2}),
    json.dumps({**_valid(), "jobs": -1}), json.dumps({**_valid(), "jobs": True}),
    json.dumps({**_valid(), "jobs": 10**12}),
    json.dumps({**_valid(), "hists": RelayPrior().export()[:-1]}),
    json.dumps({**_valid(), "hists": [h[:-1] for h in RelayPrior().export()]}),
    json.dumps({**_valid(), "hists": [[-1.0] * NBINS] * NHISTS}),
    json.dumps({**_valid(), "hists": [[0.0] * NBINS] * NHISTS}),
    json.dumps({**_valid(), "hists": [["1"] * NBINS] * NHISTS}),
    json.dumps({**_valid(), "hists": [[float("nan")] * NBINS] * NHISTS}),
    json.dumps({**_valid(), "hists": [[float("inf")] * NBINS] * NHISTS}),
    "[" * 100_000 + "]" * 100_000, " " * (300 * 1024), None, 7,
])
def test_decode_refuses_whatever_is_not_a_prior(poison: object) -> None:
    assert decode(poison) is None


def test_encode_then_decode_round_trips_and_adopt_bounds_the_mass() -> None:
    weights = RelayPrior().export()
    got = decode(encode(weights, 5))
    assert got is not None and got[1] == 5 and len(got[0]) == NHISTS
    heavy = [[1e9] * NBINS for _ in range(NHISTS)]   # a teammate's row claiming certainty
    prior = RelayPrior()
    prior.adopt(heavy, 5)
    cold = RelayPrior().export()
    for hist, default in zip(prior.export(), cold, strict=True):
        assert sum(hist) <= 2 * 200 + sum(default) + 1e-6
        assert all(h >= d for h, d in zip(hist, default, strict=True))   # defaults stay


def test_the_key_never_reaches_the_relay_key() -> None:
    secret = "sk-live-do-not-store-0123456789"
    backend = Backend(base_url=f"https://user:{secret}@relay.example:8443/v1/?key={secret}#"
                               f"{secret}", style="openai")
    journal = SqliteJournal(":memory:")
    job = Job(VideoRequest(prompt="x", model="sora-2"), backend, journal, Path("."))
    key = relay_key(job)
    assert secret not in key and "user" not in key
    assert key == "https://relay.example:8443/v1|openai|sora-2"


def _round_trip(journal: Journal) -> None:
    assert journal.load_prior("r|artifex|sora-2") is None
    journal.save_prior("r|artifex|sora-2", encode(RelayPrior().export(), 2), 2)
    journal.save_prior("r|artifex|sora-2", encode(RelayPrior().export(), 3), 3)   # upsert
    got = decode(journal.load_prior("r|artifex|sora-2"))
    assert got is not None and got[1] == 3


def test_the_priors_table_on_sqlite_is_created_once_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    _round_trip(SqliteJournal(path))
    SqliteJournal(path).close()                   # opening again: idempotent
    assert decode(SqliteJournal(path).load_prior("r|artifex|sora-2")) is not None


def test_the_priors_table_on_postgres_round_trips(pg_url: str) -> None:
    journal = open_journal(pg_url)
    try:
        _round_trip(journal)
    finally:
        journal.close()
    again = open_journal(pg_url)
    try:
        assert decode(again.load_prior("r|artifex|sora-2")) is not None
    finally:
        again.close()


class _CountingJournal(SqliteJournal):
    """A real journal that notes which thread wrote each prior."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writers: list[str] = []

    def save_prior(self, relay: str, body: str, jobs: int) -> None:
        self.writers.append(threading.current_thread().name)
        super().save_prior(relay, body, jobs)


def test_saves_are_debounced_and_written_on_the_events_thread(tmp_path: Path) -> None:
    journal = _CountingJournal(tmp_path / "j.db")
    events: EventsThread[object] = EventsThread(lambda run: None, name="test-events")
    job = Job(VideoRequest(prompt="x"), Backend(base_url="http://relay.test"), journal,
              tmp_path)
    book = PriorBook(lambda: events, save_every=3600.0)

    async def learn_five() -> None:
        prior = book.prior_for(job)
        for _ in range(5):                  # five completions in a burst
            prior.jobs_learned += 1
            assert prior.on_learn is not None
            prior.on_learn()
        await asyncio.wrap_future(events.submit(lambda: None))   # the events queue drained
        assert journal.writers == ["test-events"]      # the first; the rest wait
        book.flush(events)                             # at exit: the rest, in one write

    asyncio.run(learn_five())
    events.shutdown(wait=True)
    assert journal.writers == ["test-events", "test-events"]
    got = decode(journal.load_prior(relay_key(job)))
    assert got is not None and got[1] == 5
