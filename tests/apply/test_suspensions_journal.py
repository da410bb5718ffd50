"""Suspensions in the journal: schema 3, upgraded in place, kept across opens."""

from __future__ import annotations

from pathlib import Path

from provgit.journal import NETWORK, SCHEMA_VERSION, Journal


def test_a_schema_2_journal_gains_the_suspensions_table_when_opened(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        j._db.execute("DROP TABLE suspensions")
        j.set_meta("schema_version", "2")
    with Journal.open(tmp_path) as j:
        assert j.meta("schema_version") == str(SCHEMA_VERSION) == "3"
        assert j.suspensions() == {}


def test_suspension_is_kept_across_opens_and_resume_removes_it(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        s = j.suspend("cs1", "audit", "ann", 1_800_000_000.0)
        assert s.describe() == "Suspended: audit (since 2027-01-15T08:00:00Z, by ann)"
        # Suspending again keeps the start and takes the new reason.
        again = j.suspend("cs1", "audit, week 2", "bob", 1_800_000_600.0)
        assert again.since == s.since and again.reason == "audit, week 2"
        j.suspend(NETWORK, "freeze", "ann", 1_800_000_000.0)
    with Journal.open(tmp_path) as j:
        assert set(j.suspensions()) == {"cs1", NETWORK}
        assert j.resume("cs1", "ann") is not None
        assert j.resume("cs1", "ann") is None  # nothing left to resume
        assert set(j.suspensions()) == {NETWORK}
        types = [e.type for e in j.events()]
        assert types == ["suspended", "suspended", "suspended", "resumed"]
