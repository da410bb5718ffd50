"""Every PostgreSQL journal of a process borrows from one bounded pool per
database (journal/pool.py): many fleet networks' journals, each in its own
schema, never open more than `journal.pool_size` connections, a connection
going back keeps no network's search_path and no open transaction, and a pool
whose connections all stay in use makes a waiting statement fail with a clear
error (no deadlock) that the status and the log can show. Real PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from provgit.journal import Journal, location, pool
from provgit.journal.location import JournalLocation, for_network, use_scoped
from provgit.journal.postgres import connect

from . import pg

NETWORKS = 20


@pytest.fixture
def app_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The name this test's sessions show in pg_stat_activity (PGAPPNAME)."""
    name = f"provgit-test-{tmp_path.name[-20:]}"
    monkeypatch.setenv("PGAPPNAME", name)
    return name


@pytest.fixture
def scoped() -> Iterator[None]:
    yield
    use_scoped(None)
    location.use_journal_url(None)


def _sessions(pg_server: pg.Server, app: str) -> int:
    # Named apart: libpq would give this session PGAPPNAME too.
    with psycopg.connect(pg_server.admin_url, autocommit=True, application_name="x") as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def _network_journal(url: str, tmp: Path, name: str, size: int) -> Journal:
    use_scoped(for_network(JournalLocation(url, pool_size=size), name))
    return Journal.open(tmp / name, patient=False)


def test_twenty_network_journals_share_a_pool_within_its_bound_and_each_keeps_its_rows(
    pg_url: str, pg_server: pg.Server, tmp_path: Path, app_name: str, scoped: None
) -> None:
    size = 5  # 3 for the journals, 2 for the leases
    journals = [_network_journal(pg_url, tmp_path, f"net-{i:02d}", size) for i in range(NETWORKS)]
    most = 0
    errors: list[BaseException] = []
    counting = threading.Event()

    def count() -> None:
        nonlocal most
        while not counting.is_set():
            most = max(most, _sessions(pg_server, app_name))

    def work(i: int, j: Journal) -> None:
        try:
            for n in range(2):
                with j.transaction():
                    run = j.start_run("reconcile", 1000 + i, f"host-{i}")
                    j.add_event("sync_completed", f"net-{i:02d} round {n}", run_id=run)
                j.finish_run(run, "Sync Completed", {"network": i})
        except BaseException as e:  # the assertion below shows it
            errors.append(e)

    watcher = threading.Thread(target=count)
    watcher.start()
    try:
        threads = [threading.Thread(target=work, args=(i, j)) for i, j in enumerate(journals)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        counting.set()
        watcher.join()
    assert errors == []
    assert 1 <= most <= size - pool.LEASE_CONNECTIONS, most
    # Each network's journal holds its own runs only: no statement ran under
    # another network's search_path.
    for i, j in enumerate(journals):
        runs = j.runs()
        assert len(runs) == 2 and {r["host"] for r in runs} == {f"host-{i}"}, i
    # Every connection lent out came back (none leaks past its statement).
    assert [s.in_use for s in pool.stats()] == [0] * len(pool.stats())
    for j in journals:
        j.close()
    # The pool closed with its last journal, every connection with it; a
    # backend leaves the server's list once its process exits (slow when the
    # machine is loaded, hence the generous bound).
    assert pool.stats() == []
    deadline = time.monotonic() + 90
    while _sessions(pg_server, app_name) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sessions(pg_server, app_name) == 0


def test_a_connection_given_back_keeps_no_search_path_and_no_open_transaction(
    pg_url: str, tmp_path: Path, app_name: str, scoped: None
) -> None:
    size = pool.LEASE_CONNECTIONS + 1  # one journal connection: every checkout reuses it
    a = _network_journal(pg_url, tmp_path, "alpha", size)
    b = _network_journal(pg_url, tmp_path, "beta", size)
    db: Any = a._store.db
    # A transaction left open (a process stopped mid-way) by closing its journal.
    db.begin()
    db.execute("INSERT INTO meta (k, v) VALUES ('left-open', 'x')")
    db.execute("SET LOCAL lock_timeout = 1")
    a.close()
    shared = pool.acquire(pg_url, None, "test", size)
    try:
        conn = shared.get(5.0)
        try:
            assert conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
            (path,) = conn.execute("SHOW search_path").fetchone()
            assert "provgit_net" not in path, path
            (rows,) = conn.execute(
                "SELECT count(*) FROM provgit_net_alpha.meta WHERE k = 'left-open'"
            ).fetchone()
            assert rows == 0  # rolled back, not committed by the next borrower
        finally:
            shared.put(conn)
    finally:
        pool.release(shared)
    assert b.meta("left-open") is None
    b.close()


def test_an_exhausted_pool_fails_the_waiting_statement_clearly_and_recovers(
    pg_url: str, app_name: str
) -> None:
    heard: list[dict[str, Any]] = []
    pool.on_exhausted(heard.append)
    size = pool.LEASE_CONNECTIONS + 1  # one journal connection
    holder = connect(pg_url, None, 2.0, schema="provgit_net_one", create=True, pool_size=size)
    other = connect(pg_url, None, 2.0, schema="provgit_net_two", create=True, pool_size=size)
    try:
        holder.begin()  # holds the only journal connection
        with pytest.raises(psycopg.OperationalError) as raised:
            other.execute("SELECT 1")
        assert isinstance(raised.value, pool.pool_exhausted())
        text = str(raised.value)
        assert "all 1 journal connections" in text and "journal.pool_size" in text, text
        assert pg.PASSWORD not in text
        assert len(heard) == 1 and heard[0]["in_use"] == 1 and heard[0]["exhausted"] == 1
        stats = {s.kind: s for s in pool.stats()}
        assert stats["journal"].exhausted == 1 and stats["journal"].last_exhausted is not None
        holder.execute("COMMIT")
        assert other.execute("SELECT 1").fetchone() == (1,)  # no deadlock: it goes on
    finally:
        pool.on_exhausted(None)
        holder.close()
        other.close()
