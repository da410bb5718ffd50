"""The journal forgets old history, and never what is still to do."""

from __future__ import annotations

import time
from pathlib import Path

from provgit.journal import Intent, Journal

DAY = 86400.0


def _age(j: Journal, table: str, column: str, seconds: float) -> None:
    j._db.execute(f"UPDATE {table} SET {column} = {column} - ?", (seconds,))


def _run_with_writes(j: Journal, settled: bool) -> tuple[int, list[int]]:
    run = j.start_run("apply", 1, "host")
    ids = j.record_intents(run, [Intent("cs1", "users", f"u{n}", "add") for n in range(3)])
    if settled:
        j.record_outcomes([(i, "ok", 1, None, None) for i in ids])
    j.finish_run(run, "Sync Completed", {})
    return run, ids


def test_prune_forgets_old_settled_history_and_keeps_what_is_still_to_do(tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    try:
        old_run, _ = _run_with_writes(j, settled=True)
        crashed_run, crashed = _run_with_writes(j, settled=False)  # fates unknown
        j.add_event("sync_completed", "old news")
        j.upsert_pending("cs1", "users", "u9", "add", "users", "u9", "offline", time.time())
        j.upsert_distribution_error(
            element="cs1", collection="cos", key="7", form="Class of Service Options",
            kind="classes_of_service", resource="7", action="add", error_type="refused",
            reason="no", detail={}, fields_hash=None,
        )  # fmt: skip
        with j.transaction():
            for table, column in (
                ("runs", "finished"),
                ("runs", "started"),
                ("intents", "time"),
                ("outcomes", "time"),
                ("events", "time"),
                ("status_history", "time"),
            ):
                _age(j, table, column, 40 * DAY)
        newest_run, _ = _run_with_writes(j, settled=True)

        removed = j.prune(30 * DAY)

        assert removed == {
            "runs": 1,
            "intents": 3,
            "outcomes": 3,
            "events": 1,
            "status_history": 0,
        }
        assert [r["id"] for r in j.runs()] == [newest_run, crashed_run]
        assert old_run not in [r["id"] for r in j.runs()]
        assert sorted(i.id for i in j.open_intents()) == sorted(crashed)
        assert j.pending_count() == 1
        assert j.distribution_error_count() == 1
        # At most once an hour: a second call right after does nothing.
        assert j.prune(30 * DAY) == {}
    finally:
        j.close()


def test_prune_keeps_history_younger_than_the_retention(tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    try:
        _run_with_writes(j, settled=True)
        _run_with_writes(j, settled=True)
        j.add_event("sync_completed", "recent")
        removed = j.prune(30 * DAY)
        assert removed == {
            "runs": 0,
            "intents": 0,
            "outcomes": 0,
            "events": 0,
            "status_history": 0,
        }
        assert len(j.runs()) == 2 and len(j.events()) == 1
    finally:
        j.close()
