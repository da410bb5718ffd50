"""CPU cost of finding moves in a plan (plan/moves.py) on a first rollout's size.

    .venv/bin/python benchmarks/bench_moves.py [--users 70000] [--elements 15] [--runs 5]

A first rollout plans an add of every record on every element and no delete:
`mark_moves` (every plan, in `gather`) and `wanted_elsewhere` (every full
plan) must cost next to nothing there. Also timed: the same plan with 1 % of
the users moving between two call servers (a delete and an add each), and
moving renamed (paired by DN, not by key: every add looked at). And
`break_swaps` (plan/swaps.py, every plan) on each, and on 1 % of the users
swapping numbers in pairs on every element (a spare step per pair). CPU
seconds of this process (time.process_time), median of --runs, load beside.
"""

from __future__ import annotations

import argparse
import os

from _common import median_cpu  # the tree PYTHONPATH names, else this one

from provgit.plan.model import ElementPlan, Operation
from provgit.plan.moves import mark_moves, wanted_elsewhere
from provgit.plan.swaps import break_swaps


def _user(action: str, i: int, key: str) -> Operation:
    services = [{"dn": str(10_000 + i)}]
    if action == "delete":
        return Operation("delete", "users", key, "users", key, {"services": {"before": services}})
    fields = {"login_id": key, "services": services}
    return Operation("add", "users", key, "users", key, None, fields)


def _plan(users: int, elements: int, moving: int, renamed: bool = False) -> list[ElementPlan]:
    out = []
    for e in range(elements):
        ops = [_user("add", i, f"u{i}") for i in range(users)]
        if e < 2:
            # Users 0..moving-1 leave element 0 for element 1 (as r<i>: renamed).
            ops[:moving] = [
                _user("delete", i, f"u{i}")
                if e == 0
                else _user("add", i, f"r{i}" if renamed else f"u{i}")
                for i in range(moving)
            ]
        out.append(ElementPlan(f"e{e}", "mivb", "running", 1, tuple(ops)))
    return out


def _swapping(users: int, elements: int, pairs: int) -> list[ElementPlan]:
    """Every element holds every user; users 2k and 2k+1 (k < pairs) swap numbers."""
    out = []
    for e in range(elements):
        ops = []
        for i in range(2 * pairs):
            j = i + 1 if i % 2 == 0 else i - 1
            before, after = [{"dn": str(10_000 + i)}], [{"dn": str(10_000 + j)}]
            fields = {"login_id": f"u{i}", "services": after}
            changes = {"services": {"before": before, "after": after}}
            ops.append(Operation("modify", "users", f"u{i}", "users", f"u{i}", changes, fields, 1))
        out.append(ElementPlan(f"e{e}", "mivb", "running", 1, tuple(ops)))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--users", type=int, default=70_000)
    p.add_argument("--elements", type=int, default=15)
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    types = {f"e{e}": "mivb" for e in range(a.elements)}
    for moving, renamed in ((0, False), (a.users // 100, False), (a.users // 100, True)):
        plan = _plan(a.users, a.elements, moving, renamed)
        ops = sum(len(e.operations) for e in plan)
        assert sum(len(e.moves) for e in mark_moves(plan)) == moving
        marked = median_cpu(a.runs, lambda plan=plan: mark_moves(plan))  # type: ignore[misc]
        elsewhere = median_cpu(a.runs, lambda plan=plan: wanted_elsewhere(plan, {}, types, False))  # type: ignore[misc]
        swaps = median_cpu(a.runs, lambda plan=plan: break_swaps(plan, set))  # type: ignore[misc]
        how = " and renamed" if renamed else ""
        print(
            f"{ops:,} operations, {moving:,} moving{how}: mark_moves {marked:.3f} s CPU, "
            f"wanted_elsewhere {elsewhere:.4f} s CPU, break_swaps {swaps:.3f} s CPU "
            f"(median of {a.runs}), load {os.getloadavg()[0]:.1f}"
        )
    pairs = a.users // 200
    plan = _swapping(a.users, a.elements, pairs)
    assert all(len(e.swaps) == pairs for e in break_swaps(plan, set))
    swaps = median_cpu(a.runs, lambda: break_swaps(plan, set))
    print(
        f"{2 * pairs * a.elements:,} modifies, {pairs:,} pairs swapping numbers on each of "
        f"{a.elements} elements: break_swaps {swaps:.3f} s CPU (median of {a.runs}), "
        f"load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
