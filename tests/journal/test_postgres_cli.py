"""`provgit reconcile` and `provgit status` of the sample config with the
journal on a real PostgreSQL server (tests/journal/pg.py), selected by
provgit.yaml's `journal:` or --journal-url."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from api.conftest import sample  # noqa: F401 (the sample config fixture)
from apply.helpers import cli
from provgit.journal import location

from . import pg


def _with_journal(config: Path, database_url: str) -> None:
    settings = config / "provgit.yaml"
    settings.write_text(
        settings.read_text()
        + f"\njournal:\n  url: {database_url}\n  password: {{env: PROVGIT_TEST_JOURNAL_PW}}\n"
    )


def test_reconcile_and_status_of_the_sample_keep_the_journal_in_postgresql(
    sample: Path,  # noqa: F811
    pg_server: pg.Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database = pg_server.new_database()
    _with_journal(sample, database)
    monkeypatch.setenv("PROVGIT_TEST_JOURNAL_PW", pg.PASSWORD)

    ran = cli("reconcile", str(sample))
    assert ran.code == 0, ran.err
    status = cli("status", str(sample))
    assert status.code == 0, status.err
    assert "Sync Completed" in status.out
    assert not (sample / ".provgit" / "journal.sqlite").exists()
    with psycopg.connect(pg_server.url(database)) as conn:
        runs = conn.execute("SELECT command, outcome FROM runs ORDER BY id").fetchall()
        statuses = conn.execute("SELECT count(*) FROM element_status").fetchone()
    assert runs == [("reconcile", "Sync Completed")]
    assert statuses is not None and statuses[0] > 0
    # A second reconcile finds nothing to do: it read the first one's journal.
    again = cli("reconcile", str(sample))
    assert again.code == 0, again.err
    assert pg.PASSWORD not in ran.out + ran.err + status.out + again.out + again.err


def test_an_unreadable_journal_password_is_a_clear_error_and_nothing_is_written(
    sample: Path,  # noqa: F811
    pg_server: pg.Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database = pg_server.new_database()
    _with_journal(sample, database)
    monkeypatch.delenv("PROVGIT_TEST_JOURNAL_PW", raising=False)
    ran = cli("reconcile", str(sample))
    assert ran.code == 1, (ran.out, ran.err)
    assert "journal.password env:PROVGIT_TEST_JOURNAL_PW is not usable here" in ran.err
    with psycopg.connect(pg_server.url(database)) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchone() == (0,)


def test_a_journal_server_that_is_down_stops_reconcile_before_any_element_write(
    sample: Path,  # noqa: F811
) -> None:
    down = f"postgresql://{pg.USER}:{pg.PASSWORD}@127.0.0.1:{pg._free_port()}/journal"
    ran = cli("--journal-url", down, "reconcile", str(sample))
    assert ran.code == 1, (ran.out, ran.err)
    assert f"cannot open the journal postgresql://{pg.USER}@127.0.0.1:" in ran.err
    assert pg.PASSWORD not in ran.out + ran.err
    assert not (sample / ".provgit" / "journal.sqlite").exists()
    status = cli("--journal-url", down, "status", str(sample))
    assert status.code == 1 and "cannot open the journal" in status.err
    assert pg.PASSWORD not in status.out + status.err
    # Nothing was applied: on the state directory's journal, every change is still to make.
    location.use_journal_url(None)
    assert cli("plan", "--detailed-exitcode", str(sample)).code == 2


def test_a_journal_url_holding_a_password_is_refused_without_printing_it(
    sample: Path,  # noqa: F811
) -> None:
    _with_journal(sample, f"postgresql://{pg.USER}:{pg.PASSWORD}@127.0.0.1:5432/journal")
    ran = cli("validate", str(sample))
    assert ran.code == 1, (ran.out, ran.err)
    assert "journal.url holds a password" in ran.out + ran.err
    assert "provgit.yaml:" in ran.out + ran.err
    assert pg.PASSWORD not in ran.out + ran.err
