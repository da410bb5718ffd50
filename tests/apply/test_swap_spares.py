"""A number swap's spare (plan/swaps.py, plan/numbers.py) rings no one else:
it clashes with no number any element of the network holds, whichever path
planned it (a full plan, the memo paths after a config change, a run cut to
one element), and what a run that lands the spare step says of it is true.
Real simulator processes on 127.0.0.1, the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .helpers import Sim, cli, write_config
from .test_number_swaps import _set_users

pytestmark = pytest.mark.slow

LEGACY = {
    "login_id": "legacy",
    "first_name": "Old",
    "last_name": "Line",
    "services": [{"dn": "9989"}],
}


def _numbers(sims: list[Sim]) -> dict[str, list[str]]:
    """DN -> who holds it as a phone, across every call server (`el:login`)."""
    out: dict[str, list[str]] = {}
    for sim in sims:
        for login, fields in sim.records().get("users", {}).items():
            for s in fields.get("services", []):
                out.setdefault(str(s["dn"]), []).append(f"{sim.name}:{login}")
    return out


def _no_number_twice(sims: list[Sim]) -> None:
    """No two people on the network share a number (one person may be on
    two call servers while it moves)."""
    for dn, holders in _numbers(sims).items():
        people = {h.split(":", 1)[1] for h in holders}
        assert len(people) == 1, f"{dn} rings {holders}"


@pytest.mark.parametrize("cut", [False, True], ids=["whole-network", "element-cs1"])
def test_the_spare_passes_over_a_number_another_element_holds_outside_the_config(
    sims: list[Sim], tmp_path: Path, cut: bool
) -> None:
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0
    cs2 = sims[1]
    # cs2 (same cluster) holds 9989, the spare a swap would take, for a line
    # provgit did not create.
    edit = {"op": "put", "collection": "users", "key": "legacy", "fields": LEGACY}
    cs2.admin("/admin/edit", edit)
    # user0 and user2 (both on cs1) swap 3000 <-> 3002.
    _set_users(config, {"user0": ("cs1", "3002"), "user2": ("cs1", "3000")})
    only = ["--element", "cs1", "--element", "mcl"] if cut else []
    if cut:
        # A run cut to cs1 does not read cs2: it knows what cs2 was last seen
        # to hold (a plan of the whole network read it since the edit).
        assert cli("plan", str(config)).code == 0
    shown = cli("plan", str(config), *only)
    assert "swap: temporary spare DN 9988 for 3002" in shown.out, shown.out + shown.err
    r = cli("reconcile", str(config), *only, "--format", "json")
    by = {e["element"]: e for e in json.loads(r.out)["elements"]}
    assert by["cs1"]["status"].startswith("Move pending: users/user0 is on spare DN 9988"), r.out
    _no_number_twice(sims)
    assert cs2.records()["users"]["legacy"]["services"] == [{"dn": "9989"}]
    if cut:
        # cs2's remote directory entries of the swap wait for a whole run.
        assert cli("reconcile", str(config), *only).code == 0
        _no_number_twice(sims)
    _converge_beside(config, sims)


def _converge_beside(config: Path, sims: list[Sim], on_cs1: dict[str, str] | None = None) -> None:
    """The network ends as the config wants (`on_cs1`: login -> DN there),
    no number ringing two people on the way."""
    for _ in range(3):
        r = cli("reconcile", str(config), "--format", "json")
        _no_number_twice(sims)
        if r.code == 0:
            break
    status: dict[str, Any] = json.loads(cli("status", str(config), "--format", "json").out)
    assert status["in_sync"] is True, status["elements"]
    held = {k: f["services"][0]["dn"] for k, f in sims[0].records()["users"].items()}
    assert held == (on_cs1 or {"user0": "3002", "user2": "3000"})


def test_a_run_landing_a_swap_step_counts_each_write_once_and_says_what_is_owed(
    sims: list[Sim], tmp_path: Path
) -> None:
    """Two users on the only call server swap numbers: the run lands the
    spare step (applied, once), owes user0 its own number on mcl and cs1
    (pending, once per element), names user0 only as pending where it is on
    the spare, and is not "nothing applied" (exit 3) though every element
    it wrote is held: exit 4, pending updates remain."""
    cs1 = sims[0]
    config = write_config(tmp_path / "config", [cs1], users=2)
    assert cli("reconcile", str(config)).code == 0
    _set_users(config, {"user0": ("cs1", "3001"), "user1": ("cs1", "3000")})
    r = cli("reconcile", str(config))
    assert r.code == 4, r.out + r.err
    lines = r.out.splitlines()
    assert "applied: users/user1 on mcl, cs1" in lines, r.out
    assert "pending: users/user0 on mcl, cs1" in lines, r.out
    assert not any(line.startswith("applied: ") and "users/user0" in line for line in lines)
    assert "Sync Incomplete: 4 applied, 0 failed, 2 pending, 0 skipped, 0 held; " in r.out
    for element in ("mcl", "cs1"):
        shown = next(line for line in lines if line.startswith(f"{element} "))
        assert "Move pending: users/user0 is on spare DN 9989" in shown, shown
        assert shown.endswith("(2 applied, 1 pending)"), shown
    owed = [line.strip() for line in lines if line.startswith("  pending ")]
    assert (
        owed
        == [
            "pending  modify users/user0: Move pending: users/user0 is on spare DN 9989 for a "
            "number swap; the next run gives it 3001"
        ]
        * 2
    )
    assert cli("reconcile", str(config)).code == 0


def test_a_swap_step_across_hosts_reads_the_same_in_json_and_the_status_reports(
    sims: list[Sim], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config", sims, users=2)
    assert cli("reconcile", str(config)).code == 0
    _set_users(config, {"user0": ("cs2", "3001"), "user1": ("cs1", "3000")})
    planned = json.loads(cli("plan", str(config), "--format", "json").out)
    ops = {e["element"]: len(e["operations"]) for e in planned["elements"]}
    r = cli("reconcile", str(config), "--format", "json", "--full")
    doc = json.loads(r.out)
    assert r.code == doc["exit_code"] == 4
    by = {e["element"]: e for e in doc["elements"]}
    for name, e in by.items():
        landed = [op for op in e["operations"] if op["status"] == "ok"]
        owed = [op for op in e["operations"] if op["status"] == "pending"]
        # Every planned write landed, counted once; user0 is owed on the two
        # elements it is on the spare, once each.
        assert len(landed) == ops.get(name, 0) == e["counts"]["ok"], (name, e)
        assert len(owed) == e["counts"]["pending"] == (name in ("mcl", "cs1")), (name, e)
    step = next(
        op for op in by["cs1"]["operations"] if op["key"] == "user0" and op["status"] == "ok"
    )
    assert step["message"] == "written with spare DN 9989 for 3001 (a number swap's temporary step)"
    (owed,) = [op for op in by["cs1"]["operations"] if op["status"] == "pending"]
    assert owed["message"] == (
        "Move pending: users/user0 is on spare DN 9989 for a number swap; "
        "the next run deletes it here once cs2 has it"
    )
    assert by["cs2"]["status"] == "Sync Completed"
    assert doc["counts"]["pending"] == doc["pending_updates"] == 2
    assert doc["counts"]["ok"] == sum(ops.values())
    md = cli("status", str(config), "--format", "markdown").out
    assert "2 pending update(s)" in md and "### Pending updates (2)" in md, md
    rows = [
        line for line in md.splitlines() if line.startswith(("| cs1 | modify", "| mcl | modify"))
    ]
    assert len(rows) == 2 and all("is on spare DN 9989 for a number swap" in x for x in rows), md
    assert cli("reconcile", str(config)).code == 0


def test_a_run_cut_to_one_host_of_a_swap_across_hosts_holds_it_and_says_why(
    sims: list[Sim], tmp_path: Path
) -> None:
    """`--element cs1` sees only cs1's side of a swap across hosts: user0's
    delete waits for cs2 (outside the run), user1's create for that delete.
    Nothing changes, the plan does not call it a rename, the status says
    cs2 is not in the run; a run of the whole network then ends the swap."""
    config = write_config(tmp_path / "config", sims, users=2)
    assert cli("reconcile", str(config)).code == 0
    _set_users(config, {"user0": ("cs2", "3001"), "user1": ("cs1", "3000")})
    before = _numbers(sims)
    shown = cli("plan", str(config), "--element", "cs1")
    assert "delete users/user0  (move: waits for the create on cs2" in shown.out, shown.out
    assert "renamed" not in shown.out + shown.err, shown.out + shown.err
    r = cli("reconcile", str(config), "--element", "cs1", "--format", "json")
    assert r.code == 3, r.out  # nothing applied
    (cs1,) = json.loads(r.out)["elements"]
    assert cs1["status"] == (
        "Move pending: delete of users/user0 held until cs2 has it "
        "(created and kept there; cs2 is not in this run)"
    )
    assert cs1["counts"] == {"ok": 0, "failed": 0, "pending": 3, "skipped": 0, "held": 0}
    assert _numbers(sims) == before
    status: dict[str, Any] = json.loads(cli("status", str(config), "--format", "json").out)
    assert status["in_sync"] is False
    assert status["elements"]["cs1"]["status"] == cs1["status"]
    _converge_beside(config, sims, {"user1": "3000"})
