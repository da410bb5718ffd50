"""Adversary 9: number swaps attacked. Two users' numbers traded on the
element by hand (not in the config): the next runs put them back through a
spare number (plan/swaps.py) that no record of the network holds, whatever
plan path they take (the CLI's memo path re-plans only what the feeds named).
A user renumbered to the number a moving user frees, and a swap across hosts
reverted while one user sits on its spare: the renumbering waits for the
moving user's delete (apply/moves.py) instead of being refused and then held
by its error until a person retries it. Real simulator processes on
127.0.0.1, the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .helpers import Sim, cli, write_config
from .test_number_swaps import _assert_safe, _converge, _held, _reconcile, _set_users, _status

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


def _no_failure(config: Path, sims: list[Sim]) -> dict[str, dict[str, Any]]:
    """One reconcile, safe (tests/apply/test_number_swaps.py), with no write
    refused (a refused write is held by its error until a person retries it)."""
    by = _reconcile(config)
    _assert_safe(config, sims, by)
    failed = [p for e in by.values() for p in e["problems"] if p["status"] in ("failed", "held")]
    assert failed == [], by
    return by


@pytest.mark.parametrize("down", [False, True])
def test_a_user_renumbered_to_the_number_a_moving_user_frees_waits_for_its_delete(
    sims: list[Sim], tmp_path: Path, down: bool
) -> None:
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0
    cs = {s.name: s for s in sims}
    # user2 leaves cs1 for cs2 (and 3005); user0 on cs1 takes its 3002.
    _set_users(config, {"user2": ("cs2", "3005"), "user0": ("cs1", "3002")})
    if down:  # cs2 cannot take user2 yet: its delete on cs1 waits, and so does user0
        cs["cs2"].faults(offline=True)
        for _ in range(2):
            by = _no_failure(config, sims)
            assert by["cs1"]["status"].startswith("Move pending: "), by["cs1"]
            assert _held(cs["cs1"]) == {"user0": "3000", "user2": "3002"}
        cs["cs2"].faults(offline=False)
    _no_failure(config, sims)
    assert _status(config)["in_sync"] is True
    _converge(config, sims, runs=1)


def test_a_swap_across_hosts_reverted_while_a_user_is_on_its_spare_ends_as_before(
    sims: list[Sim], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0
    before = {s.name: _held(s) for s in sims}
    _set_users(config, {"user0": ("cs2", "3001"), "user1": ("cs1", "3000")})
    by = _no_failure(config, sims)
    assert by["cs1"]["status"].startswith("Move pending: users/user0 is on spare DN"), by
    # The admin takes the swap back: user0 (on its spare on cs1, and on cs2)
    # is to have 3000 on cs1 again, which user1 holds there until it leaves.
    _set_users(config, {"user0": ("cs1", "3000"), "user1": ("cs2", "3001")})
    for _ in range(3):
        _no_failure(config, sims)
        if _status(config)["in_sync"]:
            break
    assert {s.name: _held(s) for s in sims} == before
    assert _status(config)["in_sync"] is True
