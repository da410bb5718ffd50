"""A user a number swap left on a spare number is not synced on that element
(report/leftovers.py, swap_mark.Parked): every status output counts it as not
done there ("Syncing 1/3", not 2/3) and says which spare it is on and until
when. Real simulator processes on 127.0.0.1, the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .helpers import Sim, cli, read_store, reported, write_config
from .test_number_swaps import _set_users
from .test_truth import _schema_errors

pytestmark = pytest.mark.slow

LEAVING = "On spare number 9989 until cs2 has it (number swap)"
STAYING = "On spare number 9989 until it gets 3001 (number swap)"


def _user0(doc: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in doc["resources"] if r["resource"] == "user0")


def _assert_parked(doc: dict[str, Any], done: int) -> None:
    """user0 is on the spare on cs1 (the host it leaves) and on mcl: not done there."""
    r = _user0(doc)
    assert (r["completed"], r["total"]) == (done, 3), r
    assert r["elements"]["cs1"]["state"] != "completed", r
    assert r["elements"]["cs1"]["status"] == LEAVING, r
    assert r["elements"]["cs1"]["spare"] == {"numbers": ["9989"], "until_on": "cs2"}, r
    assert r["elements"]["mcl"]["status"] == STAYING, r
    assert r["elements"]["mcl"]["spare"] == {"numbers": ["9989"], "for": ["3001"]}, r
    assert "on spare number 9989 on cs1 until cs2 has it" in r["status"], r
    assert doc["in_sync"] is False


@pytest.mark.parametrize("fault", ["refusing", "down"])
def test_a_user_parked_on_a_spare_is_not_counted_done_there_in_any_report(
    sims: list[Sim], tmp_path: Path, fault: str
) -> None:
    """user0 (cs1 -> cs2, 3000 -> 3001) and user1 (cs2 -> cs1, 3001 -> 3000)
    swap; cs2, the host of user0's final number, refuses it or is down. cs1
    keeps user0 on spare 9989 (its remote directory entry there is written):
    user0 is done on no element but cs2's side is not either: 0/3 (it said
    1/3, cs1 "Sync Completed" for user0 on it)."""
    cs2 = sims[1]
    config = write_config(tmp_path / "config", sims, users=2)
    assert cli("reconcile", str(config)).code == 0
    _set_users(config, {"user0": ("cs2", "3001"), "user1": ("cs1", "3000")})
    if fault == "down":
        cs2.faults(offline=True)
    else:
        cs2.faults(refuse=[{"collection": "users", "key": "user0"}])
    r = cli("reconcile", str(config), "--format", "json")
    assert r.code != 0, r.out
    held = {k: f["services"][0]["dn"] for k, f in sims[0].records()["users"].items()}
    assert held == {"user0": "9989", "user1": "3000"}
    reports = config / ".provgit" / "status"
    assert _schema_errors(config) == []
    _assert_parked(json.loads((reports / "status.json").read_text()), 0)
    _assert_parked(json.loads(cli("status", str(config), "--format", "json").out), 0)
    text = cli("status", str(config)).out
    line = next(x for x in text.splitlines() if x.strip().startswith("users/user0"))
    assert f"cs1: {LEAVING}" in line and f"mcl: {STAYING}" in line and " 0/3 " in line, text
    for shown in (
        cli("status", str(config), "--format", "markdown").out,
        (reports / "status.md").read_text(),
        (reports / "index.html").read_text(),
    ):
        assert "on spare number 9989 on cs1 until cs2 has it (number swap)" in shown, shown
    cs2.faults(offline=False, refuse=[])
    if fault == "refusing":
        cli("errors", "retry", "--all", "-C", str(config))
    for _ in range(3):
        if cli("reconcile", str(config)).code == 0:
            break
    doc = json.loads(cli("status", str(config), "--format", "json").out)
    assert doc["in_sync"] is True, doc["elements"]
    assert "spare" not in json.dumps(doc["resources"])


def test_a_user_parked_on_one_host_says_the_spare_and_its_number(
    sims: list[Sim], tmp_path: Path
) -> None:
    """A swap on one host: user0 waits on 9989 for 3002 on mcl and cs1."""
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0
    _set_users(config, {"user0": ("cs1", "3002"), "user2": ("cs1", "3000")})
    assert cli("reconcile", str(config)).code == 4
    doc = json.loads(cli("status", str(config), "--format", "json").out)
    r = _user0(doc)
    assert (r["completed"], r["total"]) == (1, 3), r
    words = "On spare number 9989 until it gets 3002 (number swap)"
    assert {el: e["status"] for el, e in r["elements"].items()} == {
        "mcl": words,
        "cs1": words,
        "cs2": "Sync Completed",
    }
    assert r["status"] == (
        "Syncing 1/3 Completed; on spare number 9989 on cs1, mcl until it gets 3002 (number swap)"
    )
    assert cli("reconcile", str(config)).code == 0


def _spares_held(config: Path, sims: list[Sim]) -> dict[str, str]:
    """element -> the number user0 holds there that is neither 3000 nor 3002."""
    stores = {s.name: s.records() for s in sims}
    stores["mcl"] = read_store(config / ".provgit" / "elements" / "mcl.sqlite")
    out = {}
    for name, records in stores.items():
        user0 = records.get("users", {}).get("user0")
        dn = None if user0 is None else str(user0["services"][0]["dn"])
        if dn is not None and dn not in ("3000", "3002"):
            out[name] = dn
    return out


def test_a_user_parked_on_one_element_keeps_that_spare_on_the_next(
    sims: list[Sim], tmp_path: Path
) -> None:
    """cs1 is down when the swap is broken: mcl parks user0 on 9989. Next run,
    cs1 up needs the step too: user0 takes 9989 there as well (it took 9988,
    a second spare for one person), and the status says the same number."""
    cs1 = sims[0]
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0
    _set_users(config, {"user0": ("cs1", "3002"), "user2": ("cs1", "3000")})
    cs1.faults(offline=True)
    assert cli("reconcile", str(config)).code != 0
    assert _spares_held(config, sims) == {"mcl": "9989"}
    cs1.faults(offline=False)
    r = cli("reconcile", str(config), "--format", "json", "--full")
    step = next(
        op
        for op in reported(r.out)["cs1"]["operations"]
        if op["key"] == "user0" and op["status"] == "ok"
    )
    assert step["message"] == "written with spare DN 9989 for 3002 (a number swap's temporary step)"
    assert _spares_held(config, sims) == {"cs1": "9989"}
    doc = json.loads(cli("status", str(config), "--format", "json").out)
    assert _user0(doc)["elements"]["cs1"]["spare"] == {"numbers": ["9989"], "for": ["3002"]}
    assert cli("reconcile", str(config)).code == 0
    assert _spares_held(config, sims) == {}
