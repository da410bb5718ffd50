"""A number swap's spare step (plan/swaps.py) in a saved plan: re-checked as
the record the config wants with only its DNs spared, the spare a number the
config uses nowhere; a step without its mark, or a spare the config uses, is
refused. The spare is the highest free number."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from plan.test_plan_cases import HERE, _target, _write_config, _yaml, run_case
from provgit.plan import Plan
from provgit.plan.recheck import recheck
from provgit.plan.swap_mark import Swap
from provgit.plan.swaps import free_dn

CASE = HERE / "cases" / "48-users-swapping-numbers-and-hosts-take-a-spare.yaml"


def _planned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Plan, Any, Any]:
    """Case 48's plan, and the config's target and state it is checked against."""
    case = _yaml.load(CASE.read_text())
    plan = run_case(case, tmp_path / "case", monkeypatch)
    base = _yaml.load((HERE / "base.yaml").read_text())
    _write_config(tmp_path / "config", {**base, **case["desired"]}, {}, {"audio/welcome.wav": 100})
    state, target = _target(tmp_path / "config", monkeypatch, {})
    return plan, target, state


def _check(plan: Plan, target: Any, state: Any) -> list[str]:
    types = {n: e.type for n, e in state.elements.items()}
    return recheck(plan, target, state.settings, types)


def _with_swaps(plan: Plan, element: str, swaps: tuple[Swap, ...]) -> Plan:
    elements = tuple(
        dataclasses.replace(e, swaps=swaps) if e.element == element else e for e in plan.elements
    )
    return dataclasses.replace(plan, elements=elements)


def test_a_saved_swap_step_is_checked_as_the_record_the_config_wants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, target, state = _planned(tmp_path, monkeypatch)
    assert _check(plan, target, state) == []
    again = Plan.loads(plan.dumps())
    assert [e.swaps for e in again.elements] == [e.swaps for e in plan.elements]


def test_a_swap_step_without_its_mark_or_with_a_number_the_config_uses_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, target, state = _planned(tmp_path, monkeypatch)
    bare = _check(_with_swaps(plan, "mivb3", ()), target, state)
    assert bare == ["mivb3: modify users/alice: the config does not put this record on mivb3"]
    taken = Swap("users", "alice", (("2002", "2001"),), "mivb4")
    problems = _check(_with_swaps(plan, "mivb3", (taken,)), target, state)
    assert problems == [
        "mivb3: modify users/alice: spare DN 2001 of a number swap is not a free number"
    ]
    # A saved plan parking alice on an emergency number's prefix (as the spare
    # choice did before it passed them over) is refused too.
    emergency = Swap("users", "alice", (("2002", "9999"),), "mivb4")
    problems = _check(_with_swaps(plan, "mivb3", (emergency,)), target, state)
    assert problems == [
        "mivb3: modify users/alice: spare DN 9999 of a number swap is not a free number"
    ]


def test_the_spare_is_the_highest_free_number_of_the_length_else_of_seven_digits() -> None:
    assert free_dn("2001", {"9989", "9988"}) == "9987"
    assert free_dn("7", {str(n) for n in range(10)}) == "9989999"
    assert free_dn("*55", set()) == "9989999"


@pytest.mark.parametrize(
    ("dn", "used", "spare"),
    [("301", set(), "998"), ("2001", set(), "9989"), ("12", {"99", "98"}, "97")],
)
def test_the_spare_is_never_an_emergency_number_nor_starts_with_one(
    dn: str, used: set[str], spare: str
) -> None:
    assert free_dn(dn, used) == spare
    assert not spare.startswith(("999", "911", "112", "000"))
