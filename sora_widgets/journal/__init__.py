"""The durable job journal: one interface, two backends (sqlite file, PostgreSQL).

It stores, totals and reserves; it decides no money question (:mod:`sora_widgets.core.money`
does, from the totals it supplies). :meth:`Journal.claim` is the one atomic step of a paid
submit — the cache lookup, the caps' check and the intent inserts commit together, so two
processes (or two machines) sending the same request at the same instant pay once, and
concurrent submits cannot pass a cap together. The task id is
written right after the POST answer (:meth:`Journal.record_submitted`), before the
handle shows it. The API key is never stored.
"""

from __future__ import annotations

from sora_widgets.journal.base import Claim, JobRecord, Journal, Limits, Spend
from sora_widgets.journal.sqlite import SqliteJournal

__all__ = ["Claim", "JobRecord", "Journal", "Limits", "Spend", "SqliteJournal", "open_journal"]


def open_journal(location: str) -> Journal:
    """A journal for ``location``: a ``postgresql://`` URL, else a sqlite file path."""
    if location.startswith(("postgresql://", "postgres://")):
        from sora_widgets.journal.postgres import (
            PostgresJournal,  # psycopg is optional: imported only here
        )

        return PostgresJournal(location)
    return SqliteJournal(location)
