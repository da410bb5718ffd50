"""Journal schema migrations: every earlier schema version opens as the current one.

The fixtures are journals written by earlier provgit versions' own journal
code (their headers name the commit), with rows in every table.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from provgit.journal import (
    NETWORK,
    SCHEMA_VERSION,
    Intent,
    Journal,
    JournalError,
    LastWrite,
)
from provgit.journal.schema import MIGRATIONS

from .helpers import EARLIER, digest, journal_from_fixture, rows, schema

T0 = 1_790_000_000.0  # the time every fixture row carries


def _fresh(tmp_path: Path) -> Path:
    with Journal.open(tmp_path / "fresh") as j:
        return j.path


def test_the_migration_steps_are_numbered_from_one_to_the_current_version() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))


def test_every_earlier_schema_version_has_a_journal_to_migrate_from() -> None:
    # A new schema version needs a fixture of the one before it (see fixtures/).
    assert set(EARLIER.values()) == set(range(1, SCHEMA_VERSION))


def test_a_new_journal_records_the_current_schema_version(tmp_path: Path, backend: str) -> None:
    with Journal.open(tmp_path) as j:
        assert j.meta("schema_version") == str(SCHEMA_VERSION)


@pytest.mark.parametrize("name", sorted(EARLIER))
def test_an_earlier_journal_opens_with_every_row_kept_and_the_schema_of_a_new_one(
    tmp_path: Path, name: str
) -> None:
    path = journal_from_fixture(name, tmp_path / "old")
    before = rows(path)
    assert before["meta"].count(("schema_version", str(EARLIER[name]))) == 1

    Journal(path).close()

    assert schema(path) == schema(_fresh(tmp_path))
    after = rows(path)
    for table, old_rows in before.items():
        if table == "meta":
            old_rows = [
                r if r[0] != "schema_version" else (r[0], str(SCHEMA_VERSION)) for r in old_rows
            ]
            # An earlier journal gets its identity (feed entry ids) when first opened.
            (identity,) = [r for r in after[table] if r[0] == "journal_id"]
            assert len(identity[1]) == 16 and "journal_id" not in dict(old_rows)
            old_rows = sorted([*old_rows, identity])
        assert after[table] == old_rows, table
    # The tables added since are there, and empty.
    assert set(after) > set(before) or EARLIER[name] == SCHEMA_VERSION
    assert all(after[t] == [] for t in set(after) - set(before))


@pytest.mark.parametrize("name", sorted(EARLIER))
def test_an_earlier_journal_reads_and_writes_through_the_current_journal(
    tmp_path: Path, name: str
) -> None:
    path = journal_from_fixture(name, tmp_path)
    with Journal(path) as j:
        last, dead = j.runs(2)
        assert (last["command"], last["outcome"]) == ("reconcile", None)
        assert (dead["command"], dead["outcome"], dead["commit"]) == (
            "apply",
            "Sync Incomplete",
            "a1b2c3d",
        )
        assert dead["summary"] == {"errors": 1, "pending": 1, "written": 2}
        assert [r["id"] for r in j.unfinished_runs()] == [last["id"]]
        assert [(i.element, i.key) for i in j.open_intents()] == [("cs1", "1003")]
        assert j.last_revisions() == {"cs1": 5, "mivb1": 7}
        # The refused write of 1002 changed nothing: no write of it that counts.
        assert j.last_record_writes("cs1", [("users", "1001"), ("users", "1002")]) == {
            ("users", "1001"): LastWrite("add", "ok", 5)
        }
        [p] = j.pending()
        assert (p.element, p.key, p.attempts, p.next_retry) == ("cs2", "1004", 2, T0 + 120)
        [de] = j.distribution_errors()
        assert (de.element, de.key, de.status) == ("mivb1", "1005", "retry pending")
        assert de.detail == {"cos": 9, "name": "Ann"}
        assert j.element_statuses()["cs2"]["detail"] == "connection refused"
        assert [r["status"] for r in j.resource_statuses(not_completed_only=True)] == [
            "Pending update",
            "Distribution error",
        ]
        assert [h["status"] for h in j.status_history("element", "mivb1")] == ["Distribution error"]
        assert [e.type for e in j.events()] == ["sync_failed", "alarm_raised"]
        assert j.alarm_level() == "major"
        drifted = [(d.element, d.key, d.fields) for d in j.drift_items()]
        assert drifted == ([("cs1", "1001", ("name", "pin"))] if EARLIER[name] >= 2 else [])
        assert j.suspensions() == {}

        # New rows go in after the old ones, in the tables old and new.
        assert j.add_event("suspended", "freeze") == 3
        assert j.record_intents(last["id"], [Intent("cs1", "users", "1006", "add")]) == [5]
        j.suspend(NETWORK, "freeze", "ann", T0)
        assert set(j.suspensions()) == {NETWORK}


def test_a_journal_from_a_newer_provgit_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        j.set_meta("schema_version", str(SCHEMA_VERSION + 1))
        path = j.path
    before = digest(path)
    expected = (
        f"the journal {path} is from a newer provgit (schema {SCHEMA_VERSION + 1}, "
        f"this one knows {SCHEMA_VERSION}); upgrade provgit"
    )
    with pytest.raises(JournalError) as e:
        Journal(path)
    assert str(e.value) == expected
    with pytest.raises(JournalError) as e:
        Journal.open_read_only(path)
    assert str(e.value) == expected
    assert digest(path) == before


def test_a_migration_that_fails_leaves_the_journal_at_its_version(tmp_path: Path) -> None:
    # A name step 2 cannot take: the step stops after adding the intents_run
    # index, which must be rolled back with the rest.
    path = journal_from_fixture("v1_first", tmp_path)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE INDEX drift ON runs (pid)")
        db.commit()
    before = schema(path)
    with pytest.raises(JournalError, match="there is already an index named drift"):
        Journal(path)
    assert schema(path) == before
    assert ("schema_version", "1") in rows(path)["meta"]
