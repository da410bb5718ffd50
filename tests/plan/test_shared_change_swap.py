"""`provgit plan` after a template, a role and a COS change, and after users
swapping numbers, gives exactly the full plan, through the real entry point
(`Config.plan`: the memo, the shared path, their fall-backs).

The shared path re-plans only the records a change reaches and knows only
those; a number swap's spare must be chosen knowing every number in use, so a
plan that needs one is planned in full (a memo path once chose a spare among
the records it knew). Each step is compared with a plan computed from scratch
(`PROVGIT_NO_MEMO=1`), and the shared path must have been the one taken for
the shared-record changes. The last plans are applied and the network ends
in sync.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from plan.test_shared_change import _comparable, _full, _stored_is_the_projection, _write, _written
from provgit.api import Config, planning_shared
from provgit.api.planning import PlanRun


def _fast(root: Path, state: Path, taken: list[str]) -> PlanRun:
    """`Config.plan`, noting in `taken` whether the shared path planned it."""
    before = len(taken)
    run = asyncio.run(Config.open(root, state).plan())
    if len(taken) == before:
        taken.append("other")
    return run


def _swapping(net: dict[str, Any], pair: int) -> None:
    """Two users on one host (the `pair`th two of it), trading their numbers."""
    by_host: dict[str, list[dict[str, Any]]] = {}
    for user in net["users"]:
        by_host.setdefault(user["host"], []).append(user)
    users = next(u for u in by_host.values() if len(u) >= 2 * pair + 2)
    a, b = users[2 * pair : 2 * pair + 2]
    a["services"], b["services"] = b["services"], a["services"]


def test_config_plan_equals_the_full_plan_through_shared_changes_and_a_number_swap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHARED_PIN", "1234")
    root, state, net, _rng = _written(tmp_path, 21, 40)
    assert asyncio.run(Config.open(root, state).reconcile()).exit_code == 0
    taken: list[str] = []
    view = planning_shared._plan_view

    async def noted(*args: Any, **kwargs: Any) -> PlanRun | None:
        run = await view(*args, **kwargs)
        if run is not None:
            taken.append("shared")
        return run

    monkeypatch.setattr(planning_shared, "_plan_view", noted)

    def newcomer(step: int) -> None:
        # The spare a swap would take first (the highest allowed number of
        # four digits), now a user's on another cluster, whose add is planned
        # and not applied: on no element yet, and not among the records a
        # later change re-plans. A spare chosen knowing only those would be
        # this number (two holders of it once both land).
        far = {**net["users"][-1], "login_id": "far", "host": "mivb4"}
        net["users"].append({**far, "services": [{"dn": "9989"}]})

    def template(step: int) -> None:
        pair = next(t for t in net["templates"] if t["name"] == "Pair")
        types = ["6920", "6930", "6940"]
        pair["phones"][0]["device_type"] = types[types.index(pair["phones"][0]["device_type"]) - 1]

    def role(step: int) -> None:
        lead = next(r for r in net["roles"] if r["name"] == "Lead")
        lead["description"] = f"edit {step}"

    def cos(step: int) -> None:
        net["classes_of_service"][0]["comment"] = f"Edit {step}"

    def swap(step: int) -> None:
        _swapping(net, 0)

    def template_and_swap(step: int) -> None:
        template(step)
        _swapping(net, 1)

    def step(change: Any, n: int) -> None:
        change(n)
        _write(root, net)
        full = _full(root, state, monkeypatch)
        fast = _fast(root, state, taken)
        assert _comparable(fast.plan) == _comparable(full.plan), f"step {n}: {change.__name__}"
        assert any(ep.operations for ep in fast.plan.elements), change.__name__
        if "swap" in change.__name__:
            # A cycle: broken with a spare number, chosen knowing every number.
            spares = {s for ep in full.plan.elements for w in ep.swaps for _, s in w.spares}
            assert spares and "9989" not in spares, change.__name__
        _stored_is_the_projection(root, state)

    def applied() -> None:
        """Every plan applied (a swap in two runs: the spare step, then its
        end), each still the full one."""
        config = Config.open(root, state)
        for _ in range(4):
            full = _full(root, state, monkeypatch)
            fast = _fast(root, state, taken)
            assert _comparable(fast.plan) == _comparable(full.plan)
            if not fast.plan.has_changes:
                return
            asyncio.run(config.apply(fast))
        raise AssertionError("still changes after 4 applies")

    for n, change in enumerate([newcomer, template, role, cos, swap, template_and_swap, cos]):
        step(change, n)
    # The shared-record changes took the shared path; the swaps, and a change
    # while a swap is planned and not applied, could not (a spare is needed).
    assert taken == ["shared"] * 4 + ["other"] * 3
    applied()
    taken.clear()
    for n, change in enumerate([template, role, cos, template], start=7):
        step(change, n)
    assert taken == ["shared"] * 4
    applied()
    status = Config.open(root, state).status()
    assert status.in_sync and status.problems == 0
    assert all(r["status"] == "Sync Completed" for r in status.document["resources"])
