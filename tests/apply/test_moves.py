"""Make before break: a user moved from call server cs1 to cs2 is deleted from
cs1 only once cs2 has it (created and kept), against real simulator processes.

write_config hosts user0 and user2 on cs1 and user1 on cs2; each call server
keeps a remote_directory entry (keyed by DN) for the users hosted elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provgit import exitcodes

from .helpers import (
    Sim,
    cli,
    cli_killed_at,
    journal,
    move_user0,
    start_sims,
    users_on,
    write_config,
)

pytestmark = pytest.mark.slow
HELD = "Move pending: delete of users/user0 held until cs2 has it"


def _directory(sim: Sim) -> set[str]:
    return set(sim.records().get("remote_directory", {}))


def _reconcile(config: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    r = cli("reconcile", str(config), "--format", "json")
    return r.code, {e["element"]: e for e in json.loads(r.out)["elements"]}


def _status(config: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(cli("status", str(config), "--format", "json").out)
    return doc


def _assert_moved(config: Path, cs1: Sim, cs2: Sim) -> None:
    """user0 on cs2 only, cs1 pointing at it by its DN, and the status says so."""
    assert "user0" in users_on(cs2) and "user0" not in users_on(cs1)
    assert "3000" in _directory(cs1) and "3000" not in _directory(cs2)
    status = _status(config)
    assert status["in_sync"] is True, status["elements"]
    assert {e["status"] for e in status["elements"].values()} == {"Sync Completed"}


def _assert_held_on_cs1(config: Path, cs1: Sim) -> None:
    """The move waits: cs1 still hosts user0, and every report says why."""
    assert "user0" in users_on(cs1) and "3000" not in _directory(cs1)
    status = _status(config)
    assert status["in_sync"] is False
    assert status["elements"]["cs1"]["status"].startswith(HELD), status["elements"]["cs1"]
    with journal(config / ".provgit") as j:
        reasons = {(p.collection, p.key): p.last_error for p in j.pending("cs1")}
    assert reasons[("users", "user0")].startswith(HELD)
    # The directory entry that takes user0's DN on cs1 waits for that delete.
    assert "waits for the delete of users/user0" in reasons[("remote_directory", "3000")]


def test_a_user_moved_to_a_call_server_that_is_down_stays_on_the_old_one_until_it_is_back(
    sims: list[Sim], tmp_path: Path
) -> None:
    cs1, cs2 = sims
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0
    move_user0(config)
    cs2.faults(offline=True)

    code, by = _reconcile(config)
    assert code == exitcodes.APPLIED_WITH_ERRORS
    assert by["cs1"]["status"].startswith(HELD) and by["cs1"]["outcome"] == "held"
    assert by["cs2"]["status"] == "Stopped"
    _assert_held_on_cs1(config, cs1)
    status = _status(config)
    user0 = next(
        r for r in status["resources"] if r["kind"] == "users" and r["resource"] == "user0"
    )
    assert user0["status"].startswith("Syncing"), user0
    # A run while cs2 is still down holds it again, it does not give up.
    assert _reconcile(config)[0] == exitcodes.APPLIED_WITH_ERRORS
    _assert_held_on_cs1(config, cs1)

    cs2.faults(offline=False)
    code, by = _reconcile(config)
    assert code == exitcodes.OK, by
    _assert_moved(config, cs1, cs2)
    with journal(config / ".provgit") as j:
        assert j.pending() == []


def test_a_create_the_new_element_refuses_keeps_the_user_where_it_was(
    sims: list[Sim], tmp_path: Path
) -> None:
    cs1, cs2 = sims
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0
    move_user0(config)
    cs2.faults(refuse=[{"collection": "users", "key": "user0"}])

    code, by = _reconcile(config)
    assert code == exitcodes.APPLIED_WITH_ERRORS
    assert by["cs2"]["status"] == "Failed cs2"
    assert any(p["error_type"] == "refused" for p in by["cs2"]["problems"])
    _assert_held_on_cs1(config, cs1)
    assert "user0" not in users_on(cs2)

    cs2.faults(refuse=[])
    assert cli("errors", "retry", "--all", "-C", str(config)).code == 0
    assert "user0" in users_on(cs2) and "user0" in users_on(cs1)  # the retry was cs2's only
    assert _reconcile(config)[0] == exitcodes.OK
    _assert_moved(config, cs1, cs2)


def test_a_create_answered_done_but_not_kept_does_not_release_the_delete(
    sims: list[Sim], tmp_path: Path
) -> None:
    cs1, cs2 = sims
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0
    move_user0(config)
    cs2.faults(lie="drop")  # answers 200 to every write, keeps nothing

    code, by = _reconcile(config)
    assert code == exitcodes.APPLIED_WITH_ERRORS
    assert any(p["error_type"] == "not_stored" for p in by["cs2"]["problems"]), by["cs2"]
    _assert_held_on_cs1(config, cs1)


def test_a_user_removed_from_the_config_is_deleted_at_once_whatever_other_elements_say(
    sims: list[Sim], tmp_path: Path
) -> None:
    cs1, cs2 = sims
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0
    cs2.faults(offline=True)
    write_config(tmp_path / "config", sims, users=2)  # user2 (on cs1) removed

    code, by = _reconcile(config)
    assert code == exitcodes.APPLIED_WITH_ERRORS  # cs2 is down
    assert "user2" not in users_on(cs1)
    assert by["cs1"]["status"] == "Sync Completed", by["cs1"]
    plan = cli("plan", str(config)).out
    assert "move:" not in plan


def test_a_saved_plan_holds_the_delete_too_also_cut_to_the_old_element(
    sims: list[Sim], tmp_path: Path
) -> None:
    cs1, cs2 = sims
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0
    move_user0(config)
    plan = tmp_path / "plan.json"
    made = cli("plan", str(config), "--out", str(plan))
    assert made.code == 0, made.out + made.err
    assert "move: waits for the create on cs2" in made.out

    # Applied to cs1 alone: cs2's create is not part of the run.
    r = cli("apply", str(plan), "--config", str(config), "--yes", "--element", "cs1")
    # Held, nothing applied: as a run a sync window holds whole.
    assert r.code == exitcodes.REFUSED, r.out + r.err
    _assert_held_on_cs1(config, cs1)
    assert "user0" not in users_on(cs2)

    # Planned against a cs2 that goes down before the plan is applied.
    made = cli("plan", str(config), "--out", str(plan))
    assert made.code == 0, made.out + made.err
    cs2.faults(offline=True)
    r = cli("apply", str(plan), "--config", str(config), "--yes")
    assert r.code == exitcodes.APPLIED_WITH_ERRORS, r.out + r.err
    _assert_held_on_cs1(config, cs1)

    cs2.faults(offline=False)
    assert _reconcile(config)[0] == exitcodes.OK
    _assert_moved(config, cs1, cs2)


def test_a_fresh_plan_cut_to_the_old_element_holds_the_delete(
    sims: list[Sim], tmp_path: Path
) -> None:
    cs1, cs2 = sims
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0
    move_user0(config)
    shown = cli("plan", str(config), "--element", "cs1")
    assert "move: waits for the create on cs2" in shown.out, shown.out
    r = cli("reconcile", str(config), "--element", "cs1")
    assert r.code == exitcodes.REFUSED, r.out + r.err  # held, nothing applied
    _assert_held_on_cs1(config, cs1)
    assert _reconcile(config)[0] == exitcodes.OK
    _assert_moved(config, cs1, cs2)


def test_a_move_killed_anywhere_loses_no_user_and_the_next_run_completes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    between = []
    for point in ("1", "2", "3", "4", "5", "1:before", "2:before", "3:before", "4:before"):
        root = tmp_path / point.replace(":", "-")
        sims = start_sims(root, [("cs1", "mivb"), ("cs2", "mivb")])
        try:
            cs1, cs2 = sims
            config = write_config(root / "config", sims, users=3)
            assert cli("reconcile", str(config)).code == 0
            move_user0(config)
            cli_killed_at(point, "reconcile", str(config))
            on = {s.name for s in sims if "user0" in users_on(s)}
            assert on, f"killed at {point}: user0 is on no call server"
            if on == {"cs1", "cs2"}:
                between.append(point)
            code, _ = _reconcile(config)
            assert code == exitcodes.OK, point
            _assert_moved(config, cs1, cs2)
        finally:
            for s in sims:
                s.stop()
    # At least one kill fell between cs2's create and cs1's delete.
    assert between
