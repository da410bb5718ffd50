"""`provgit status` run beside a watcher tells what the watcher's last reading
found: a record its resync found drifted is not `Sync Completed` on disk either.

Real watcher process and simulators; the out-of-band edit goes through the
simulator's admin endpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from apply.helpers import Sim, cli_process, write_config

from .helpers import Watch, start_watch

pytestmark = pytest.mark.slow


def _cos(doc: dict[str, Any], key: str) -> dict[str, Any]:
    rows = [
        r for r in doc["resources"] if r["kind"] == "classes_of_service" and r["resource"] == key
    ]
    assert len(rows) == 1, doc["resources"]
    return rows[0]


def test_status_beside_the_watcher_shows_the_drift_its_resync_found(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    cs1 = sims[0]
    config = write_config(tmp_path / "config", sims, users=2)
    w = start_watch([str(config), "--resync-seconds", "0.3", "--drift", "report"])
    watches.append(w)
    first = w.wait_log("run_finished", timeout=60)
    assert first["outcome"] == "Sync Completed", w.logs[-10:]
    # Earlier CLI readings of the network, in sync, before the edit (a plan
    # leaves its memo on disk).
    planned = cli_process("plan", str(config))
    assert planned.code == 0, planned.err
    before = cli_process("status", str(config), "--format", "json")
    assert before.code == 0, before.err
    assert _cos(json.loads(before.out), "7")["status"] == "Sync Completed"

    mark = w.mark()
    cs1.admin(
        "/admin/edit",
        {"op": "put", "collection": "cos", "key": "7", "fields": {"number": 7, "comment": "Hand"}},
    )
    w.wait_log("drift", lambda e: e["element"] == "cs1", after=mark, timeout=30)
    # A resync that started after the drift was found has finished: its
    # reading is the latest one.
    found = w.mark()
    w.wait_logs("run_finished", 2, lambda e: "resync" in e["reason"], after=found, timeout=30)
    live = w.status()
    live_row = _cos(live, "7")
    assert live["in_sync"] is False
    assert live_row["status"] != "Sync Completed", live_row

    ran = cli_process("status", str(config), "--format", "json")
    doc = json.loads(ran.out)
    row = _cos(doc, "7")
    assert (row["status"], doc["in_sync"]) == (live_row["status"], live["in_sync"]), row
    assert ran.code != 0


def test_status_beside_the_watcher_shows_the_drift_a_config_run_found(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    cs1 = sims[0]
    config = write_config(tmp_path / "config", sims, users=2)
    # No resyncs: only the config run reads the element after the edit.
    w = start_watch(
        [str(config), "--resync-seconds", "0", "--debounce-ms", "50", "--drift", "report"]
    )
    watches.append(w)
    first = w.wait_log("run_finished", timeout=60)
    assert first["outcome"] == "Sync Completed", w.logs[-10:]
    cs1.admin(
        "/admin/edit",
        {"op": "put", "collection": "cos", "key": "7", "fields": {"number": 7, "comment": "Hand"}},
    )
    mark = w.mark()
    write_config(tmp_path / "config", sims, users=2, first_name="Bea")
    found = w.wait_log("drift", after=mark, timeout=30)
    assert found["element"] == "cs1" and found["held"] == 1
    w.wait_log("run_finished", after=mark, timeout=30)
    live = w.status()
    live_row = _cos(live, "7")
    assert live["in_sync"] is False and live_row["status"] != "Sync Completed", live_row

    ran = cli_process("status", str(config), "--format", "json")
    doc = json.loads(ran.out)
    row = _cos(doc, "7")
    assert (row["status"], doc["in_sync"]) == (live_row["status"], live["in_sync"]), row
    assert ran.code != 0
