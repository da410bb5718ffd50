"""`provgit watch` and an element whose change feed lies.

A real watcher and real simulators; a record of one element is edited in
its database file directly. Resyncs follow the feed (and the element's
digest, which does not know either) and cannot see it; the watcher's own
full reads (one element a run, `observe.watch_full_read_minutes`) find it:
drift like any other, said once as "change feed missed" (journal event,
log, /metrics).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apply.helpers import Sim, journal, wait_for, write_config

from .helpers import Watch, start_watch

pytestmark = pytest.mark.slow


def _edit_database(sim: Sim) -> None:
    """An admin edits the element's database behind its back: neither its
    change feed nor its content digest knows; only a full read finds it."""
    with sqlite3.connect(sim.db) as db:
        (text,) = db.execute(
            "SELECT fields FROM records WHERE collection='cos' AND key='7'"
        ).fetchone()
        db.execute(
            "UPDATE records SET fields = ? WHERE collection = 'cos' AND key = '7'",
            (json.dumps(dict(json.loads(text), comment="Restored")),),
        )


def _metric(w: Watch, name: str) -> dict[str | None, float]:
    return {
        s.labels.get("element"): s.value
        for f in text_string_to_metric_families(w.get("/metrics")[1])
        if f.name == name
        for s in f.samples
        if s.name.endswith("_total")
    }


def test_the_watchers_full_reads_find_what_the_feed_missed(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    cs1 = sims[0]
    # Every element due a full read at every run: one element a run is read.
    config = write_config(
        tmp_path / "config",
        sims,
        users=2,
        extra_settings="observe:\n  watch_full_read_minutes: 0.001\n",
    )
    w = start_watch([str(config), "--resync-seconds", "0.2", "--drift", "correct"])
    watches.append(w)
    w.wait_log("run_finished", timeout=60)
    mark = w.mark()
    _edit_database(cs1)
    found = w.wait_log("feed_missed", after=mark, timeout=60)
    assert found["element"] == "cs1" and found["changes"] == 1
    # Drift like any other: logged and (correct mode) overwritten.
    drift = w.wait_log("drift", lambda e: e["element"] == "cs1", after=mark, timeout=30)
    assert drift["corrected"] is True
    # The run that logged the drift, not one of the resyncs (every 0.2 s) that
    # was going at the mark and ended Sync Completed before the correction.
    w.wait_log(
        "sync_result", lambda e: e["status"] == "Sync Completed", after=w.past(drift), timeout=30
    )
    assert cs1.records()["cos"]["7"]["comment"] == "Sales"
    assert _metric(w, "provgit_feed_missed_changes")["cs1"] == 1
    # One element a run, the longest unverified first: they take turns.
    assert wait_for(lambda: len(_metric(w, "provgit_full_reads")) == 3, timeout=30)
    turns = _metric(w, "provgit_full_reads").values()
    assert max(turns) - min(turns) <= 1, turns
    # Said once: later full reads of cs1 find nothing new.
    again = w.mark()
    w.wait_log("run_finished", lambda e: True, after=again, timeout=30)
    w.wait_log("run_finished", lambda e: True, after=w.mark(), timeout=30)
    assert len(w.events("feed_missed")) == 1
    with journal(config / ".provgit") as j:
        missed = [e for e in j.events() if e.type == "feed_missed"]
    assert [e.element for e in missed] == ["cs1"]
    assert "missed 1 change" in missed[0].message and "cos/7" in missed[0].message


def test_between_full_reads_the_digest_finds_a_silent_edit_at_the_next_resync(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    cs1 = sims[0]
    config = write_config(tmp_path / "config", sims, users=2)  # full reads hourly
    w = start_watch([str(config), "--resync-seconds", "0.2", "--drift", "report"])
    watches.append(w)
    w.wait_log("run_finished", timeout=60)
    mark = w.mark()
    # No feed entry, no revision moved; the element's digest moves.
    cs1.admin(
        "/admin/edit",
        {
            "op": "put",
            "collection": "cos",
            "key": "7",
            "fields": {"number": 7, "comment": "Restored"},
            "silent": True,
        },
    )
    found = w.wait_log("feed_missed", after=mark, timeout=60)
    assert found["element"] == "cs1" and found["changes"] == 1
    drift = w.wait_log("drift", lambda e: e["element"] == "cs1", after=mark, timeout=30)
    assert drift["corrected"] is False
    assert cs1.records()["cos"]["7"]["comment"] == "Restored"
    # Found by the digest, not by a full read on the timer.
    assert "cs1" not in _metric(w, "provgit_full_reads")
