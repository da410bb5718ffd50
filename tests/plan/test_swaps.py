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
from provgit.plan.numbers import free_dn, numbers_held, spare_allowed
from provgit.plan.recheck import recheck
from provgit.plan.swap_mark import Swap
from provgit.plan.swaps import rebuilt, waits_elsewhere

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
        "mivb3: modify users/alice: spare DN 2001 of a number swap is not a free number "
        "(2001 is in use)"
    ]
    # A saved plan parking alice on an emergency number's prefix (as the spare
    # choice did before it passed them over) is refused too.
    emergency = Swap("users", "alice", (("2002", "9999"),), "mivb4")
    problems = _check(_with_swaps(plan, "mivb3", (emergency,)), target, state)
    assert problems == [
        "mivb3: modify users/alice: spare DN 9999 of a number swap is not a free number "
        "(an emergency number or close to one)"
    ]


def test_a_plan_cut_to_one_host_of_a_swap_across_hosts_knows_it_waits_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Case 48 (alice mivb3 -> mivb4 taking bob's number, bob the other way)
    planned as a replica holding one of the two hosts plans it: the cycle is
    not seen (no spare step), but a write there takes the number a user
    leaving for the other host frees, so the cycle may run through an element
    it does not hold (api/swaps_across.py reads the others then). Holding
    both hosts it sees the cycle whole (and breaks it); holding neither, none."""
    case = _yaml.load(CASE.read_text())
    for i, held in enumerate((["mivb3"], ["mivb4"], ["mivb4", "mcl"])):
        cut = run_case({**case, "options": {"elements": held}}, tmp_path / f"cut{i}", monkeypatch)
        assert not any(s.home for e in cut.elements for s in e.swaps), held
        assert waits_elsewhere(cut.elements, held), held
    both = ["mivb3", "mivb4"]
    whole = run_case({**case, "options": {"elements": both}}, tmp_path / "both", monkeypatch)
    assert [s.home for s in whole.element("mivb3").swaps] == ["mivb4"]  # type: ignore[union-attr]
    assert not waits_elsewhere(whole.elements, both)
    held = ["mivb1", "mivb2"]
    other = run_case({**case, "options": {"elements": held}}, tmp_path / "other", monkeypatch)
    assert not waits_elsewhere(other.elements, held)


def test_the_spare_is_the_highest_free_number_of_the_length_else_of_seven_digits() -> None:
    assert free_dn("2001", {"9989", "9988"}) == "9987"
    # 9 and 0 start emergency numbers: no 1-digit spare but 1-8, all taken.
    assert free_dn("7", {str(n) for n in range(1, 9)}) == "9989999"
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


def test_a_saved_swap_step_whose_spare_clashes_with_any_number_in_use_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not only users' DNs: an IVR's transfer number, a number an element was
    last seen to hold (outside the config), one the spare starts or is the
    start of (a dial plan matches the shortest complete number)."""
    plan, target, state = _planned(tmp_path, monkeypatch)
    types = {n: e.type for n, e in state.elements.items()}
    workflow = {"steps": [{"action": "menu", "choices": {"1": "transfer:9977"}}]}
    records = {**target.records, "ivr1": {"workflows": {"main": workflow}}}
    ivr_target = dataclasses.replace(target, records=records)

    def refused(spare: str, numbers: set[str], with_ivr: bool = False) -> list[str]:
        swap = Swap("users", "alice", (("2002", spare),), "mivb4")
        step = dataclasses.replace(
            plan,
            elements=tuple(
                dataclasses.replace(
                    e,
                    swaps=(swap,),
                    operations=tuple(
                        rebuilt(o, {**(o.fields or {}), "services": [{"dn": spare}]})
                        if o.key == "alice"
                        else o
                        for o in e.operations
                    ),
                )
                if e.element == "mivb3"
                else e
                for e in plan.elements
            ),
        )
        checked = ivr_target if with_ivr else target
        return [
            p
            for p in recheck(step, checked, state.settings, types, lambda: numbers)
            if "spare DN" in p
        ]

    prefix = "mivb3: modify users/alice: spare DN"
    assert refused("9977", set(), with_ivr=True) == [
        f"{prefix} 9977 of a number swap is not a free number (9977 is in use)"
    ]
    assert refused("9976", {"9976"}) == [
        f"{prefix} 9976 of a number swap is not a free number (9976 is in use)"
    ]
    assert refused("9975", {"997"}) == [
        f"{prefix} 9975 of a number swap is not a free number (it clashes with 997, in use)"
    ]
    assert refused("9974", {"99741"}) == [
        f"{prefix} 9974 of a number swap is not a free number (it clashes with 99741, in use)"
    ]
    assert refused("9973", {"12"}) == []


def test_every_number_a_record_names_is_in_use() -> None:
    """Phone services, directory entries (their key too), a directory
    element's telephone numbers, an IVR's transfers, a pilot number."""
    records = {
        "users": {
            "jdoe": {"services": [{"dn": "3000", "label": "Desk"}, {"dn": "*55"}]},
            "reception": {"primary_dn": "3001", "secondary_dn": "3002", "mobile": "6135550100"},
        },
        "remote_directory": {"3003": {"dn": "3003", "login_id": "asmith"}},
        "hunt_groups": {"sales": {"pilot": "3004", "members": ["3000"]}},
        "workflows": {
            "main": {
                "steps": [
                    {"action": "transfer", "target": "3005"},
                    {"action": "queue", "target": "agents"},
                    {"action": "menu", "choices": {"1": "transfer:3006", "2": "queue:sales"}},
                ]
            }
        },
    }
    found = numbers_held([records])
    assert found == {"3000", "*55", "3001", "3002", "6135550100", "3003", "3004", "3005", "3006"}


def test_the_spare_clashes_with_no_number_in_a_dial_plan() -> None:
    assert free_dn("3000", {"998"}) == "9979"
    assert free_dn("3000", {"99890"}) == "9988"
    # 99 would catch 999 before it completes, 9 every emergency number of 9.
    assert not spare_allowed("99") and not spare_allowed("9") and not spare_allowed("11")
    assert free_dn("12", set()) == "98"
