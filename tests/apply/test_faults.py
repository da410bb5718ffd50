"""Apply against real simulator processes on 127.0.0.1, with faults injected for real."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from provgit.api.planning import plan_network
from provgit.apply import ApplyOptions
from provgit.cli.common import read_source
from provgit.plan import PlanOptions
from provgit.validate import validate_source

from .helpers import (
    PROVGIT,
    Sim,
    apply_in_process,
    cli,
    cli_process,
    journal,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.slow


def _state(config: Path) -> Path:
    return config / ".provgit"


def test_offline_during_apply_then_back_lands_as_pending(sims: list[Sim], tmp_path: Path) -> None:
    _, cs2 = sims
    config = write_config(tmp_path / "config", sims, users=4)
    plan = tmp_path / "plan.json"
    assert cli("plan", str(config), "--out", str(plan)).code == 0
    cs2.faults(offline=True)  # goes down between plan and apply
    r = cli("apply", str(plan), "--config", str(config), "--format", "json")
    assert r.code == 4, r.out
    doc = json.loads(r.out)
    by = {e["element"]: e for e in doc["elements"]}
    assert by["cs2"]["status"] == "Stopped"
    assert by["cs2"]["counts"]["pending"] > 0 and by["cs2"]["counts"]["ok"] == 0
    assert by["cs1"]["status"] == "Sync Completed"
    assert by["mcl"]["status"] == "Sync Completed"
    assert doc["status"] == "Sync Incomplete"
    with journal(_state(config)) as j:
        pending = j.pending("cs2")
        assert pending and all(p.attempts == 1 for p in pending)
        assert all("stopped/offline" in p.last_error for p in pending)
        assert j.distribution_error_count() == 0
        assert j.element_statuses()["cs2"]["status"] == "Stopped"
    assert cs2.records() == {}
    cs2.faults(offline=False)
    # No config change: the next run re-plans from observation and delivers.
    again = cli("reconcile", str(config))
    assert again.code == 0, again.out
    with journal(_state(config)) as j:
        assert j.pending_count() == 0
        assert j.element_statuses()["cs2"]["status"] == "Sync Completed"
        assert j.open_intents() == []
    assert set(cs2.records()["users"]) == {"user1", "user3"}


def test_refused_record_skips_its_dependents(sims: list[Sim], tmp_path: Path) -> None:
    cs1, _ = sims
    config = write_config(tmp_path / "config", sims, users=4)
    cs1.faults(refuse=[{"collection": "cos", "key": "7"}])
    r = cli("reconcile", str(config), "--format", "json")
    assert r.code == 4, r.out
    doc = json.loads(r.out)
    cs1_ops = {
        (o["collection"], o["key"]): o
        for e in doc["elements"]
        if e["element"] == "cs1"
        for o in e["problems"]
    }
    assert cs1_ops[("cos", "7")]["status"] == "failed"
    assert cs1_ops[("cos", "7")]["error_type"] == "refused"
    # user0 uses COS 7 and is hosted on cs1; the others do not depend on it.
    assert cs1_ops[("users", "user0")]["status"] == "skipped"
    assert cs1_ops[("users", "user0")]["message"] == "skipped: depends on cos/7"
    assert set(cs1_ops) == {("cos", "7"), ("users", "user0")}
    by = {e["element"]: e["status"] for e in doc["elements"]}
    assert by == {"mcl": "Sync Completed", "cs1": "Failed cs1", "cs2": "Sync Completed"}
    assert doc["alarm"] == "warning"
    assert doc["run"]["resources"] if "run" in doc else True
    assert set(cs1.records()["users"]) == {"user2"}

    listed = json.loads(cli("errors", "list", "-C", str(config), "--format", "json").out)
    assert listed["count"] == 1 and listed["alarm"] == "warning"
    err = listed["errors"][0]
    assert err["element"] == "cs1" and err["form"] == "Class of Service Options"
    assert err["action"] == "add" and err["key"] == "7" and err["status"] == "idle"
    assert err["error_type"] == "refused" and "injected fault" in err["reason"]
    assert err["detail"]["comment"] == "Sales"
    grouped = cli("errors", "list", "-C", str(config), "--group-by", "form")
    assert "Class of Service Options (1)" in grouped.out
    csv_out = cli("errors", "list", "-C", str(config), "--format", "csv", "--element", "cs1")
    assert csv_out.out.count("\n") == 2
    with journal(_state(config)) as j:
        res = {(r["kind"], r["resource"]): r["status"] for r in j.resource_statuses()}
        assert res[("classes_of_service", "7")] == "Sync Incomplete"
        assert res[("users", "user0")] == "Sync Incomplete"
        assert res[("users", "user2")] == "Sync Completed"
        assert [e.type for e in j.events()].count("alarm_raised") == 1

    # Held, not hammered: the next reconcile leaves it to the admin.
    held = json.loads(cli("reconcile", str(config), "--format", "json").out)
    problems = [o for e in held["elements"] for o in e["problems"]]
    assert {(o["key"], o["status"]) for o in problems} == {("7", "held"), ("user0", "skipped")}

    cs1.faults(refuse=[])
    retried = cli("errors", "retry", "-C", str(config), str(err["action_id"]))
    assert retried.code == 0, retried.out + retried.err
    assert "cs1 add cos/7: applied" in retried.out
    final = cli("reconcile", str(config), "--format", "json")
    assert final.code == 0, final.out
    assert json.loads(final.out)["alarm"] is None
    with journal(_state(config)) as j:
        assert j.distribution_error_count() == 0
        assert [e.type for e in j.events()].count("alarm_cleared") == 1
        assert j.resource_statuses(not_completed_only=True) == []
    assert set(cs1.records()["users"]) == {"user0", "user2"}


def test_saved_plan_refused_after_out_of_band_edit(sims: list[Sim], tmp_path: Path) -> None:
    cs1, _ = sims
    config = write_config(tmp_path / "config", sims, users=2)
    assert cli("reconcile", str(config)).code == 0
    write_config(tmp_path / "config", sims, users=2, first_name="Bea")
    plan = tmp_path / "plan.json"
    assert cli("plan", str(config), "--out", str(plan)).code == 0
    # Another user edits COS 1 on cs1 with the element's own tool.
    cs1.admin(
        "/admin/edit",
        {"op": "put", "collection": "cos", "key": "1", "fields": {"number": 1, "comment": "X"}},
    )
    before = {s.name: s.records() for s in sims}
    r = cli("apply", str(plan), "--config", str(config))
    assert r.code == 3, r.out
    assert "element cs1 changed by another user; run plan again" in r.out
    assert "nothing was applied" in r.out
    assert {s.name: s.records() for s in sims} == before
    with journal(_state(config)) as j:
        assert j.distribution_error_count() == 0
    partial = cli("apply", str(plan), "--config", str(config), "--partial", "--format", "json")
    assert partial.code == 4, partial.out
    by = {e["element"]: e for e in json.loads(partial.out)["elements"]}
    assert by["cs1"]["outcome"] == "refused"
    assert by["cs2"]["status"] == "Sync Completed" and by["cs2"]["counts"]["ok"] >= 1
    assert sims[0].records()["users"]["user0"]["first_name"] == "Ann"
    assert sims[1].records()["users"]["user1"]["first_name"] == "Bea"


def test_conflict_becomes_distribution_error_then_force(sims: list[Sim], tmp_path: Path) -> None:
    cs1, _ = sims
    config = write_config(tmp_path / "config", sims, users=2)
    state = _state(config)
    assert cli("reconcile", str(config)).code == 0
    write_config(tmp_path / "config", sims, users=2, first_name="Bea")

    async def plan_then_apply() -> None:
        source = read_source(config)
        valid = validate_source(source, None)
        run = await plan_network(valid.state, source, config, state, PlanOptions())
        # Between this plan and its writes another user changes user0 on cs1.
        fields = dict(cs1.records()["users"]["user0"], first_name="Zed")
        cs1.admin(
            "/admin/edit", {"op": "put", "collection": "users", "key": "user0", "fields": fields}
        )
        result = await apply_in_process(
            valid, run.plan, config, ApplyOptions(check_stale=False, fresh=True)
        )
        assert result.exit_code() == 4

    asyncio.run(plan_then_apply())
    with journal(state) as j:
        (err,) = j.distribution_errors()
        assert (err.element, err.key, err.error_type) == ("cs1", "user0", "conflict")
        assert err.reason == "changed by another user; refresh"
        assert err.form == "User and Device Configuration"
        assert "drift" in [e.type for e in j.events()]
    assert cs1.records()["users"]["user0"]["first_name"] == "Zed"
    retry = cli("errors", "retry", "-C", str(config), str(err.id))
    assert retry.code == 3 and f"provgit errors force {err.id}" in retry.err
    forced = cli("errors", "force", "-C", str(config), str(err.id))
    assert forced.code == 0, forced.out + forced.err
    assert cs1.records()["users"]["user0"]["first_name"] == "Bea"
    with journal(state) as j:
        assert j.distribution_error_count() == 0


def test_locked_element_retried_then_pending(sims: list[Sim], tmp_path: Path) -> None:
    cs1, _ = sims
    config = write_config(tmp_path / "config", sims, users=2)
    cs1.faults(locked=True)
    r = cli("reconcile", str(config), "--format", "json")
    assert r.code == 4, r.out
    by = {e["element"]: e for e in json.loads(r.out)["elements"]}
    assert by["cs1"]["status"] == "Failed cs1"
    assert by["cs1"]["counts"]["pending"] == len(by["cs1"]["problems"]) > 0
    assert all(o["error_type"] == "locked" for o in by["cs1"]["problems"])
    assert by["cs2"]["status"] == "Sync Completed"
    with journal(_state(config)) as j:
        assert j.pending("cs1") and j.distribution_error_count() == 0
        first = {(p.collection, p.key): p.attempts for p in j.pending("cs1")}
    assert cli("reconcile", str(config)).code == 4
    with journal(_state(config)) as j:
        assert {(p.collection, p.key): p.attempts for p in j.pending("cs1")} == {
            k: v + 1 for k, v in first.items()
        }
    cs1.faults(locked=False)
    assert cli("reconcile", str(config)).code == 0
    with journal(_state(config)) as j:
        assert j.pending_count() == 0
        assert j.element_statuses()["cs1"]["status"] == "Sync Completed"


def test_second_concurrent_applier_is_refused(sims: list[Sim], tmp_path: Path) -> None:
    cs1, _ = sims
    # One write per request, one request at a time: the first applier goes on
    # writing cs1 for a dozen requests after it takes the lock.
    config = write_config(
        tmp_path / "config",
        sims,
        users=10,
        extra_settings="  batch_size: 1\n  batches_in_flight: 1\n",
    )
    net = config / "net.yaml"
    # Above the 10 s answers below: the first applier waits for them.
    net.write_text(net.read_text().replace("timeout: 5}", "timeout: 60}"))
    saved = tmp_path / "plan.json"
    assert cli("plan", str(config), "--out", str(saved), "--detailed-exitcode").code == 2
    cs1.faults(latency_ms=400)
    first = subprocess.Popen(
        [*PROVGIT, "reconcile", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lock_file = _state(config) / "locks" / "cs1.lock"
        assert wait_for(lambda: lock_file.exists() and lock_file.read_text().strip(), 60)
        # From here every answer of cs1 takes 10 s: the first applier, which
        # has writes left, holds the lock until the test lets it go. The
        # second applier reaches the lock without asking cs1 anything (a
        # saved plan takes the lock before it reads the element).
        cs1.faults(latency_ms=10_000)
        assert first.poll() is None, "the first applier finished before the test held it"
        second = cli("apply", str(saved), "--config", str(config), "--yes")
        cs1.faults(latency_ms=0)
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=5)
    assert second.code == 3, second.out
    assert f"element cs1 is being applied by pid {first.pid}" in second.out
    assert "(reconcile, since" in second.out
    assert first.returncode == 0, out + err
    assert not lock_file.read_text().strip()  # released, holder cleared
    # The lock went with the first applier: the next run takes it and is in sync.
    assert cli_process("reconcile", str(config), timeout=60).code == 0


def test_a_reconcile_of_one_element_is_not_said_to_sync_the_network(
    sims: list[Sim], tmp_path: Path
) -> None:
    """`reconcile --element cs1` on a first rollout: cs1 is in sync, cs2 and
    mcl were not in the run. Its line, its JSON and its journal run row say so,
    never Sync Completed for the network; the exit code is that of the run (0)."""
    config = write_config(tmp_path / "config", sims, users=4)
    r = cli("reconcile", str(config), "--element", "cs1")
    assert r.code == 0, r.out
    (line,) = [x for x in r.out.splitlines() if "applied" in x and "not in this run" in x]
    assert line.startswith("cs1: Sync Completed, ") and line.endswith("; cs2, mcl not in this run")
    assert not any(x.startswith("Sync Completed") for x in r.out.splitlines()), r.out
    j = cli("reconcile", str(config), "--element", "cs1", "--format", "json")
    assert j.code == 0, j.out
    doc = json.loads(j.out)
    assert doc["status"] == "Sync Incomplete" and doc["exit_code"] == 0
    assert doc["left_out"] == ["cs2", "mcl"]
    assert [e["element"] for e in doc["elements"]] == ["cs1"]
    assert doc["elements"][0]["status"] == "Sync Completed"
    with journal(_state(config)) as jr:
        runs = jr.runs(2)
        assert [r["outcome"] for r in runs] == ["Sync Incomplete", "Sync Incomplete"], runs
        assert all(r["summary"]["left_out"] == ["cs2", "mcl"] for r in runs), runs
        statuses = jr.element_statuses()
        assert statuses["cs1"]["status"] == "Sync Completed"
        assert statuses.get("cs2", {}).get("status") != "Sync Completed"
    # The whole network reconciled: Sync Completed, nothing left out.
    whole = cli("reconcile", str(config), "--format", "json")
    assert whole.code == 0, whole.out
    assert json.loads(whole.out)["status"] == "Sync Completed"
    assert json.loads(whole.out)["left_out"] == []
