"""A journal URL that names a database provgit does not own: another
application's tables with provgit's names (runs, events), or a provgit
journal from a newer provgit. provgit must refuse before any element write and
change nothing in that database. Real PostgreSQL, provgit as a process."""

from __future__ import annotations

from pathlib import Path

import psycopg

from api.conftest import sample  # noqa: F401 (the sample config fixture)
from apply.helpers import cli_process

from . import pg

PW_ENV = "PROVGIT_TEST_JOURNAL_PW"


def _with_journal(config: Path, database_url: str) -> None:
    settings = config / "provgit.yaml"
    settings.write_text(
        settings.read_text() + f"\njournal:\n  url: {database_url}\n  password: {{env: {PW_ENV}}}\n"
    )


def _tables(url: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(url) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        return {n: conn.execute(f"SELECT * FROM {n} ORDER BY 1").fetchall() for n in names}


def _element_files(state: Path) -> list[Path]:
    return sorted((state / "elements").glob("*.sqlite")) if (state / "elements").exists() else []


def test_a_journal_url_naming_another_applications_database_is_refused_untouched(
    sample: Path,  # noqa: F811
    pg_server: pg.Server,
) -> None:
    database = pg_server.new_database()
    url = pg_server.url(database)
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE runs (id serial PRIMARY KEY, customer text NOT NULL)")
        conn.execute("CREATE TABLE events (id serial PRIMARY KEY, what text)")
        conn.execute("INSERT INTO runs (customer) VALUES ('acme'), ('globex')")
        conn.execute("INSERT INTO events (what) VALUES ('invoice sent')")
    before = _tables(url)
    _with_journal(sample, database)
    state = sample / ".provgit"

    ran = cli_process("reconcile", str(sample), env={PW_ENV: pg.PASSWORD})
    assert ran.code == 1, ran.out + ran.err
    assert "not a provgit journal" in ran.err and "runs" in ran.err, ran.err
    assert "Traceback" not in ran.err and pg.PASSWORD not in ran.out + ran.err
    assert _tables(url) == before
    assert all(not _has_records(f) for f in _element_files(state))

    status = cli_process("status", str(sample), env={PW_ENV: pg.PASSWORD})
    assert status.code == 1 and "not a provgit journal" in status.err, status.out + status.err
    assert _tables(url) == before


def _has_records(store: Path) -> bool:
    from apply.helpers import read_store

    return any(read_store(store).values())


def test_a_postgresql_journal_from_a_newer_provgit_is_refused_untouched(
    sample: Path,  # noqa: F811
    pg_server: pg.Server,
) -> None:
    database = pg_server.new_database()
    url = pg_server.url(database)
    _with_journal(sample, database)
    first = cli_process("reconcile", str(sample), env={PW_ENV: pg.PASSWORD})
    assert first.code in (0, 4), first.out + first.err
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE meta SET v = '999' WHERE k = 'schema_version'")
        conn.execute("CREATE TABLE future_things (id int)")
    before = _tables(url)

    ran = cli_process("reconcile", str(sample), env={PW_ENV: pg.PASSWORD})
    assert ran.code == 1, ran.out + ran.err
    assert "from a newer provgit (schema 999" in ran.err, ran.err
    assert _tables(url) == before
