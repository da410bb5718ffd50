"""The journal API on both backends: the SQLite file and PostgreSQL (conftest's
`backend`), same migrations, same answers."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import psycopg
import pytest

from provgit.journal import (
    SCHEMA_VERSION,
    Intent,
    Journal,
    JournalError,
    JournalReader,
    LastWrite,
    journal_exists,
    location,
    read_journal,
)
from provgit.journal.schema import MIGRATIONS

from . import pg
from .test_reader import _everything, _journal_with_rows


def _without_times(values: list[object]) -> str:
    # Times differ between two runs (epoch floats, ISO strings); nothing else may.
    text = re.sub(r"\b1\d{9}(\.\d+)?", "T", repr(values))
    return re.sub(r"\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:\d\d)?", "T", text)


def test_a_new_journal_records_the_current_schema_version_on_each_backend(
    tmp_path: Path, backend: str
) -> None:
    with Journal.open(tmp_path) as j:
        assert j.meta("schema_version") == str(SCHEMA_VERSION)
    # Opening again migrates nothing and keeps the rows.
    with Journal.open(tmp_path) as j:
        j.add_event("sync_completed", "kept")
    with Journal.open(tmp_path) as j:
        assert [e.message for e in j.events()] == ["kept"]
    assert (tmp_path / "journal.sqlite").exists() == (backend == "sqlite")


def test_every_read_answers_the_same_on_both_backends(tmp_path: Path, pg_url: str) -> None:
    _, on_sqlite = _journal_with_rows(tmp_path / "sqlite")
    location.use_journal_url(pg_url)
    try:
        _, on_postgres = _journal_with_rows(tmp_path / "pg")
        with JournalReader.open_read_only(tmp_path / "pg") as reader:
            assert _without_times(_everything(reader)) == _without_times(on_postgres)
    finally:
        location.use_journal_url(None)
    assert _without_times(on_postgres) == _without_times(on_sqlite)


def test_writes_outcomes_errors_drift_and_pruning_work_on_each_backend(
    tmp_path: Path, backend: str
) -> None:
    with Journal.open(tmp_path) as j:
        run = j.start_run("apply", 1, "host", "sum", "c1")
        with j.transaction():
            ids = j.record_intents(
                run,
                [
                    Intent("cs1", "users", "1001", "add", None, "h1"),
                    Intent("cs1", "users", "1002", "add", None, "h2"),
                    Intent("cs1", "users", "1003", "add", None, "h3"),
                ],
            )
        assert len(ids) == 3 and ids == sorted(ids) and len(set(ids)) == 3
        with j.relaxed():
            j.record_outcomes([(ids[0], "ok", 4, None, None), (ids[1], "error", None, "x", "no")])
            j.record_outcomes([(ids[0], "ok", 5, None, None)])  # a repeat replaces
        assert [i.id for i in j.open_intents("cs1")] == [ids[2]]
        writes = j.last_record_writes("cs1", [("users", "1001"), ("users", "1002")])
        assert writes == {("users", "1001"): LastWrite("add", "ok", 5)}
        acked = j.acknowledged_writes("cs1", [("users", "1001"), ("users", "1003")])
        assert acked == {("users", "1001"): ("add", "h1", 5)}
        assert j.acknowledged_writes_after("cs1", 4) == {("users", "1001"): ("add", "h1", 5)}
        assert j.resolve_open_intents("cs1", "seen") == 1 and j.open_intents() == []
        j.set_element_status("cs1", "Sync Completed", "running", run)
        j.set_element_status("cs1", "Sync Completed", "idle", run)
        assert j.last_revisions() == {"cs1": 5}
        common = {
            "element": "cs1",
            "collection": "users",
            "key": "1002",
            "form": "user",
            "kind": "user",
            "resource": "1002",
            "action": "add",
            "error_type": "conflict",
            "reason": "r",
            "detail": {"a": 1},
            "fields_hash": "h2",
        }
        first = j.upsert_distribution_error(**common)
        assert j.upsert_distribution_error(**common) == first
        [de] = j.distribution_errors(ids=[first])
        assert de.attempts == 2
        j.set_resource_statuses([("user", "1001", "Sync Completed", 1, 1)], run)
        j.set_resource_statuses([("user", "1001", "Sync Completed", 2, 2)], run)
        assert [r["total"] for r in j.resource_statuses()] == [2]
        assert [h["status"] for h in j.status_history("element", "cs1")] == ["Sync Completed"]
        j.upsert_pending("cs1", "users", "1003", "add", "user", "1003", "offline", 0.0)
        j.upsert_pending("cs1", "users", "1003", "add", "user", "1003", "offline", 0.0)
        assert [p.attempts for p in j.pending()] == [2]
        assert j.clear_pending("cs1") == 1
        assert j.delete_distribution_errors([first]) == 1
        j.finish_run(run, "Sync Completed", {"n": 3})
        j.start_run("apply", 1, "host")  # the newest run is never pruned
        removed = j.prune(-1.0, every_seconds=0)
        assert (removed["runs"], removed["intents"]) == (0, 2)  # 1001: last write, its run kept
        assert j.last_revisions() == {"cs1": 5}


def test_a_reader_of_postgresql_cannot_write(tmp_path: Path, pg_url: str) -> None:
    location.use_journal_url(pg_url)
    try:
        with (
            Journal.open(tmp_path),
            Journal.open_read_only(tmp_path) as reader,
            pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
        ):
            reader._db.execute("DELETE FROM events")
    finally:
        location.use_journal_url(None)


def _columns_sqlite(path: Path) -> dict[str, list[str]]:
    with sqlite3.connect(path) as db:
        tables = [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")]
            for t in tables
            if t != "sqlite_sequence"
        }


def test_a_fresh_postgresql_journal_has_the_same_tables_and_columns_as_a_file(
    tmp_path: Path, pg_url: str
) -> None:
    Journal.open(tmp_path).close()
    location.use_journal_url(pg_url)
    try:
        Journal.open(tmp_path / "pg").close()
    finally:
        location.use_journal_url(None)
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
        ).fetchall()
        indexes = {
            n
            for (n,) in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
        }
    on_pg: dict[str, list[str]] = {}
    for table, column in rows:
        on_pg.setdefault(table, []).append(column)
    assert on_pg == _columns_sqlite(tmp_path / "journal.sqlite")
    named = {s.split()[5] for m in MIGRATIONS for s in m.statements if s.startswith("CREATE INDEX")}
    assert named <= indexes


def test_a_journal_from_a_newer_provgit_is_refused_on_postgresql(
    tmp_path: Path, pg_url: str
) -> None:
    location.use_journal_url(pg_url)
    try:
        with Journal.open(tmp_path) as j:
            j.set_meta("schema_version", str(SCHEMA_VERSION + 1))
        with pytest.raises(JournalError, match="from a newer provgit"):
            Journal.open(tmp_path)
        assert read_journal(tmp_path, JournalReader.pending_count, -1) == -1
    finally:
        location.use_journal_url(None)


def test_a_server_that_is_down_or_refuses_the_login_is_a_clear_error_without_the_password(
    tmp_path: Path, pg_server: pg.Server
) -> None:
    down = f"postgresql://{pg.USER}:{pg.PASSWORD}@127.0.0.1:{pg._free_port()}/x"
    wrong = f"postgresql://{pg.USER}:wrong-{pg.PASSWORD}@{pg_server.host}:{pg_server.port}/postgres"
    for url in (down, wrong):
        location.use_journal_url(url)
        try:
            with pytest.raises(JournalError) as raised:
                Journal.open(tmp_path)
        finally:
            location.use_journal_url(None)
        message = str(raised.value)
        assert message.startswith(f"cannot open the journal postgresql://{pg.USER}@127.0.0.1:")
        assert pg.PASSWORD not in message
    assert list(tmp_path.iterdir()) == []  # nothing written in the state directory


def test_an_empty_postgresql_database_has_no_journal_until_one_is_written(
    tmp_path: Path, pg_url: str
) -> None:
    location.use_journal_url(pg_url)
    try:
        assert not journal_exists(tmp_path)
        with pytest.raises(JournalError, match="no journal at postgresql://provgit@"):
            JournalReader.open_read_only(tmp_path)
        assert not journal_exists(tmp_path)  # looking created nothing
        Journal.open(tmp_path).close()
        assert journal_exists(tmp_path)
    finally:
        location.use_journal_url(None)
