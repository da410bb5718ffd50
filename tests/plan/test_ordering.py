"""The order of one element's operations (`plan.ordering.order`)."""

from __future__ import annotations

import random

import pytest

from provgit.plan.model import Operation
from provgit.plan.ordering import COLLECTION_ORDER, DELETE_FIRST, order

_ACTIONS = ("add", "modify", "delete")


def _reference_order(ops: list[Operation]) -> list[Operation]:
    """The rule as first written: deletes of dependents first, then every
    write sorted by (collection rank, modify before add, key) with a record
    that another of its own collection depends on placed before it, then the
    other deletes in reverse rank."""
    ranks = {c: i for i, c in enumerate(COLLECTION_ORDER)}
    last = len(ranks)
    early = [o for o in ops if o.action == "delete" and o.collection in DELETE_FIRST]
    late = [o for o in ops if o.action == "delete" and o.collection not in DELETE_FIRST]
    writes = [o for o in ops if o.action != "delete"]
    early.sort(key=lambda o: (-ranks.get(o.collection, last), o.key))
    late.sort(key=lambda o: (-ranks.get(o.collection, last), o.key))
    writes.sort(key=lambda o: (ranks.get(o.collection, last), o.action != "modify", o.key))
    index = {(o.collection, o.key): i for i, o in enumerate(writes)}
    out: list[Operation] = []
    placed: set[int] = set()

    def place(i: int, visiting: set[int]) -> None:
        if i in placed or i in visiting:
            return
        op = writes[i]
        for d in op.depends_on:
            if d[0] == op.collection and d in index:
                place(index[d], visiting | {i})
        placed.add(i)
        out.append(op)

    for i in range(len(writes)):
        place(i, set())
    return early + out + late


def _random_ops(rng: random.Random, n: int, same_collection_deps: bool) -> list[Operation]:
    collections = [*COLLECTION_ORDER, "unknown_kind"]
    ops: dict[tuple[str, str], Operation] = {}
    while len(ops) < n:
        coll = rng.choice(collections)
        key = f"k{rng.randrange(3 * n):05d}"
        if (coll, key) in ops:
            continue
        deps: list[tuple[str, str]] = []
        if ops and rng.random() < 0.5:
            other = rng.choice(list(ops))
            if same_collection_deps or other[0] != coll:
                deps.append(other)
        deps.append((rng.choice(collections), f"k{rng.randrange(3 * n):05d}"))
        action = rng.choice(_ACTIONS)
        ops[(coll, key)] = Operation(action, coll, key, coll, key, None, {}, None, tuple(deps))
    return list(ops.values())


@pytest.mark.parametrize("same_collection_deps", [False, True])
@pytest.mark.parametrize("seed", range(12))
def test_order_is_the_rank_action_key_sort_with_callees_first(
    seed: int, same_collection_deps: bool
) -> None:
    rng = random.Random(seed)
    ops = _random_ops(rng, rng.choice([1, 5, 40, 300]), same_collection_deps)
    got = order(ops)
    assert [(o.action, o.collection, o.key) for o in got] == [
        (o.action, o.collection, o.key) for o in _reference_order(ops)
    ]


def test_a_subroutine_another_calls_goes_first_whatever_its_key() -> None:
    caller = Operation(
        "add",
        "subroutines",
        "a-caller",
        "subroutines",
        "a-caller",
        None,
        {},
        None,
        (("subroutines", "z-callee"),),
    )
    callee = Operation("add", "subroutines", "z-callee", "subroutines", "z-callee", None, {})
    user = Operation("add", "users", "u1", "users", "u1", None, {}, None, (("templates", "t"),))
    template = Operation("modify", "templates", "t", "templates", "t", None, {})
    assert [o.key for o in order([user, caller, callee, template])] == [
        "t",
        "u1",
        "z-callee",
        "a-caller",
    ]
