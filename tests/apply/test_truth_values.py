"""The values behind a truthful report: named results, exit codes, the last
observation after provgit's own writes, dead runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from provgit import exitcodes
from provgit.apply.result import ApplyResult, ElementResult, OpResult
from provgit.apply.standing import down_elements, settle_dead_runs
from provgit.apply.status import OFFLINE, synching
from provgit.cli.plan import exit_code
from provgit.drivers.base import StoredRecord
from provgit.journal import Journal
from provgit.observe import Observation, ObservationCache
from provgit.plan.model import ElementPlan, Operation, Plan
from provgit.render import apply_summary

SCHEMA = "schemas/status.schema.json"


def _op(status: str, kind: str, key: str) -> OpResult:
    return OpResult("modify", kind, key, kind, key, status)  # type: ignore[arg-type]


def test_named_results_group_elements_per_resource_and_bound_the_list() -> None:
    result = ApplyResult(1, "t")
    a = ElementResult("cs1", "mivb", "x", "failed")
    b = ElementResult("mcl", "micollab", "x", "applied")
    a.operations = [_op("ok", "users", "jdoe"), _op("failed", "cos", "7")]
    a.operations += [_op("ok", "users", f"u{n}") for n in range(12)]
    b.operations = [_op("ok", "users", "jdoe"), _op("pending", "users", "amy")]
    result.elements = [a, b]
    lines = apply_summary.lines(result, limit=3)
    assert lines == [
        "applied: users/jdoe on cs1, mcl; users/u0 on cs1; users/u1 on cs1; and 10 more",
        "failed: cos/7 on cs1",
        "pending: users/amy on mcl",
    ]
    assert apply_summary.fields(result, limit=3)["failed"] == "cos/7 on cs1"


def _plan(*elements: ElementPlan) -> Plan:
    return Plan("t", elements)


def test_plan_exit_code_is_incomplete_when_an_element_was_not_observed() -> None:
    change = Operation("add", "users", "a", "users", "a", fields={"x": 1})
    seen = ElementPlan("cs1", "mivb", "running", 3)
    changed = ElementPlan("cs1", "mivb", "running", 3, (change,))
    down = ElementPlan("cs2", "mivb", "offline", None, error="stopped")
    owed = ElementPlan("cs2", "mivb", "unauthorized", None, queued=(change,))
    assert exit_code(_plan(seen), True) == exitcodes.OK
    assert exit_code(_plan(changed), True) == exitcodes.CHANGES
    assert exit_code(_plan(seen, down), True) == exitcodes.INCOMPLETE == 5
    assert exit_code(_plan(seen, down), False) == exitcodes.INCOMPLETE
    assert exit_code(_plan(seen, down), True, allow_unreachable=True) == exitcodes.OK
    assert exit_code(_plan(seen, owed), True, allow_unreachable=True) == exitcodes.CHANGES
    refused = ElementPlan("cs1", "mivb", "running", 3, (change,), refusal="too many deletes")
    assert exit_code(_plan(refused, down), True) == exitcodes.REFUSED


def test_queued_writes_survive_the_plan_file_and_old_plans_keep_their_checksum() -> None:
    change = Operation("add", "users", "a", "users", "a", fields={"x": 1})
    plain = _plan(ElementPlan("cs2", "mivb", "offline", None))
    assert "queued" not in plain.dumps()
    owed = _plan(ElementPlan("cs2", "mivb", "offline", None, queued=(change,)))
    assert Plan.loads(owed.dumps()).elements[0].queued == (change,)


def test_cached_observation_carries_provgit_writes_until_observed_again(tmp_path: Path) -> None:
    cache = ObservationCache(tmp_path)
    first = Observation(
        "cs1", "running", 7, {"users": {"a": StoredRecord("users", "a", {"n": 1}, 5)}}
    )
    cache.save(first)
    cache.record_writes("cs1", [("users", "b", {"n": 2}, 8)])
    cache.record_writes("cs1", [("users", "a", None, 9)])
    loaded = cache.load("cs1")
    assert loaded is not None and loaded.revision == 7  # the feed is read from the read's revision
    assert {k: r.fields for k, r in loaded.records["users"].items()} == {"b": {"n": 2}}
    # A new observation holds the writes already: the side file goes.
    cache.save(Observation("cs1", "running", 9, {"users": {}}))
    again = cache.load("cs1")
    assert again is not None and again.records == {"users": {}}


def test_dead_runs_of_this_host_are_marked_interrupted_once(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead_pid = int(gone.stdout)
    with Journal.open(tmp_path) as j:
        dead = j.start_run("reconcile", dead_pid, "here")
        elsewhere = j.start_run("reconcile", dead_pid, "another-host")
        current = j.start_run("reconcile", 1, "here")
        assert settle_dead_runs(j, "here", current) == [dead]
        assert settle_dead_runs(j, "here", current) == []
        outcomes = {r["id"]: r["outcome"] for r in j.runs(5)}
        assert outcomes[dead] == "interrupted"
        assert outcomes[elsewhere] is None  # its process cannot be seen from here
        assert [e.run_id for e in j.events() if e.type == "interrupted"] == [dead]


def test_every_journal_event_type_is_in_the_schema_and_has_a_feed_title() -> None:
    from provgit.journal import EVENT_TYPES
    from provgit.render.status_atom import TITLES

    schema = json.loads((Path(__file__).resolve().parents[2] / SCHEMA).read_text())
    assert set(schema["$defs"]["event"]["properties"]["type"]["enum"]) == set(EVENT_TYPES)
    assert set(TITLES) == set(EVENT_TYPES)


def test_an_element_another_live_process_is_applying_is_not_down_until_that_run_is_left(
    tmp_path: Path,
) -> None:
    # A watcher sharing the state with a `provgit reconcile` took the
    # reconcile's "Synching" for an element left mid-apply and started a retry
    # run beside it (the drift property test's CI failure, 2026-12-07).
    here = os.uname().nodename
    other = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE, text=True
    )
    try:
        with Journal.open(tmp_path) as j:
            live = j.start_run("reconcile", other.pid, here)
            j.set_element_status("cs1", synching("cs1"), "running", live)
            mine = j.start_run("watch", os.getpid(), here)
            j.set_element_status("cs2", synching("cs2"), "running", mine)
            remote = j.start_run("reconcile", other.pid, "another-host")
            j.set_element_status("cs3", synching("cs3"), "running", remote)
            j.set_element_status("cs4", OFFLINE, "offline", live)
            everything = ["cs1", "cs2", "cs3", "cs4"]
            # Another process of this host applies cs1 now; this process's own
            # unfinished run and another host's (not seen from here) count as left.
            assert down_elements(j, everything) == {"cs2", "cs3", "cs4"}
            other.stdin.close()  # type: ignore[union-attr]
            other.wait(timeout=30)
            # Its process gone before the run finished: left mid-apply.
            assert down_elements(j, everything) == {"cs1", "cs2", "cs3", "cs4"}
    finally:
        if other.poll() is None:
            other.kill()
            other.wait(timeout=30)
