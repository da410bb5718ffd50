"""`provgit watch` and drift found by config runs, not only by resyncs.

Real watcher processes and simulators; out-of-band edits through the
simulator's admin endpoint, right before a config change triggers a run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from apply.helpers import Sim, journal, write_config

from .helpers import Watch, start_watch

pytestmark = pytest.mark.slow


def _edit_cos(sim: Sim, comment: str) -> None:
    sim.admin(
        "/admin/edit",
        {"op": "put", "collection": "cos", "key": "7", "fields": {"number": 7, "comment": comment}},
    )


def test_report_mode_commit_run_holds_the_drifted_record(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    cs1, cs2 = sims
    config = write_config(tmp_path / "config", sims, users=2)
    w = start_watch(
        [str(config), "--resync-seconds", "0", "--debounce-ms", "50", "--drift", "report"]
    )
    watches.append(w)
    w.wait_log("run_finished", timeout=30)
    _edit_cos(cs1, "Changed by hand")

    # An unrelated change right after: its run finds the drift, logs it, holds it.
    mark = w.mark()
    write_config(tmp_path / "config", sims, users=2, first_name="Bea")
    found = w.wait_log("drift", after=mark, timeout=30)
    assert found["element"] == "cs1" and found["held"] == 1 and found["corrected"] is False
    w.wait_log("sync_result", after=mark, timeout=30)
    assert cs2.records()["users"]["user1"]["first_name"] == "Bea"
    assert cs1.records()["cos"]["7"]["comment"] == "Changed by hand"
    doc = w.status()
    assert doc["watch"]["drift"]["elements"]["cs1"][0]["key"] == "7"
    assert any(e["type"] == "drift" and "cos/7" in e["message"] for e in doc["events"])
    with journal(config / ".provgit") as j:
        assert [(d.element, d.key) for d in j.drift_items()] == [("cs1", "7")]

    # A change to the drifted record itself is held too.
    mark = w.mark()
    text = (config / "net.yaml").read_text().replace("comment: Sales", "comment: Retail")
    (config / "net.yaml").write_text(text)
    held = w.wait_log(
        "element_status", lambda e: e["element"] == "cs1" and e["held"] == 1, after=mark
    )
    assert held["status"] != "Sync Completed"
    assert cs1.records()["cos"]["7"]["comment"] == "Changed by hand"
    with journal(config / ".provgit") as j:
        assert len([e for e in j.events() if e.type == "drift" and "cos/7" in e.message]) == 1


def test_correct_mode_edit_just_before_a_commit_run_is_logged_and_overwritten(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    cs1, _ = sims
    config = write_config(tmp_path / "config", sims, users=2)
    w = start_watch(
        [str(config), "--resync-seconds", "0", "--debounce-ms", "50", "--drift", "correct"]
    )
    watches.append(w)
    w.wait_log("run_finished", timeout=30)
    _edit_cos(cs1, "Changed by hand")
    mark = w.mark()
    write_config(tmp_path / "config", sims, users=2, first_name="Bea")
    found = w.wait_log("drift", after=mark, timeout=30)
    assert found["element"] == "cs1" and found["corrected"] is True
    w.wait_log("sync_result", lambda e: e["status"] == "Sync Completed", after=mark)
    assert cs1.records()["cos"]["7"]["comment"] == "Sales"
    with journal(config / ".provgit") as j:
        assert j.drift_items() == []
        messages = [e.message for e in j.events() if e.type == "drift"]
    assert any("cos/7" in m and "corrected" in m for m in messages), messages
