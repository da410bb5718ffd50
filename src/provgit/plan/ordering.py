"""The order operations run in on one element.

References decide it: departments, locations, COS and COR groups before the
templates, roles and users that name them; prompts and subroutines before the
workflows that use them. Deletes of dependents run first (they free DNs and
references), deletes of what others reference run last, in reverse order.
"""

from __future__ import annotations

from collections.abc import Sequence

from provgit.plan.model import Operation

# Each collection's reference order and whether it is deleted first come from
# the registry of kinds (re-exported here for the benchmarks).
from provgit.registry import COLLECTION_ORDER as COLLECTION_ORDER
from provgit.registry import DELETE_FIRST as DELETE_FIRST

_ACTION_RANK = {"modify": 0, "add": 1}


def order(ops: Sequence[Operation]) -> list[Operation]:
    # Ranked per call, not once at import: a kind registered later ranks too.
    ranks = {c: i for i, c in enumerate(COLLECTION_ORDER)}
    last = len(ranks)
    # The sort keys look ranks up inline: one Python call per operation, not two.
    rank = ranks.get

    early = [o for o in ops if o.action == "delete" and o.collection in DELETE_FIRST]
    late = [o for o in ops if o.action == "delete" and o.collection not in DELETE_FIRST]
    writes = [o for o in ops if o.action != "delete"]
    early.sort(key=lambda o: (-rank(o.collection, last), o.key))
    late.sort(key=lambda o: (-rank(o.collection, last), o.key))
    # Modifies before adds inside a collection: a modify may release a DN an add takes.
    writes.sort(key=lambda o: (rank(o.collection, last), _ACTION_RANK[o.action], o.key))
    return early + _callees_first(writes) + late


def _depend_within(ops: list[Operation], index: dict[tuple[str, str], int]) -> bool:
    """Whether any operation depends on another of its own collection (plain
    loops: it looks at every dependency of a first rollout)."""
    for o in ops:
        collection = o.collection
        for d in o.depends_on:
            if d[0] == collection and d in index:
                return True
    return False


def _callees_first(ops: list[Operation]) -> list[Operation]:
    """Within a collection, records that others of it depend on go first (subroutines)."""
    index = {(o.collection, o.key): i for i, o in enumerate(ops)}
    if not _depend_within(ops, index):
        return ops
    out: list[Operation] = []
    placed: set[int] = set()
    visiting: set[int] = set()

    def place(i: int) -> None:
        if i in placed or i in visiting:
            return  # a cycle keeps file order rather than looping
        visiting.add(i)
        op = ops[i]
        for d in op.depends_on:
            j = index.get(d)
            if j is not None and d[0] == op.collection:
                place(j)
        visiting.discard(i)
        placed.add(i)
        out.append(op)

    for i in range(len(ops)):
        place(i)
    return out
