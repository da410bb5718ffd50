"""Fleet networks' journals share pooled connections (journal/pool.py): a
statement that fails, or is cancelled by one network's statement_timeout,
inside the pipeline that carries that network's settings must leave none of
them to the next borrower (its schema would take another network's rows, its
timeout would cancel another network's statements). Real PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from provgit.journal import pool

from .test_journal_pool import _network_journal, app_name, scoped  # noqa: F401


def test_a_failed_or_cancelled_statement_leaves_no_network_settings_to_the_next(
    pg_url: str,
    tmp_path: Path,
    app_name: str,  # noqa: F811
    scoped: None,  # noqa: F811
) -> None:
    size = pool.LEASE_CONNECTIONS + 1  # one journal connection: every checkout reuses it
    alpha = _network_journal(pg_url, tmp_path, "alpha", size)
    beta = _network_journal(pg_url, tmp_path, "beta", size)
    a: Any = alpha._store.db
    b: Any = beta._store.db
    try:
        a.execute("INSERT INTO meta (k, v) VALUES ('who', 'alpha')")
        # beta's first statement on alpha's connection fails in its pipeline.
        with pytest.raises(psycopg.errors.UndefinedTable):
            b.execute("SELECT * FROM no_such_table")
        b.execute("INSERT INTO meta (k, v) VALUES ('who', 'beta')")
        # beta's own timeout cancels beta's statement, on the shared connection.
        b.execute("SET statement_timeout = 50")
        with pytest.raises(psycopg.errors.QueryCanceled):
            b.execute("SELECT pg_sleep(5)")
        a.execute("SELECT pg_sleep(0.3)")  # not cancelled: beta's timeout stayed with beta
        with pytest.raises(psycopg.errors.UndefinedTable):
            a.execute("SELECT * FROM no_such_table")
        with pytest.raises(psycopg.errors.QueryCanceled):
            b.execute("SELECT pg_sleep(5)")  # and beta's is still beta's
        assert alpha.meta("who") == "alpha"
        assert beta.meta("who") == "beta"
    finally:
        alpha.close()
        beta.close()
