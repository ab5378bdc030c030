"""Issue 21, the money and journal findings: a $0 price (5), a poisoned row (6), database
passwords (9), a cleartext uploader link (11), a COMMIT whose reply is lost (2).

Real servers only: the emulator as the paid relay, a real PostgreSQL (``tests/pgserver.py``)
and, for the lost COMMIT, a small TCP proxy in front of it that forwards everything but
the server's answer to one COMMIT.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import sora_widgets as sw
from sora_widgets.core.catalog import Price
from sora_widgets.core.errors import JournalError, SoraError, ValidationError
from sora_widgets.core.lifecycle import Charge, Phase, RelayStatus, Status
from sora_widgets.core.models import VideoRequest
from sora_widgets.core.money import Limits
from sora_widgets.emulator import RunningEmulator
from sora_widgets.journal import open_journal
from sora_widgets.journal.postgres import PostgresJournal
from sora_widgets.studio.studio import Studio

from .pg_fixtures import pg_server, pg_url
from .pgserver import PASSWORD, PASSWORD_USER, PgServer

__all__ = ["pg_server", "pg_url"]   # fixtures used by name

ESC = "\x1b"


def cleartext_upload(path: Path) -> str:
    """An uploader (SORA_IMAGE_UPLOADER) whose link would cross the network in clear."""
    return "http://images.example.com/frame.jpg"


# -- 5: a $0 price never switches a budget off ------------------------------------------------


def test_a_zero_price_is_refused_before_anything_is_sent(relay: RunningEmulator,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         home: Path) -> None:
    monkeypatch.setenv("SORA_BUDGET_USD", "1.00")
    catalog = {"artifex": {"sora-2": {"price": {"per": "clip", "usd": 0}}}}
    home.mkdir(parents=True, exist_ok=True)
    (home / "catalog.json").write_text(json.dumps(catalog))
    for attempt in range(4):
        with pytest.raises(ValidationError, match=r"never charges nothing"):
            sw.generate(f"a free clip, take {attempt}")
    (home / "catalog.json").unlink()
    monkeypatch.setenv("SORA_PRICE_USD", "0")
    with pytest.raises(ValidationError, match=r"never charges nothing"):
        sw.generate("a clip at a flat $0")
    assert relay.stats()["posts"] == 0
    # The emulator is free by nature: the same $0 price is fine there.
    monkeypatch.delenv("SORA_API_KEY")
    monkeypatch.delenv("SORA_BASE_URL")
    assert sw.generate("on the emulator", wait=True, timeout=60).cost_usd == 0.0


def test_no_price_rounds_down_to_zero() -> None:
    assert Price("second", 0.001).of("1280x720", 4) == 0.01
    assert Price("second", 0.004).of("1280x720", 4) == 0.02
    assert Price("clip", 0.90).of(None, 12) == 0.90
    assert Price("second", 0.10).of("1280x720", 8) == 0.80


def test_a_team_cap_counts_a_teammates_zero_priced_rows(tmp_path: Path) -> None:
    journal = open_journal(str(tmp_path / "journal.sqlite3"))
    request = VideoRequest.create("a fox")
    with pytest.raises(ValidationError, match="never charges nothing"):
        journal.claim(request=request, backend="https://relay.example", emulator=False,
                      price_usd=0.0, session="s", new_ids=["zero"])
    # A teammate's old client wrote 90 paid rows at $0: they still fill a $0.90 team cap.
    db = sqlite3.connect(tmp_path / "journal.sqlite3")
    row = {"fingerprint": "f", "request": json.dumps(request.to_json()),
           "backend": "https://relay.example", "emulator": 0, "status": Status.QUEUED.value,
           "phase": Phase.POLLING.value, "price_usd": 0.0, "charge": Charge.CHARGED.value,
           "session": "teammate", "pid": 1, "created_at": time.time(),
           "updated_at": time.time(), "user_name": "bob"}
    for i in range(90):
        values = {**row, "local_id": f"t{i}", "task_id": f"task-{i}"}
        db.execute(f"INSERT INTO jobs ({', '.join(values)}) VALUES "
                   f"({', '.join('?' for _ in values)})", tuple(values.values()))
    db.commit()
    db.close()
    with pytest.raises(sw.BudgetExceededError) as refused:
        journal.claim(request=VideoRequest.create("mine"), backend="https://relay.example",
                      emulator=False, price_usd=0.90, session="me",
                      limits=Limits(team_usd=0.90), new_ids=["mine"])
    assert refused.value.spent_usd == 0.90 and "bob $0.90" in str(refused.value)
    journal.close()


# -- 6: a poisoned row is shown, never raised, never sent -------------------------------------


def _poison(studio: Studio, *, phase: Phase, task_id: str | None) -> str:
    """A teammate writes a row straight into the journal: an ESC in its prompt."""
    journal = studio.journal()
    record = journal.claim(request=VideoRequest.create(f"clean {uuid.uuid4().hex}"),
                           backend="emulator",
                           emulator=True, price_usd=0.0, session="teammate", user="mallory",
                           new_ids=[uuid.uuid4().hex]).created[0]
    body = {"model": "sora-2", "prompt": f"red {ESC}[31m alert {ESC}]0;pwned\a",
            "aspect_ratio": "16:9", "duration": 12}
    journal.update(record.local_id, request=json.dumps(body), phase=phase.value,
                   task_id=task_id, relay_status=RelayStatus.QUEUED.value,
                   status=Status.QUEUED.value, user_name=None)
    return record.local_id


def test_a_poisoned_row_breaks_neither_history_nor_resume(studio: Studio,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    from sora_widgets.ui.cli import main

    bad = _poison(studio, phase=Phase.SETTLED, task_id="task-poisoned")
    waiting = _poison(studio, phase=Phase.POLLING, task_id="task-poisoned-2")
    odd = _poison(studio, phase=Phase.SETTLED, task_id="task-odd")
    studio.journal().update(odd, phase="bogus", charge="free", relay_status="???")
    good = sw.generate("a good clip", wait=True, timeout=60)
    listed = {job.local_id: job for job in sw.jobs()}
    assert {bad, waiting, odd, good.local_id} <= set(listed)
    assert listed[odd].settled and listed[odd].charge == Charge.MAYBE
    shown = listed[bad].prompt
    assert ESC not in shown and "\a" not in shown and "alert" in shown
    assert {job.local_id for job in sw.jobs(team=True)} >= {bad, waiting, good.local_id}
    assert waiting in {job.local_id for job in sw.resume()}
    capsys.readouterr()
    assert main(["jobs"]) == 0 and main(["jobs", "--team"]) == 0
    out = capsys.readouterr().out
    assert ESC not in out and "alert" in out
    # Sending it again is refused before anything leaves.
    record = studio.journal().get(bad)
    assert record is not None
    with pytest.raises(ValidationError, match="cannot be sent"):
        studio.submit(record.video_request, force=True)


# -- 9: database passwords are masked everywhere ------------------------------------------


def _everything_shown(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


def test_a_password_in_the_query_is_masked_everywhere(pg_server: PgServer, pg_url: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    database = pg_url.rsplit("/", 1)[1]
    open_journal(pg_url).close()
    pg_server.sql(f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO "
                  f"{PASSWORD_USER}", database=database)
    base = pg_server.url(database, user=PASSWORD_USER)
    journal = open_journal(f"{base}?password={PASSWORD}&application_name=sw")
    assert PASSWORD not in journal.location and PASSWORD not in repr(journal)
    assert "password=***" in journal.location
    journal.close()
    wrong = "wrong-horse-battery"
    with pytest.raises(JournalError) as failed:
        PostgresJournal(f"{base}?password={wrong}", connect_timeout=5)
    assert wrong not in _everything_shown(failed.value)
    assert "refused the login" in str(failed.value)
    monkeypatch.setenv("PGPASSWORD", "pg-env-secret-staple")
    with pytest.raises(JournalError) as failed:
        PostgresJournal(base, connect_timeout=5)
    assert "pg-env-secret-staple" not in _everything_shown(failed.value)


# -- 11: an uploader's link must be https -----------------------------------------------------


def test_an_uploader_returning_a_cleartext_link_is_refused(relay: RunningEmulator,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    parent = sw.generate("a kite over a hill", wait=True, timeout=60)
    monkeypatch.setenv("SORA_IMAGE_UPLOADER", f"{__name__}:cleartext_upload")
    with pytest.raises(ValidationError, match="https"):
        parent.continue_with("the string snaps")
    assert relay.stats()["posts"] == 1


# -- 2: a COMMIT whose reply is lost ------------------------------------------------------------


#: The wire form of a simple-protocol ``COMMIT`` (psycopg ends a transaction with it).
_COMMIT = b"Q\x00\x00\x00\x0bCOMMIT\x00"


class CommitReplyDropper:
    """A TCP proxy in front of PostgreSQL: once armed, it forwards the next COMMIT to the
    server, waits for the server's answer (so the commit really happened) and, instead of
    passing it on, cuts both connections."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.armed = threading.Event()
        self.dropped = threading.Event()
        #: While set, new connections are cut at once (the database is out of reach).
        self.blackout = threading.Event()
        self.blackout_after_drop = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.blackout.is_set():
                client.close()
                continue
            server = socket.create_connection(("127.0.0.1", self.target))
            committing = threading.Event()
            threading.Thread(target=self._up, args=(client, server, committing),
                             daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, committing),
                             daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket,
            committing: threading.Event) -> None:
        with contextlib_suppress():
            while data := client.recv(65536):
                if self.armed.is_set() and _COMMIT in data:
                    self.armed.clear()
                    committing.set()
                server.sendall(data)

    def _down(self, server: socket.socket, client: socket.socket,
              committing: threading.Event) -> None:
        with contextlib_suppress():
            while data := server.recv(65536):
                if committing.is_set():           # the server's answer to COMMIT: lost
                    if self.blackout_after_drop:
                        self.blackout.set()
                    self.dropped.set()
                    for end in (client, server):
                        end.shutdown(socket.SHUT_RDWR)
                        end.close()
                    return
                client.sendall(data)

    def close(self) -> None:
        self._closing = True
        self.listener.close()


