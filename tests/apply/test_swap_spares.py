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
    assert by["cs1"]["status"].startswith("Move pending: users/user0 is on spare DN 9988"), by
    _no_number_twice(sims)
    assert cs2.records()["users"]["legacy"]["services"] == [{"dn": "9989"}]
    if cut:
        # cs2's remote directory entries of the swap wait for a whole run.
        assert cli("reconcile", str(config), *only).code == 0
        _no_number_twice(sims)
    _converge_beside(config, sims)


def _converge_beside(config: Path, sims: list[Sim]) -> None:
    """The network ends as the config wants, the legacy line untouched."""
    for _ in range(3):
        r = cli("reconcile", str(config), "--format", "json")
        _no_number_twice(sims)
        if r.code == 0:
            break
    status: dict[str, Any] = json.loads(cli("status", str(config), "--format", "json").out)
    assert status["in_sync"] is True, status["elements"]
    held = {k: f["services"][0]["dn"] for k, f in sims[0].records()["users"].items()}
    assert held == {"user0": "3002", "user2": "3000"}
