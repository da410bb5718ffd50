"""The journal's backends: every test taking `backend` runs on the SQLite file
and on a real PostgreSQL server (one throwaway cluster per test worker, a new
database per test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from provgit.journal import location

from . import pg


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg.Server]:
    why = pg.missing()
    if why is not None:
        pytest.fail(f"PostgreSQL is needed for the journal tests: {why}")
    with pg.running() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: pg.Server) -> str:
    """A new database's URL, password included."""
    return pg_server.url(pg_server.new_database())


@pytest.fixture(autouse=True)
def _journal_in_the_state_directory() -> Iterator[None]:
    """No test leaves a journal URL (from --journal-url or provgit.yaml) behind."""
    yield
    location.use_journal_url(None)
    location.use_network(None)
    location.configure(None)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The journal on this backend for the test (for PostgreSQL: a new database)."""
    if request.param == "postgresql":
        location.use_journal_url(request.getfixturevalue("pg_url"))
    try:
        yield str(request.param)
    finally:
        location.use_journal_url(None)