class contextlib_suppress:
    """Suppress the socket errors of a connection the proxy itself cut."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: object, tb: object) -> bool:
        return isinstance(exc, OSError)


@pytest.fixture
def dropper(pg_server: PgServer) -> Iterator[CommitReplyDropper]:
    proxy = CommitReplyDropper(pg_server.port)
    yield proxy
    proxy.close()


def test_a_lost_commit_reply_is_resolved_by_reading_back(
        dropper: CommitReplyDropper, pg_url: str, relay: RunningEmulator,
        monkeypatch: pytest.MonkeyPatch) -> None:
    proxied = pg_url.replace(f":{dropper.target}/", f":{dropper.port}/")
    monkeypatch.setenv("SORA_JOURNAL_URL", proxied)
    studio = Studio()
    try:
        studio.journal()                       # opened (migrated) before the proxy bites
        dropper.armed.set()
        job = studio.generate("a commit whose answer is lost", wait=True, timeout=60)
        assert dropper.dropped.is_set(), "the proxy never dropped a COMMIT reply"
        assert job.status == Status.COMPLETED and job.local_path is not None
        assert relay.stats()["posts"] == 1
        rows = studio.journal().history()
        assert [r.local_id for r in rows] == [job.local_id]
        assert rows[0].charge == Charge.CHARGED.value
    finally:
        studio.close()


def test_a_claim_whose_outcome_cannot_be_read_is_settled_as_not_sent(
        dropper: CommitReplyDropper, pg_url: str) -> None:
    """The commit's answer is lost and the database stays out of reach for the read-back:
    the claim raises (nothing was sent); the rows this live process wrote and holds no
    handle for are settled at its next claim: not charged, never joined by a re-run."""
    journal = open_journal(pg_url.replace(f":{dropper.target}/", f":{dropper.port}/"))
    request = VideoRequest.create("an unconfirmed claim")
    dropper.blackout_after_drop = True
    dropper.armed.set()
    with pytest.raises(JournalError, match="nothing was sent"):
        journal.claim(request=request, backend="https://relay.example", emulator=False,
                      price_usd=0.90, session="s", new_ids=["orphan"])
    assert dropper.dropped.is_set()
    dropper.blackout.clear()                  # the database is reachable again
    again = journal.claim(request=request, backend="https://relay.example", emulator=False,
                          price_usd=0.90, session="s", new_ids=["fresh"])
    assert again.reused == [] and [r.local_id for r in again.created] == ["fresh"]
    orphan = journal.get("orphan")
    assert orphan is not None and orphan.phase == Phase.SETTLED.value
    assert orphan.charge == Charge.NONE.value and orphan.cost_usd == 0.0
    assert orphan.status == Status.FAILED.value
    journal.close()


# -- 7: a row's local_path is a teammate's data, not a path to trust ----------------------------


@pytest.mark.slow     # download() asks the relay for the video again before it gives up
def test_a_row_pointing_outside_the_videos_folder_is_a_missing_video(
        studio: Studio, tmp_path: Path) -> None:
    secret = tmp_path / "id_ed25519"
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY----- not for anyone")
    good = sw.generate("a clip of my own", wait=True, timeout=60)
    assert good.local_path is not None
    videos = good.local_path.parent
    link = videos / "looks-like-a-video.mp4"
    link.symlink_to(secret)                       # inside the folder by name, outside in fact
    journal = studio.journal()
    rows = []
    for where in (secret, link):
        record = journal.claim(request=VideoRequest.create(f"theirs {uuid.uuid4().hex}"),
                               backend="emulator", emulator=True, price_usd=0.0,
                               session="teammate", user="mallory",
                               new_ids=[uuid.uuid4().hex]).created[0]
        journal.update(record.local_id, phase=Phase.SETTLED.value, task_id="task-theirs",
                       relay_status=RelayStatus.COMPLETED.value,
                       status=Status.COMPLETED.value, local_path=str(where))
        rows.append(record.local_id)
    listed = {job.local_id: job for job in sw.jobs(team=True)}
    assert listed[good.local_id].local_path == good.local_path      # our own still plays
    for local_id in rows:
        job = listed[local_id]
        assert job.local_path is None and job.poster_path is None
        with pytest.raises(SoraError):    # fetched again from the relay, never the file
            job.download(tmp_path / "copy.mp4")
    assert not (tmp_path / "copy.mp4").exists()
