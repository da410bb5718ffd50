"""`provgit journal migrate --to postgresql://...`: the state directory's
SQLite journal copied into a real PostgreSQL database (tests/journal/pg.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from api.conftest import edit_element, element_record, sample  # noqa: F401 (fixture)
from api.test_api import NEW_USER
from apply.helpers import cli
from provgit.journal.transfer import TABLES

from . import pg

PW_ENV = "PROVGIT_TEST_MIGRATE_PW"


def _sqlite_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {
            t: conn.execute(
                f"SELECT count(*) FROM {t}"
                + (" WHERE k <> 'schema_version'" if t == "meta" else "")
            ).fetchone()[0]
            for t in TABLES
        }


def _pg_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            t: conn.execute(
                f"SELECT count(*) FROM {t}"
                + (" WHERE k <> 'schema_version'" if t == "meta" else "")
            ).fetchone()[0]  # type: ignore[index]
            for t in TABLES
        }


def _journal_with_an_error(config: Path) -> None:
    """Two reconciles on the SQLite journal, the second leaving a distribution error."""
    assert cli("reconcile", str(config)).code == 0
    sales = config / "people" / "sales.yaml"
    sales.write_text(sales.read_text() + NEW_USER)
    state = config / ".provgit"
    record = element_record(state, "mivb3", "users", "jpatel")
    record["login_id"] = "intruder"
    record["services"][0]["dn"] = "3999"
    edit_element(state, "mivb3", "users", "intruder", record)
    assert cli("reconcile", str(config)).code == 4


def test_migrate_copies_every_table_and_the_next_run_continues_on_postgresql(
    sample: Path,  # noqa: F811
    pg_server: pg.Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _journal_with_an_error(sample)
    source = sample / ".provgit" / "journal.sqlite"
    before = _sqlite_counts(source)
    database = pg_server.new_database()
    monkeypatch.setenv(PW_ENV, pg.PASSWORD)

    moved = cli(
        "journal", "migrate", "--to", database, "--password-env", PW_ENV, "--config", str(sample)
    )
    assert moved.code == 0, moved.err
    assert _pg_counts(pg_server.url(database)) == before
    assert before["runs"] == 2 and before["dist_errors"] == 1 and before["intents"] > 0
    assert f"url: {database}" in moved.out and f"password: {{env: {PW_ENV}}}" in moved.out
    assert _sqlite_counts(source) == before  # the file is only read

    # The same errors and status, now read from PostgreSQL.
    errors = cli(
        "--journal-url", pg_server.url(database), "errors", "list", "--config", str(sample)
    )
    assert errors.code == 0 and "zwu" in errors.out
    # A new run's ids follow the copied ones (the sequences moved past them).
    again = cli("--journal-url", pg_server.url(database), "reconcile", str(sample))
    assert again.code == 4, again.err
    with psycopg.connect(pg_server.url(database)) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM runs ORDER BY id")]
    assert ids == [1, 2, 3]
    assert pg.PASSWORD not in moved.out + moved.err + errors.out + again.out + again.err


def test_migrate_refuses_a_database_that_holds_a_journal_unless_forced(
    sample: Path,  # noqa: F811
    pg_server: pg.Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _journal_with_an_error(sample)
    database = pg_server.new_database()
    url = pg_server.url(database)
    assert cli("--journal-url", url, "reconcile", str(sample)).code == 4
    held = _pg_counts(url)
    monkeypatch.setenv(PW_ENV, pg.PASSWORD)
    args = ("journal", "migrate", "--to", database, "--password-env", PW_ENV)

    refused = cli(*args, "--config", str(sample))
    assert refused.code == 1
    assert "already holds rows (" in refused.err and "--force" in refused.err
    assert _pg_counts(url) == held  # nothing changed

    forced = cli(*args, "--force", "--config", str(sample))
    assert forced.code == 0, forced.err
    assert "replaced the" in forced.out
    assert _pg_counts(url) == _sqlite_counts(sample / ".provgit" / "journal.sqlite")


def test_migrate_never_shows_the_password_even_when_the_server_refuses_it(
    sample: Path,  # noqa: F811
    pg_server: pg.Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert cli("reconcile", str(sample)).code == 0
    database = pg_server.new_database()
    wrong = "wrong-pw-" + pg.PASSWORD[::-1]
    in_url = database.replace(f"//{pg.USER}@", f"//{pg.USER}:{wrong}@", 1)
    refused = cli("journal", "migrate", "--to", in_url, "--config", str(sample))
    assert refused.code == 1
    assert "cannot open the journal" in refused.err and "password authentication" in refused.err
    assert wrong not in refused.out + refused.err
    monkeypatch.setenv(PW_ENV, wrong)
    from_env = cli(
        "journal", "migrate", "--to", database, "--password-env", PW_ENV, "--config", str(sample)
    )
    assert from_env.code == 1 and wrong not in from_env.out + from_env.err
    # And a password that works, in the URL: not in the output either.
    monkeypatch.delenv(PW_ENV)
    moved = cli("journal", "migrate", "--to", pg_server.url(database), "--config", str(sample))
    assert moved.code == 0, moved.err
    assert pg.PASSWORD not in moved.out + moved.err
    assert f"url: {database}" in moved.out


def test_migrate_without_a_journal_to_copy_is_a_clear_error(
    sample: Path,  # noqa: F811
    pg_server: pg.Server,
) -> None:
    database = pg_server.new_database()
    ran = cli("journal", "migrate", "--to", pg_server.url(database), "--config", str(sample))
    assert ran.code == 1
    assert "no journal at" in ran.err
    with psycopg.connect(pg_server.url(database)) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchone() == (0,)


def test_a_missing_password_variable_is_a_usage_error(sample: Path) -> None:  # noqa: F811
    ran = cli(
        "journal",
        "migrate",
        "--to",
        "postgresql://u@127.0.0.1/db",
        "--password-env",
        "PROVGIT_TEST_NOT_SET",
        "--config",
        str(sample),
    )
    assert ran.code == 1 and "PROVGIT_TEST_NOT_SET" in ran.err
