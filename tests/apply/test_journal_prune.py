"""The journal forgets old history, and never what is still to do."""

from __future__ import annotations

import time
from pathlib import Path

from provgit.journal import Intent, Journal

DAY = 86400.0
NOTHING = {"runs": 0, "intents": 0, "outcomes": 0, "events": 0, "status_history": 0}


def _age_everything(j: Journal, seconds: float) -> None:
    with j.transaction():
        for table, column in (
            ("runs", "finished"),
            ("runs", "started"),
            ("intents", "time"),
            ("outcomes", "time"),
            ("events", "time"),
            ("status_history", "time"),
        ):
            j._db.execute(f"UPDATE {table} SET {column} = {column} - ?", (seconds,))


def _run(
    j: Journal, element: str, keys: list[str], settled: bool = True, finish: bool = True
) -> tuple[int, list[int]]:
    run = j.start_run("apply", 1, "host")
    ids = j.record_intents(run, [Intent(element, "users", k, "add") for k in keys])
    if settled:
        j.record_outcomes([(i, "ok", n + 1, None, None) for n, i in enumerate(ids)])
    if finish:
        j.finish_run(run, "Sync Completed", {})
    return run, ids


def _last_revisions(j: Journal) -> dict[str, int]:
    return {
        name: j._db.execute(
            "SELECT o.revision FROM intents i JOIN outcomes o ON o.intent_id = i.id "
            "WHERE i.element = ? AND o.revision IS NOT NULL ORDER BY i.id DESC LIMIT 1",
            (name,),
        ).fetchone()[0]
        for name in ("cs1", "cs2")
    }


def test_prune_forgets_old_settled_history_and_keeps_what_is_still_to_do(tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    try:
        for name in ("cs1", "cs2"):
            j.set_element_status(name, "Sync Completed", "running", None)
        old_run, _ = _run(j, "cs1", ["a", "b", "c"])
        _, cs2_ids = _run(j, "cs2", ["d", "e"])  # cs2 is never written again
        crashed_run, crashed = _run(j, "cs1", ["f", "g"], settled=False)  # fates unknown
        dead_run, _ = _run(j, "cs1", ["h"], finish=False)  # killed, settled by a later run
        j.add_event("sync_completed", "old news")
        j.upsert_pending("cs1", "users", "u9", "add", "users", "u9", "offline", time.time())
        j.upsert_distribution_error(
            element="cs1", collection="cos", key="7", form="Class of Service Options",
            kind="classes_of_service", resource="7", action="add", error_type="refused",
            reason="no", detail={}, fields_hash=None,
        )  # fmt: skip
        _age_everything(j, 40 * DAY)
        newest_run, _ = _run(j, "cs1", ["i"])
        before = _last_revisions(j)

        removed = j.prune(30 * DAY, chunk=2)

        # cs2's newest write stays (reports show its revision); so does its run.
        assert removed == {
            "runs": 2,
            "intents": 5,
            "outcomes": 5,
            "events": 1,
            "status_history": 2,
        }
        assert _last_revisions(j) == before
        left = [r["id"] for r in j.runs()]
        assert newest_run in left and crashed_run in left
        assert old_run not in left and dead_run not in left
        assert sorted(i.id for i in j.open_intents()) == sorted(crashed)
        count = "SELECT COUNT(*) FROM intents WHERE id = ?"
        assert j._db.execute(count, (cs2_ids[-1],)).fetchone() == (1,)
        assert j.pending_count() == 1
        assert j.distribution_error_count() == 1
        assert set(j.element_statuses()) == {"cs1", "cs2"}
        # At most once an hour: a second call right after does nothing.
        assert j.prune(30 * DAY) == {}
    finally:
        j.close()


def test_prune_keeps_history_younger_than_the_retention(tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    try:
        _run(j, "cs1", ["a"])
        _run(j, "cs1", ["b"])
        j.add_event("sync_completed", "recent")
        assert j.prune(30 * DAY) == NOTHING
        assert len(j.runs()) == 2 and len(j.events()) == 1
    finally:
        j.close()
