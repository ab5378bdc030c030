"""Leases (issue 21 #3): a heartbeat renews only the rows this process owns, and says which
of the rows it asked about another process owns now (it took them over while this one was
frozen), on sqlite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sora_widgets.core.owner import current_owner
from sora_widgets.journal import Journal, open_journal

from .pg_fixtures import pg_server, pg_url
from .test_journal import accept, one

__all__ = ["pg_server", "pg_url"]   # fixtures used by name

OTHER = "other-host/boot/42/1/aaaaaaaaaaaa"


@pytest.fixture(params=["sqlite", "postgres"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Journal]:
    location = (str(tmp_path / "journal.sqlite3") if request.param == "sqlite"
                else str(request.getfixturevalue("pg_url")))
    journal = open_journal(location)
    yield journal
    journal.close()


def test_a_heartbeat_renews_only_the_rows_this_process_owns(journal: Journal) -> None:
    mine, watched = one(journal, "mine"), one(journal, "watched")
    for record in (mine, watched):
        accept(journal, record.local_id)
        journal.update(record.local_id, heartbeat_at=1.0)
    journal.update(watched.local_id, owner=OTHER)       # another host's row, lease lapsed

    lost = journal.heartbeat([mine.local_id, watched.local_id])

    renewed, left = journal.get(mine.local_id), journal.get(watched.local_id)
    assert renewed is not None and left is not None
    assert renewed.owner == str(current_owner()) and (renewed.heartbeat_at or 0) > 1.0
    assert left.heartbeat_at == 1.0, "a watched row's lease was renewed by a non-owner"
    assert lost == [watched.local_id]
    assert journal.heartbeat([]) == []
