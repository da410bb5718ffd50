"""The PostgreSQL journal's connection drops in the middle of a real apply over
simulators: no element write goes out without its intent journaled, the run
ends with a clear message and exit code, and the next run settles it."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from apply.helpers import Ran, Sim, cli_process, start_sims, write_config
from support import pg_drop_at

from . import pg

pytestmark = pytest.mark.slow

SERIAL = "  batch_size: 1\n  batches_in_flight: 1\n  element_concurrency: 1\n"


@pytest.fixture
def sims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Sim]]:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    started = start_sims(tmp_path, [("cs1", "mivb"), ("cs2", "mivb")])
    try:
        yield started
    finally:
        for s in started:
            s.stop()


def _reconcile_dropped_at(
    point: str, server: pg.Server, url: str, config: Path, keep_out: str = "-"
) -> Ran:
    argv = pg_drop_at.command(
        point, server.admin_url, keep_out, "--journal-url", url, "reconcile", str(config)
    )
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=dict(os.environ))
    return Ran(p.returncode, p.stdout, p.stderr)


def _open_intents(url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT i.element, i.collection, i.key FROM intents i "
            "LEFT JOIN outcomes o ON o.intent_id = i.id WHERE o.intent_id IS NULL"
        ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def _journaled(url: str) -> set[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT element, collection, key FROM intents").fetchall()
    return {(str(a), str(b), str(c)) for a, b, c in rows}


def _on_sims(sims: list[Sim]) -> set[tuple[str, str, str]]:
    return {
        (sim.name, collection, key)
        for sim in sims
        for collection, records in sim.records().items()
        for key in records
    }


def _runs(url: str) -> list[tuple[int, str | None]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, outcome FROM runs ORDER BY id").fetchall()
    return [(int(i), o) for i, o in rows]


def test_a_journal_session_terminated_between_writes_reconnects_and_the_run_completes(
    sims: list[Sim], tmp_path: Path, pg_server: pg.Server
) -> None:
    url = pg_server.url(pg_server.new_database())
    config = write_config(tmp_path / "config", sims, users=6, extra_settings=SERIAL)
    ran = _reconcile_dropped_at("2", pg_server, url, config)
    # Every session of the CLI's pool (idle ones too) went; none was spared.
    assert re.search(r"pg_drop_at: ended [1-9]\d* provgit session\(s\)", ran.err), ran.err
    assert ran.code == 0, ran.out + ran.err
    assert _runs(url) == [(1, "Sync Completed")]
    assert _open_intents(url) == []
    written = _on_sims(sims)
    assert {key for _, c, key in written if c == "users"} == {f"user{i}" for i in range(6)}
    assert written <= _journaled(url)
    assert pg.PASSWORD not in ran.out + ran.err


def test_a_journal_down_past_the_retries_stops_the_apply_before_the_next_element_write(
    sims: list[Sim], tmp_path: Path, pg_server: pg.Server
) -> None:
    database = pg_server.new_database()
    url = pg_server.url(database)
    name = database.rsplit("/", 1)[1]
    config = write_config(tmp_path / "config", sims, users=6, extra_settings=SERIAL)
    try:
        # Write 11 is on cs1 (the embedded mcl takes the first 8).
        ran = _reconcile_dropped_at("11", pg_server, url, config, keep_out=name)
    finally:
        with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    assert ran.code == 1, ran.out + ran.err
    assert "Error: the run stopped: " in ran.err and "cannot be reached" in ran.err, ran.err
    assert "No element was written without its intent journaled" in ran.err
    assert "Traceback" not in ran.err and pg.PASSWORD not in ran.out + ran.err
    # Intent first: every record on an element has its intent in the journal;
    # the write whose outcome could not be recorded is an open intent.
    written = _on_sims(sims)
    assert written and written <= _journaled(url)
    assert len(_open_intents(url)) >= 1
    assert 0 < len(written) < 2 * 10  # it stopped: not every record was written

    # The database is back: the next run settles the open intent and finishes.
    again = cli_process("--journal-url", url, "reconcile", str(config))
    assert again.code == 0, again.out + again.err
    assert _open_intents(url) == []
    assert {key for _, c, key in _on_sims(sims) if c == "users"} == {f"user{i}" for i in range(6)}
    assert _runs(url)[-1][1] == "Sync Completed"


def test_a_journal_cluster_restarted_mid_apply_is_reconnected_and_the_run_completes(
    sims: list[Sim], tmp_path: Path
) -> None:
    # A cluster of its own: restarting the shared one would cut other tests off.
    with pg.running() as server:
        if server.restart_argv is None:
            pytest.skip("PROVGIT_TEST_PG_URL names a server this test cannot restart")
        url = server.url(server.new_database())
        config = write_config(tmp_path / "config", sims, users=6, extra_settings=SERIAL)
        restart = "restart:" + json.dumps(server.restart_argv)
        ran = _reconcile_dropped_at("11", server, url, config, keep_out=restart)
        assert "pg_drop_at: restarted the cluster" in ran.err, ran.err
        assert ran.code == 0, ran.out + ran.err
        assert _runs(url) == [(1, "Sync Completed")]
        assert _open_intents(url) == []
        written = _on_sims(sims)
        assert {key for _, c, key in written if c == "users"} == {f"user{i}" for i in range(6)}
        assert written <= _journaled(url)
