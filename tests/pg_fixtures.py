"""Fixtures of the PostgreSQL tests: one real server per session, a database per test.

Import them into a test module (``from .pg_fixtures import pg_server, pg_url``); the
server is shared by every module of the session (see ``tests/pgserver.py``). A machine
without the server binaries fails these tests with what to install — never a skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .pgserver import PgServer, PgUnavailable, shared_server, stop_shared_server

__all__ = ["pg_server", "pg_url"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        server = shared_server()
    except PgUnavailable as exc:
        pytest.fail(f"the PostgreSQL tests need a real server: {exc}", pytrace=False)
    yield server
    stop_shared_server()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """The URL of a fresh, empty database on the session's server."""
    if not pg_server.started:         # another module's teardown stopped it: start anew
        pg_server = shared_server()
    return pg_server.create_database()
