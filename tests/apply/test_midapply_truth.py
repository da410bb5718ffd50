"""An element that refuses provgit's token, or goes down, after the plan saw it
(between plan and apply, or in the middle of the run): the status says what
the element is (Token refused, Stopped, the IVR seed's words), its writes are
kept as pending updates, not piled up as distribution errors, and the next run
once it is fixed delivers them. Real simulator processes, the real CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from provgit import exitcodes
from support import fault_at

from .helpers import Ran, Sim, cli_process, journal, start_sims, write_config

pytestmark = pytest.mark.slow

# One write per call, one call at a time: "the Nth write call" is one record.
SERIAL = "  batch_size: 1\n  batches_in_flight: 1\n  element_concurrency: 1\n"


def _state(config: Path) -> Path:
    return config / ".provgit"


def _reconcile_faulted_at(point: str, sim: Sim, faults: dict[str, Any], config: Path) -> Ran:
    """`provgit reconcile CONFIG --format json` as a process, `faults` set on
    `sim` at its write `point`."""
    argv = fault_at.command(point, sim.url, faults, "reconcile", str(config), "--format", "json")
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=dict(os.environ))
    return Ran(p.returncode, p.stdout, p.stderr)


def _status(config: Path) -> tuple[int, dict[str, Any]]:
    """`provgit status CONFIG --format json`: its exit code and document."""
    r = cli_process("status", str(config), "--format", "json")
    assert r.out, r.err
    doc: dict[str, Any] = json.loads(r.out)
    return r.code, doc


def _events(config: Path, type_: str, element: str) -> list[str]:
    with journal(_state(config)) as j:
        return [e.message for e in j.events() if e.type == type_ and e.element == element]


def _resources_on(doc: dict[str, Any], element: str) -> dict[str, str]:
    """kind/resource -> its state on `element`, for every resource landing there."""
    return {
        f"{r['kind']}/{r['resource']}": r["elements"][element]["state"]
        for r in doc["resources"]
        if element in r["elements"]
    }


def _assert_delivered_and_in_sync(config: Path) -> None:
    again = cli_process("reconcile", str(config))
    assert again.code == exitcodes.OK, again.out + again.err
    code, doc = _status(config)
    assert code == exitcodes.OK and doc["in_sync"], doc["elements"]
    assert {e["status"] for e in doc["elements"].values()} == {"Sync Completed"}
    assert {r["status"] for r in doc["resources"]} == {"Sync Completed"}
    assert doc["pending_updates"] == [] and doc["distribution_errors"] == []


@pytest.fixture
def no_outside_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)


@pytest.mark.usefixtures("no_outside_state")
def test_a_token_revoked_mid_apply_is_token_refused_with_its_writes_pending(
    sims: list[Sim], tmp_path: Path
) -> None:
    cs1, cs2 = sims
    config = write_config(tmp_path / "config", sims, users=6, extra_settings=SERIAL)
    assert cli_process("reconcile", str(config)).code == exitcodes.OK
    write_config(tmp_path / "config", sims, users=6, extra_settings=SERIAL, first_name="Bea")

    # cs1 stops taking provgit's token right after the run's first write call.
    r = _reconcile_faulted_at("1", cs1, {"token_revoked": True}, config)
    assert r.code == exitcodes.APPLIED_WITH_ERRORS, r.out + r.err
    doc = json.loads(r.out)
    by = {e["element"]: e for e in doc["elements"]}
    assert by["cs1"]["status"] == "Token refused", by["cs1"]
    assert by["cs1"]["state"] == "unauthorized" and by["cs1"]["outcome"] == "unreachable"
    assert by["cs1"]["counts"]["failed"] == 0, by["cs1"]
    assert by["cs1"]["counts"]["pending"] >= 1
    assert {o["status"] for o in by["cs1"]["problems"]} == {"pending"}
    assert doc["distribution_errors"] == 0
    assert doc["pending_updates"] == by["cs1"]["counts"]["pending"]
    assert by["cs2"]["status"] == "Sync Completed", by["cs2"]
    with journal(_state(config)) as j:
        assert j.distribution_error_count() == 0
        assert {(p.collection, p.key) for p in j.pending("cs1")} == {
            (o["collection"], o["key"]) for o in by["cs1"]["problems"]
        }
        assert j.element_statuses()["cs1"]["status"] == "Token refused"
        assert j.open_intents() == []
    (down,) = _events(config, "element_down", "cs1")
    assert "Token refused" in down

    code, status = _status(config)
    assert code == exitcodes.APPLIED_WITH_ERRORS and not status["in_sync"]
    assert status["elements"]["cs1"]["status"] == "Token refused"
    assert status["elements"]["cs2"]["status"] == "Sync Completed"
    on_cs1 = _resources_on(status, "cs1")
    # Every resource landing on cs1: the token refusal, or (queued there) a
    # pending update; none of them Sync Completed.
    assert on_cs1 and set(on_cs1.values()) <= {"token_refused", "pending"}, on_cs1
    assert "token_refused" in on_cs1.values()
    there = [r["status"] for r in status["resources"] if "cs1" in r["elements"]]
    assert "Sync Completed" not in there, there
    assert status["distribution_errors"] == []
    assert len(status["pending_updates"]) == by["cs1"]["counts"]["pending"]

    # The token is put right: the next run delivers what was kept, nothing else.
    cs1.faults(token_revoked=False)
    _assert_delivered_and_in_sync(config)
    assert {u["first_name"] for s in sims for u in s.records()["users"].values()} == {"Bea"}
    assert len(_events(config, "element_up", "cs1")) == 1
    assert cs2.records()


@pytest.mark.usefixtures("no_outside_state")
def test_a_token_revoked_between_plan_and_apply_keeps_the_saved_plan_pending(
    sims: list[Sim], tmp_path: Path
) -> None:
    cs1, _ = sims
    config = write_config(tmp_path / "config", sims, users=4)
    saved = tmp_path / "plan.json"
    plan = cli_process("plan", str(config), "--out", str(saved))
    assert plan.code == exitcodes.OK, plan.out + plan.err
    cs1.faults(token_revoked=True)

    r = cli_process("apply", str(saved), "--yes", "--config", str(config), "--format", "json")
    assert r.code == exitcodes.APPLIED_WITH_ERRORS, r.out + r.err
    by = {e["element"]: e for e in json.loads(r.out)["elements"]}
    assert by["cs1"]["status"] == "Token refused" and by["cs1"]["counts"]["failed"] == 0
    assert by["cs1"]["counts"]["pending"] == len(by["cs1"]["problems"]) > 0
    assert cs1.records() == {}
    code, status = _status(config)
    assert code == exitcodes.APPLIED_WITH_ERRORS
    assert status["elements"]["cs1"]["status"] == "Token refused"
    assert status["distribution_errors"] == []

    cs1.faults(token_revoked=False)
    _assert_delivered_and_in_sync(config)


@pytest.mark.usefixtures("no_outside_state")
def test_an_element_going_down_mid_apply_is_stopped_not_failed_and_keeps_the_rest_pending(
    tmp_path: Path,
) -> None:
    (cs1,) = start_sims(tmp_path, [("cs1", "mivb")])
    try:
        config = write_config(tmp_path / "config", [cs1], users=2, extra_settings=SERIAL)
        assert cli_process("reconcile", str(config)).code == exitcodes.OK
        # Three classes of service more: three writes, all to cs1.
        net = config / "net.yaml"
        net.write_text(
            net.read_text().replace(
                "  - {number: 7, comment: Sales}\n",
                "  - {number: 7, comment: Sales}\n"
                + "".join(f"  - {{number: {n}, comment: C{n}}}\n" for n in (8, 9, 10)),
            )
        )
        # The second write call finds cs1's services stopped: the first landed.
        r = _reconcile_faulted_at("2:before", cs1, {"offline": True}, config)
        assert r.code == exitcodes.APPLIED_WITH_ERRORS, r.out + r.err
        by = {e["element"]: e for e in json.loads(r.out)["elements"]}
        e = by["cs1"]
        assert by["mcl"]["status"] == "Sync Completed", by["mcl"]
        assert e["status"] == "Stopped" and e["state"] == "stopped", e
        assert e["outcome"] == "unreachable"
        assert e["counts"]["ok"] == 1 and e["counts"]["failed"] == 0, e["counts"]
        assert e["counts"]["pending"] == 2
        assert {o["status"] for o in e["problems"]} == {"pending"}
        with journal(_state(config)) as j:
            assert j.pending_count() == e["counts"]["pending"]
            assert j.element_statuses()["cs1"]["status"] == "Stopped"
            assert j.open_intents() == []
        (down,) = _events(config, "element_down", "cs1")
        assert "Stopped" in down
        assert len(_events(config, "sync_failed", "cs1")) == 1

        code, status = _status(config)
        assert code == exitcodes.APPLIED_WITH_ERRORS and not status["in_sync"]
        assert status["elements"]["cs1"]["status"] == "Stopped"
        assert status["distribution_errors"] == []
        assert len(status["pending_updates"]) == e["counts"]["pending"]

        cs1.faults(offline=False)
        _assert_delivered_and_in_sync(config)
        assert len(_events(config, "element_up", "cs1")) == 1
    finally:
        cs1.stop()


@pytest.mark.usefixtures("no_outside_state")
def test_an_ivr_server_going_down_mid_apply_says_so_in_the_ivr_words(tmp_path: Path) -> None:
    (ivr1,) = start_sims(tmp_path, [("ivr1", "ivr")])
    try:
        config = write_config(tmp_path / "config", [ivr1], users=0, extra_settings=SERIAL)
        assert cli_process("reconcile", str(config)).code == exitcodes.OK
        # Three media servers more: three writes, all to ivr1.
        net = config / "net.yaml"
        net.write_text(
            net.read_text()
            + "".join(f"  - {{name: ms{n}, host: 10.0.0.{n + 5}}}\n" for n in (2, 3, 4))
        )
        r = _reconcile_faulted_at("2:before", ivr1, {"offline": True}, config)
        assert r.code == exitcodes.APPLIED_WITH_ERRORS, r.out + r.err
        e = {e["element"]: e for e in json.loads(r.out)["elements"]}["ivr1"]
        assert e["status"] == "IVR services are stopped or the server is offline", e
        assert e["counts"]["ok"] == 1 and e["counts"]["pending"] == 2, e["counts"]
        assert len(_events(config, "element_down", "ivr1")) == 1

        code, status = _status(config)
        assert code == exitcodes.APPLIED_WITH_ERRORS
        assert (
            status["elements"]["ivr1"]["status"]
            == "IVR services are stopped or the server is offline"
        )
        assert status["alarm"]["ivr_service"], status["alarm"]

        ivr1.faults(offline=False)
        _assert_delivered_and_in_sync(config)
        assert set(ivr1.records()["media_servers"]) == {"ms1", "ms2", "ms3", "ms4"}
    finally:
        ivr1.stop()
