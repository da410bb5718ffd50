"""Adversary 9: number swaps attacked. Two users' numbers traded on the
element by hand (not in the config): the next runs put them back through a
spare number (plan/swaps.py) that no record of the network holds, whatever
plan path they take (the CLI's memo path re-plans only what the feeds named).
Real simulator processes on 127.0.0.1, the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .helpers import Sim, cli, write_config
from .test_number_swaps import _held, _set_users, _status

pytestmark = pytest.mark.slow


def _dn_by_hand(sim: Sim, login: str, dn: str) -> None:
    """The element's admin gives `login` the number `dn` with the element's own tool."""
    fields: dict[str, Any] = dict(sim.records()["users"][login])
    fields["services"] = [{**fields["services"][0], "dn": dn}]
    sim.admin("/admin/edit", {"op": "put", "collection": "users", "key": login, "fields": fields})


@pytest.mark.parametrize("holder", ["user4", "user3"])
def test_numbers_swapped_by_hand_go_back_through_a_spare_no_record_holds(
    sims: list[Sim], tmp_path: Path, holder: str
) -> None:
    # 9989 (the spare a swap of 4-digit numbers takes first) is held: by
    # user4 on cs1, or by user3 on cs2 (and its remote directory entry on cs1).
    config = write_config(tmp_path / "config", sims, users=5)
    _set_users(config, {holder: ("cs1" if holder == "user4" else "cs2", "9989")})
    for _ in range(2):  # the second run leaves a memo of a network in sync
        r = cli("reconcile", str(config))
        assert r.code == 0, r.out + r.err
    cs1 = next(s for s in sims if s.name == "cs1")
    wanted = {s.name: _held(s) for s in sims}
    # user0 (3000) and user2 (3002) trade numbers on cs1, by hand.
    _dn_by_hand(cs1, "user0", "5555")
    _dn_by_hand(cs1, "user2", "3000")
    _dn_by_hand(cs1, "user0", "3002")
    problems: list[Any] = []
    for _ in range(3):
        r = cli("reconcile", str(config), "--format", "json")
        by = {e["element"]: e for e in json.loads(r.out)["elements"]}
        problems = by["cs1"]["problems"]
        assert not [p for p in problems if p["status"] == "failed"], problems
        if _status(config)["in_sync"]:
            break
    assert {s.name: _held(s) for s in sims} == wanted, problems
    assert _status(config)["in_sync"] is True
