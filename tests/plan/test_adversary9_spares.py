"""Adversary 9: a number swap of short numbers. The spare a swap parks a user
on (plan/swaps.py) is never the start of an emergency number: a user on 99 or
11 would take a call to 999 or 112 at its second digit. Chosen by the plan and
re-checked in a saved one (plan/recheck.py) by the same rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from plan.test_swaps import _check, _planned, _with_swaps
from provgit.plan.numbers import free_dn, spare_allowed
from provgit.plan.swap_mark import Swap

EMERGENCY = ("000", "08", "100", "101", "102", "108", "110", "111", "112", "117")
EMERGENCY += ("118", "119", "15", "17", "18", "190", "192", "193", "911", "999")


@pytest.mark.parametrize(
    ("dn", "used", "spare"),
    [("12", set(), "98"), ("20", {"98", "97"}, "96"), ("4", set(), "8"), ("4", {"8"}, "7")],
)
def test_a_swap_of_short_numbers_never_parks_a_user_on_an_emergency_numbers_start(
    dn: str, used: set[str], spare: str
) -> None:
    assert free_dn(dn, used) == spare
    assert not any(n.startswith(spare) or spare.startswith(n) for n in EMERGENCY)


@pytest.mark.parametrize("start", ["99", "9", "11", "1", "19", "10", "0", "91"])
def test_a_saved_plan_parking_a_user_on_an_emergency_numbers_start_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: str
) -> None:
    assert not spare_allowed(start)
    plan, target, state = _planned(tmp_path, monkeypatch)
    step = Swap("users", "alice", (("2002", start),), "mivb4")
    assert _check(_with_swaps(plan, "mivb3", (step,)), target, state) == [
        f"mivb3: modify users/alice: spare DN {start} of a number swap is not a free number"
        " (an emergency number or close to one)"
    ]
