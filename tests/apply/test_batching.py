"""Batches and requests in flight, an element lost mid-wave, and the errors
commands' effects on status — against real simulator processes on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from provgit.api.network import Network
from provgit.api.planning import plan_network
from provgit.apply import ApplyOptions
from provgit.apply.waves import waves as cut_waves
from provgit.cli.common import read_source
from provgit.drivers.http import HttpDriver
from provgit.plan import PlanOptions
from provgit.validate import validate_source

from .helpers import (
    PROVGIT,
    Sim,
    apply_in_process,
    cli,
    journal,
    start_sims,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.slow

BATCHING = "  batch_size: 4\n  batches_in_flight: 2\n"


@pytest.fixture
def cs1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    (sim,) = start_sims(tmp_path, [("cs1", "mivb")])
    try:
        yield sim
    finally:
        sim.stop()


def test_batch_size_and_requests_in_flight_come_from_the_settings(cs1: Sim, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", [cs1], users=30, extra_settings=BATCHING)
    state = config / ".provgit"

    async def plan_and_apply() -> tuple[int, int]:
        source = read_source(config)
        valid = validate_source(source, None)
        assert valid.ok
        assert valid.state.settings.apply.batch_size == 4
        run = await plan_network(valid.state, source, config, state, PlanOptions())
        (ep,) = [e for e in run.plan.elements if e.element == "cs1"]
        waves = cut_waves(ep.operations)
        expected = sum(math.ceil(len(w) / 4) for w in waves)
        assert expected >= len(waves) + 7  # the 30 users alike are cut into 8 batches
        requests: list[int] = []

        def count(network: Network) -> None:
            driver = network.drivers["cs1"]
            assert isinstance(driver, HttpDriver)
            requests.append(driver.stats.requests)

        options = ApplyOptions(check_stale=False, fresh=True)
        result = await apply_in_process(valid, run.plan, config, options, count)
        assert result.ok, result.to_json(full=False)
        return requests[0], expected

    requests, expected = asyncio.run(plan_and_apply())
    # One request per batch of at most 4 writes, each wave cut on its own,
    # and one read of the change feed: the element kept what it answered done.
    assert requests == expected + 1
    assert set(cs1.records()["users"]) == {f"user{n}" for n in range(30)}
    with journal(state) as j:
        assert j.open_intents() == []


def test_element_lost_mid_wave_keeps_the_rest_as_pending_then_lands(
    cs1: Sim, tmp_path: Path
) -> None:
    users = 12
    config = write_config(
        tmp_path / "config",
        [cs1],
        users=users,
        extra_settings="  batch_size: 1\n  batches_in_flight: 1\n",
    )
    state = config / ".provgit"
    # 0.4 s an answer (was 0.1 s): the users still to go once three landed
    # take ~3.6 s, more than this test's poll may lag at load 30+; at 0.1 s a
    # late poll could find the run over, with nothing left to lose.
    cs1.faults(latency_ms=400)
    proc = subprocess.Popen(
        [*PROVGIT, "reconcile", str(config), "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # A few users in, the element stops answering for good.
        assert wait_for(lambda: len(cs1.records().get("users", {})) >= 3, timeout=60)
        cs1.faults(offline=True)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.returncode == 4, out + err
    doc = json.loads(out)
    (el,) = [e for e in doc["elements"] if e["element"] == "cs1"]
    landed = set(cs1.records()["users"])
    with journal(state) as j:
        pending = {p.key for p in j.pending("cs1") if p.collection == "users"}
        assert j.open_intents() == []
        assert j.distribution_error_count() == 0
    # Nothing lost, nothing twice: every user either landed or waits.
    assert pending and landed
    assert landed | pending == {f"user{n}" for n in range(users)}
    assert not landed & pending
    assert el["counts"]["pending"] == len(pending)
    # What the element is now (its services stopped), not "Failed cs1".
    assert el["status"] == "Stopped" and el["state"] == "stopped"

    cs1.faults(offline=False, latency_ms=0)
    again = cli("reconcile", str(config))
    assert again.code == 0, again.out + again.err
    assert set(cs1.records()["users"]) == {f"user{n}" for n in range(users)}
    with journal(state) as j:
        assert j.pending_count() == 0
        assert j.element_statuses()["cs1"]["status"] == "Sync Completed"


def _refused_cos7(cs1: Sim, config: Path) -> int:
    cs1.faults(refuse=[{"collection": "cos", "key": "7"}])
    r = cli("reconcile", str(config), "--format", "json")
    assert r.code == 4, r.out
    assert json.loads(r.out)["alarm"] == "warning"
    with journal(config / ".provgit") as j:
        (e,) = j.distribution_errors()
        return e.id


def test_errors_delete_recomputes_the_alarm_at_once(cs1: Sim, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", [cs1], users=2)
    error_id = _refused_cos7(cs1, config)
    deleted = cli("errors", "delete", "-C", str(config), str(error_id))
    assert deleted.code == 0, deleted.out + deleted.err
    assert "1 distribution error(s) deleted, 0 left" in deleted.out
    assert "no data distribution alarm" in deleted.out
    with journal(config / ".provgit") as j:
        assert j.alarm_level() is None
        assert [e.type for e in j.events()][-1] == "alarm_cleared"
    # Deleted, not fixed: the next reconcile tries the record again.
    again = cli("reconcile", str(config), "--format", "json")
    assert again.code == 4 and json.loads(again.out)["alarm"] == "warning"


def test_errors_delete_with_an_unreadable_provgit_yaml_leaves_the_alarm_to_the_next_run(
    cs1: Sim, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config", [cs1], users=2)
    error_id = _refused_cos7(cs1, config)
    (config / "provgit.yaml").write_text("version: [\n")
    deleted = cli("errors", "delete", "-C", str(config), str(error_id))
    assert deleted.code == 0
    assert "could not be read: the alarm is recomputed by the next run" in deleted.err
    with journal(config / ".provgit") as j:
        assert j.distribution_error_count() == 0
        assert j.alarm_level() == "warning"


def test_retry_of_a_record_fixed_on_the_element_clears_its_error(cs1: Sim, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", [cs1], users=2)
    error_id = _refused_cos7(cs1, config)
    plan = json.loads(cli("plan", str(config), "--format", "json").out)
    (op,) = [
        o
        for e in plan["elements"]
        if e["element"] == "cs1"
        for o in e["operations"]
        if (o["collection"], o["key"]) == ("cos", "7")
    ]
    # The element's own admin fixes what refused it and enters exactly what
    # the config wants.
    cs1.faults(refuse=[])
    cs1.admin("/admin/edit", {"op": "put", "collection": "cos", "key": "7", "fields": op["fields"]})
    retried = cli("errors", "retry", "-C", str(config), str(error_id))
    assert retried.code == 0, retried.out + retried.err
    assert f"{error_id}: cs1 cos/7 is already in sync; cleared" in retried.out
    assert "cs1 add cos/7" not in retried.out
    with journal(config / ".provgit") as j:
        assert j.distribution_error_count() == 0
