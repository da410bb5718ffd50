"""A journal URL's password in a form the redaction did not know: libpq
percent-decodes query keys (`pass%77ord=` is `password=`) and `sslpassword`
unlocks the client key. Neither may reach an error message or the
repository's config. Real PostgreSQL, provgit as a process."""

from __future__ import annotations

from pathlib import Path

import pytest

from apply.helpers import cli_process

from . import pg

WRONG = "wrong-pw-7c1e9"


@pytest.mark.parametrize("key", ["pass%77ord", "%70assword", "PASSWORD", "sslpassword"])
def test_a_password_in_the_journal_url_query_never_reaches_the_output(
    pg_server: pg.Server, tmp_path: Path, key: str
) -> None:
    url = f"{pg_server.new_database()}?{key}={WRONG}"
    ran = cli_process("--journal-url", url, "status", "--state-dir", str(tmp_path / "s"))
    assert ran.code == 1, ran.out + ran.err
    assert "journal" in ran.err
    assert WRONG not in ran.out + ran.err


@pytest.mark.parametrize("key", ["pass%77ord", "sslpassword"])
def test_a_journal_url_in_the_config_with_an_encoded_password_is_refused(
    tmp_path: Path, key: str
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "provgit.yaml").write_text(
        f"version: 1\nnetwork: t\njournal:\n  url: postgresql://u@127.0.0.1/j?{key}={WRONG}\n"
    )
    ran = cli_process("validate", str(config))
    assert ran.code == 1, ran.out + ran.err
    assert "provgit.yaml:4:" in ran.out + ran.err and "journal.url holds a password" in ran.out
    assert WRONG not in ran.out + ran.err
