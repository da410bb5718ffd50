"""The read-only journal opener: reads what writers commit, never changes the file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from provgit.journal import (
    SCHEMA_VERSION,
    Intent,
    Journal,
    JournalError,
    JournalReader,
    read_journal,
)

from .helpers import digest, journal_from_fixture, rows, schema


def _everything(j: JournalReader) -> list[object]:
    """What every read method answers."""
    return [
        j.meta("schema_version"),
        j.runs(),
        j.unfinished_runs(),
        j.open_intents(),
        j.last_revisions(),
        j.last_record_writes("cs1", [("users", "1001")]),
        j.acknowledged_writes("cs1", [("users", "1001")]),
        j.acknowledged_writes_after("cs1", 0),
        j.pending(),
        j.pending_count(),
        j.distribution_errors(),
        j.distribution_error_count(),
        j.element_statuses(),
        j.element_states(),
        j.resource_statuses(),
        j.status_history("element", "cs1"),
        j.events(),
        j.recent_events(),
        j.alarm_level(),
        j.suspensions(),
        j.drift_items(),
    ]


def _journal_with_rows(state_dir: Path) -> tuple[Path, list[object]]:
    with Journal.open(state_dir) as j:
        run = j.start_run("apply", 1, "host")
        [intent] = j.record_intents(run, [Intent("cs1", "users", "1001", "add", None, "h")])
        j.record_outcomes([(intent, "ok", 5, None, None)])
        j.upsert_pending("cs2", "users", "1002", "add", "user", "1002", "offline", 0.0)
        j.set_element_status("cs1", "Sync Completed", "running", run)
        j.add_event("sync_completed", "done", run_id=run)
        j.suspend("cs2", "audit", "ann", 1_800_000_000.0)
        j.finish_run(run, "Sync Completed", {})
        return j.path, _everything(j)


def test_the_reader_reads_a_read_only_journal_and_never_changes_its_bytes(
    tmp_path: Path,
) -> None:
    path, written = _journal_with_rows(tmp_path)
    path.chmod(0o444)
    before = digest(path)
    with Journal.open_read_only(path) as reader:
        assert _everything(reader) == written
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader._db.execute("DELETE FROM events")
    # The state directory names the same journal.
    with JournalReader.open_read_only(tmp_path) as reader:
        assert _everything(reader) == written
    assert digest(path) == before


def test_the_reader_reads_an_earlier_journal_without_migrating_it(tmp_path: Path) -> None:
    path = journal_from_fixture("v1", tmp_path)
    path.chmod(0o444)
    before, tables, content = digest(path), schema(path), rows(path)
    with Journal.open_read_only(path) as reader:
        assert reader.meta("schema_version") == "1" != str(SCHEMA_VERSION)
        # Tables schema 1 lacks read as their migration would leave them: empty.
        assert reader.drift_items() == [] and reader.suspensions() == {}
        assert [(p.element, p.key) for p in reader.pending()] == [("cs2", "1004")]
        assert reader.last_revisions() == {"cs1": 5, "mivb1": 7}
    assert (digest(path), schema(path), rows(path)) == (before, tables, content)


def test_the_reader_never_creates_a_journal(tmp_path: Path) -> None:
    missing = tmp_path / "state" / "journal.sqlite"
    with pytest.raises(JournalError, match=f"no journal at {missing}"):
        Journal.open_read_only(missing)
    assert not missing.parent.exists()


def test_the_reader_sees_what_a_writer_commits_while_it_is_open(
    tmp_path: Path, backend: str
) -> None:
    with Journal.open(tmp_path) as writer, Journal.open_read_only(writer.path) as reader:
        assert reader.events() == []
        writer.add_event("sync_completed", "first")
        assert [e.message for e in reader.events()] == ["first"]
        with writer.transaction():
            writer.add_event("sync_completed", "second")
            # Not committed yet: the reader does not see it.
            assert [e.message for e in reader.events()] == ["first"]
        assert [e.message for e in reader.events()] == ["first", "second"]


def test_read_journal_gives_the_default_where_there_is_no_journal_to_read(
    tmp_path: Path,
) -> None:
    path, _ = _journal_with_rows(tmp_path / "ok")
    assert read_journal(path, JournalReader.pending_count, -1) == 1
    assert read_journal(tmp_path / "none" / "journal.sqlite", JournalReader.pending_count, -1) == -1
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_bytes(b"not a journal, " * 100)
    assert read_journal(damaged, JournalReader.pending_count, -1) == -1
    with Journal(path) as j:
        j.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    assert read_journal(path, JournalReader.pending_count, -1) == -1
