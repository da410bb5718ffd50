"""A journal location written as a libpq key=value string (`host=db
password=...`), which psycopg takes as well as a URL: nothing redacted it.
A wrong password's refusal printed it whole, and `journal migrate --to` that
succeeded printed the password in the `journal: url:` line it tells the
admin to paste into provgit.yaml (the repository). Only a postgresql:// URL
is taken now, and the refusal does not show the string. Real PostgreSQL,
provgit as a process."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from apply.helpers import cli_process, write_config

from . import pg

WRONG = "wrong-pw-4b7d1"


def _keywords(url: str, password: str) -> str:
    parts = urlsplit(url)
    return (
        f"host={parts.hostname} port={parts.port} dbname={parts.path.lstrip('/')} "
        f"user={parts.username} password={password}"
    )


def test_a_keyword_journal_location_with_a_wrong_password_is_not_shown(
    pg_server: pg.Server, tmp_path: Path
) -> None:
    dsn = _keywords(pg_server.new_database(), WRONG)
    for argv, env in (
        (("--journal-url", dsn, "status", "--state-dir", str(tmp_path / "s")), None),
        (("status", "--state-dir", str(tmp_path / "s")), {"PROVGIT_JOURNAL_URL": dsn}),
    ):
        ran = cli_process(*argv, env=env)
        assert ran.code == 1, ran.out + ran.err
        assert "postgresql://" in ran.err
        assert WRONG not in ran.out + ran.err


@pytest.mark.slow
def test_journal_migrate_to_a_keyword_location_prints_no_password(
    pg_server: pg.Server, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config", [], users=0)
    assert cli_process("reconcile", str(config)).code == 0
    dsn = _keywords(pg_server.new_database(), pg.PASSWORD)
    ran = cli_process("journal", "migrate", "--to", dsn, "--config", str(config))
    assert pg.PASSWORD not in ran.out + ran.err
    assert ran.code == 1, ran.out + ran.err
    assert "postgresql://" in ran.err
