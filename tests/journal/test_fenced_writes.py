"""Replicas' journal writes about an element are conditional on its lease
(issue #19): on a real PostgreSQL server, a replica that lost an element's
lease cannot put its late rows over those of the element's new holder."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from provgit.journal import Fences, Intent, Journal, LeaseLost, location
from provgit.journal import leases as lease_ops
from provgit.journal.postgres import connect


@pytest.fixture
def on_pg(pg_url: str) -> Iterator[str]:
    location.use_journal_url(pg_url)
    try:
        yield pg_url
    finally:
        location.use_journal_url(None)


def _take_over(url: str, element: str) -> tuple[int, int]:
    """`old` holds `element` (a lease already expired), then `new` claims it:
    their tokens."""
    db = connect(url, None)
    try:
        lease_ops.ensure_tables(db)
        old = lease_ops.claim(db, element, "old", -1.0)  # expired as soon as taken
        new = lease_ops.claim(db, element, "new", 60.0)
    finally:
        db.close()
    assert old is not None and new is not None and new > old
    return old, new


def _replica(tmp: Path, holder: str, tokens: dict[str, int], dropped: list[str]) -> Journal:
    j = Journal.open(tmp, patient=False)
    j.fence_by(Fences(holder, tokens.get, lambda e, what: dropped.append(f"{e}:{what}")), 5.0)
    return j


# Bounds, not figures: each wait ends at its event; 10 s was tight for a
# PostgreSQL round trip and a thread's start at load 30+ on 2 cores.
BOUND = 60.0


def _until(what: str, check: Callable[[], object], timeout: float = BOUND) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.01)


def _intent(element: str, key: str) -> Intent:
    return Intent(element, "users", key, "add", None, "h")


def test_rows_of_a_replica_that_lost_the_lease_never_overwrite_the_new_holders(
    tmp_path: Path, on_pg: str
) -> None:
    old_token, new_token = _take_over(on_pg, "cs1")
    dropped_old: list[str] = []
    dropped_new: list[str] = []
    old = _replica(tmp_path / "a", "old", {"cs1": old_token}, dropped_old)
    new = _replica(tmp_path / "b", "new", {"cs1": new_token}, dropped_new)
    try:
        run_new = new.start_run("watch", 2, "b")
        run_old = old.start_run("watch", 1, "a")
        [settled] = new.record_intents(run_new, [_intent("cs1", "u1")])
        new.record_outcomes([(settled, "ok", 7, None, None)], "cs1")
        new.set_element_status("cs1", "Sync Completed", "ok", run_new)
        new.upsert_pending("cs1", "users", "u2", "add", "User", "u2", "offline", 0.0)
        # The old holder, late: every row it writes about cs1 is dropped.
        with pytest.raises(LeaseLost, match="cs1"):
            old.record_intents(run_old, [_intent("cs1", "u3")])
        old.record_outcomes([(settled, "error", None, "conflict", "late")])
        old.set_element_status("cs1", "Sync Failed", "error", run_old, "late")
        old.clear_pending("cs1")
        old.upsert_distribution_error(
            element="cs1",
            collection="users",
            key="u1",
            form="user",
            kind="User",
            resource="u1",
            action="add",
            error_type="conflict",
            reason="late",
            detail={},
            fields_hash=None,
        )
        old.add_event("element_down", "late", element="cs1", run_id=run_old)
        # The status says what the new holder observed, and only that.
        status = new.element_statuses()["cs1"]
        assert (status["status"], status["run_id"]) == ("Sync Completed", run_new)
        assert [(p.collection, p.key) for p in new.pending("cs1")] == [("users", "u2")]
        assert new.distribution_errors(element="cs1") == []
        assert [e.message for e in new.events() if e.element == "cs1"] == []
        assert new.open_intents("cs1") == []
        assert new.last_revisions() == {"cs1": 7}
        assert dropped_new == []
        assert {d.split(":")[1] for d in dropped_old} >= {
            "intent",
            "outcome",
            "status",
            "pending update",
            "distribution error",
        }
        assert all(d.startswith("cs1:") for d in dropped_old)
    finally:
        old.close()
        new.close()


def test_a_takeover_waits_for_the_old_holders_write_in_flight_then_wins(
    tmp_path: Path, on_pg: str
) -> None:
    # The old holder checked its lease in an open transaction: a claim waits
    # for that commit, so the new holder's rows come after the old one's.
    db = connect(on_pg, None)
    lease_ops.ensure_tables(db)
    token = lease_ops.claim(db, "cs1", "old", 0.5)
    assert token is not None
    dropped: list[str] = []
    old = _replica(tmp_path / "a", "old", {"cs1": token}, dropped)
    claimed: list[int | None] = []
    try:
        run_old = old.start_run("watch", 1, "a")
        with old.transaction():
            old.set_element_status("cs1", "Sync Completed", "ok", run_old)
            lease_expired = threading.Event()

            def claim() -> None:
                _until("the old lease expires", lambda: not lease_ops.leases(db)["cs1"].live)
                lease_expired.set()
                claimed.append(lease_ops.claim(db, "cs1", "new", 60.0))

            claimer = threading.Thread(target=claim)
            claimer.start()
            assert lease_expired.wait(BOUND)
            # The claim is blocked on the lease row this transaction locked.
            with psycopg.connect(on_pg, autocommit=True) as watcher:
                _until(
                    "the claim waits for the old holder's transaction",
                    lambda: watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    ).fetchone()[0],
                )
            assert claimed == []
        claimer.join(BOUND)
        assert claimed and claimed[0] == token + 1
        # Now late: dropped.
        old.set_element_status("cs1", "Sync Failed", "error", run_old, "late")
        assert old.element_statuses()["cs1"]["status"] == "Sync Completed"
        assert dropped == ["cs1:status"]
    finally:
        old.close()
        db.close()


def test_a_journal_without_fences_writes_as_before_on_sqlite(tmp_path: Path) -> None:
    dropped: list[str] = []
    with Journal.open(tmp_path) as j:
        # SQLite has one writer per file: fencing is PostgreSQL's only.
        j.fence_by(Fences("r", lambda e: None, lambda e, w: dropped.append(e)), 5.0)
        run = j.start_run("watch", 1, "h")
        j.set_element_status("cs1", "Sync Completed", "ok", run)
        assert j.element_statuses()["cs1"]["status"] == "Sync Completed"
    assert dropped == []
