"""Apply on embedded elements only: no processes, runs in a fraction of a second each."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from provgit.apply import ElementLock
from provgit.apply import status as st
from provgit.model.settings import Alarms

from .helpers import cli, journal

SMALL = """\
elements:
  - {name: mcl, type: micollab, ceid: 1}
  - {name: mivb1, type: mivb, ceid: 2, cluster: east, admin_group: east, partner: mivb2}
  - {name: mivb2, type: mivb, ceid: 3, cluster: east, admin_group: east, partner: mivb1}
  - {name: ivr1, type: ivr, ceid: 4}
classes_of_service:
  - {number: 1, comment: Default}
departments:
  - name: Sales
templates:
  - name: Basic
    phones: [{label: Desk, device_type: "6920", primary: true}]
    cos: {day: 1}
roles:
  - {name: Agent, template: Basic}
users:
  - login_id: jdoe
    first_name: John
    last_name: Doe
    department: Sales
    role: Agent
    host: mivb1
    voicemail_pin: {env: APPLY_TEST_PIN}
    services:
      - dn: "2001"
ivr_media_servers:
  - {name: ms1, host: 10.0.0.5}
"""


PIN = "86420975"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("APPLY_TEST_PIN", PIN)
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    root = tmp_path / "config"
    root.mkdir()
    (root / "provgit.yaml").write_text("version: 1\nnetwork: smoke\n")
    (root / "net.yaml").write_text(SMALL)
    return root


def test_status_words_are_the_seeds() -> None:
    assert st.synching("mivb1") == "Synching mivb1"
    assert st.failed("mivb1") == "Failed mivb1"
    assert st.syncing("workflows", 1, 3) == "Syncing IVRs 1/3 Completed"
    assert st.syncing("prompts", 0, 2) == "Syncing IVRs 0/2 Completed"
    assert st.syncing("ivr_media_servers", 2, 2) == "Syncing IVRs 2/2 Completed"
    assert st.syncing("users", 1, 2) == "Syncing 1/2 Completed"
    assert (st.SYNC_COMPLETED, st.SYNC_INCOMPLETE) == ("Sync Completed", "Sync Incomplete")
    assert (st.STOPPED, st.OFFLINE) == ("Stopped", "Offline")


def test_alarm_levels_above_thresholds() -> None:
    a = Alarms()
    assert [st.alarm_level(n, a) for n in (0, 1, 100, 101, 1000, 1001)] == [
        None,
        "warning",
        "warning",
        "minor",
        "minor",
        "major",
    ]


def test_reconcile_twice_second_run_in_sync(config: Path, tmp_path: Path) -> None:
    work = tmp_path / "copy"
    shutil.copytree(config, work)
    first = cli("reconcile", str(work), "--format", "json")
    assert first.code == 0, first.out + first.err
    doc = json.loads(first.out)
    assert doc["status"] == "Sync Completed"
    assert doc["counts"]["ok"] > 0
    assert {e["element"]: e["status"] for e in doc["elements"]} == {
        "mcl": "Sync Completed",
        "mivb1": "Sync Completed",
        "mivb2": "Sync Completed",
        "ivr1": "Sync Completed",
    }
    second = cli("reconcile", str(work))
    assert second.code == 0, second.out
    lines = second.out.splitlines()
    for name in ("mcl", "mivb1", "mivb2", "ivr1"):
        assert any(line.split() == [name, "Sync", "Completed"] for line in lines), second.out
    assert "Sync Completed: 0 applied, 0 failed" in second.out
    status = json.loads((work / ".provgit" / "status" / "status.json").read_text())
    assert status["distribution_errors"] == [] and status["pending_updates"] == []
    assert {n: s["status"] for n, s in status["elements"].items()} == dict.fromkeys(
        ("mcl", "mivb1", "mivb2", "ivr1"), "Sync Completed"
    )
    with journal(work / ".provgit") as j:
        assert j.open_intents() == []
        history = [h["status"] for h in j.status_history("element", "mivb1")]
        assert history[:2] == ["Synching mivb1", "Sync Completed"]
        assert j.resource_statuses(not_completed_only=True) == []
        types = [e.type for e in j.events()]
        assert types.count("sync_completed") == 4
    # The PIN never reaches a report, the journal or the output.
    with journal(work / ".provgit") as j:
        dump = "\n".join(j._db.iterdump())
    assert PIN not in dump
    for path in (work / ".provgit" / "status").rglob("*"):
        assert PIN not in path.read_text(), path
    assert PIN not in first.out + second.out


def test_apply_config_needs_yes_without_terminal(config: Path) -> None:
    r = cli("apply", str(config))
    assert r.code == 1
    assert "pass --yes" in r.err
    with journal(config / ".provgit") as j:
        assert j.runs() == []


def test_apply_saved_plan_then_in_sync(config: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    assert cli("plan", str(config), "--out", str(plan)).code == 0
    r = cli("apply", str(plan), "--config", str(config))
    assert r.code == 0, r.out + r.err
    assert "Sync Completed" in r.out
    # Applying the same plan again: the elements moved since it was made.
    again = cli("apply", str(plan), "--config", str(config))
    assert again.code == 3
    assert "changed by another user; run plan again" in again.out


def test_queue_cap_refuses_and_applies_nothing(config: Path) -> None:
    (config / "provgit.yaml").write_text("version: 1\nnetwork: smoke\napply: {queue_cap: 3}\n")
    r = cli("reconcile", str(config))
    assert r.code == 3
    assert "queue cap" in r.out and "nothing was applied or dropped" in r.out
    plan = cli("plan", str(config), "--format", "json")
    assert json.loads(plan.out)["totals"]["add"] > 3  # still everything to do


def test_lock_held_refuses_naming_holder(config: Path) -> None:
    lock = ElementLock(config / ".provgit", "mivb1")
    lock.acquire("provgit reconcile (other)")
    try:
        r = cli("reconcile", str(config))
    finally:
        lock.release()
    assert r.code == 3
    assert "element mivb1 is being applied by pid" in r.out
    assert "provgit reconcile (other)" in r.out
    assert "nothing was applied" in r.out
    # Nothing was written to any element.
    plan = json.loads(cli("plan", str(config), "--format", "json").out)
    assert all(e["counts"]["add"] > 0 for e in plan["elements"])


def test_errors_list_empty_formats(config: Path) -> None:
    assert cli("reconcile", str(config)).code == 0
    r = cli("errors", "list", "-C", str(config))
    assert r.code == 0 and "No distribution errors." in r.out
    body = json.loads(cli("errors", "list", "-C", str(config), "--format", "json").out)
    assert body == {"alarm": None, "pending_updates": 0, "count": 0, "errors": [], "pending": []}
    csv_out = cli("errors", "list", "-C", str(config), "--format", "csv").out
    assert csv_out.startswith("action_id,element,time,last_retried,action,form,key,")
    bad = cli("errors", "retry", "-C", str(config), "99")
    assert bad.code == 1 and "no distribution error with id 99" in bad.err


def test_errors_commands_on_a_path_without_runs_create_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-config"
    r = cli("errors", "list", "-C", str(missing))
    assert r.code == 1 and "no runs recorded" in r.err
    assert not missing.exists()


def test_errors_ids_out_of_range_are_usage_errors(config: Path) -> None:
    assert cli("reconcile", str(config)).code == 0
    for command in ("retry", "delete", "force"):
        r = cli("errors", command, "-C", str(config), "99999999999999999999")
        assert r.code == 1, (command, r.out, r.err)
        assert "is not in the range" in r.err


def test_saved_plan_naming_an_element_the_config_dropped_is_refused(
    config: Path, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.json"
    assert cli("plan", str(config), "--out", str(plan)).code == 0
    net = config / "net.yaml"
    net.write_text(net.read_text().replace("  - {name: ivr1, type: ivr, ceid: 4}\n", ""))
    r = cli("apply", str(plan), "--config", str(config))
    assert r.code == 3  # refused for safety, as every re-check at apply
    assert "the plan names element(s) the config no longer has: ivr1" in r.err
    with journal(config / ".provgit") as j:
        assert j.runs() == []
