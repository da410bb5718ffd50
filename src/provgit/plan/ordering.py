"""The order operations run in on one element.

References decide it: departments, locations, COS and COR groups before the
templates, roles and users that name them; prompts and subroutines before the
workflows that use them. Deletes of dependents run first (they free DNs and
references), deletes of what others reference run last, in reverse order.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter

from provgit.plan.model import Operation

# Each collection's reference order and whether it is deleted first come from
# the registry of kinds (re-exported here for the benchmarks).
from provgit.registry import COLLECTION_ORDER as COLLECTION_ORDER
from provgit.registry import DELETE_FIRST as DELETE_FIRST

_ACTION_RANK = {"modify": 0, "add": 1}
_key = attrgetter("key")


def order(ops: Sequence[Operation]) -> list[Operation]:
    # Ranked per call, not once at import: a kind registered later ranks too.
    ranks = {c: i for i, c in enumerate(COLLECTION_ORDER)}
    last = len(ranks)
    # The sort keys look ranks up inline: one Python call per operation, not two.
    rank = ranks.get

    early = [o for o in ops if o.action == "delete" and o.collection in DELETE_FIRST]
    late = [o for o in ops if o.action == "delete" and o.collection not in DELETE_FIRST]
    early.sort(key=lambda o: (-rank(o.collection, last), o.key))
    late.sort(key=lambda o: (-rank(o.collection, last), o.key))
    # Modifies before adds inside a collection: a modify may release a DN an add takes.
    # The writes are put in runs of one rank and action, each sorted by key
    # alone: the order of one sort by (rank, action, key), without a tuple
    # built and compared per operation (a first rollout's 100,000 adds an element).
    runs: dict[tuple[int, int], list[Operation]] = {}
    for o in ops:
        action = o.action
        if action == "delete":
            continue
        place = (rank(o.collection, last), _ACTION_RANK[action])
        run = runs.get(place)
        if run is None:
            run = runs[place] = []
        run.append(o)
    writes: list[Operation] = []
    for place in sorted(runs):
        run = runs[place]
        run.sort(key=_key)
        writes += run
    return early + _callees_first(writes) + late


def _depend_within(ops: list[Operation]) -> dict[tuple[str, str], int] | None:
    """The operations' index by record when one depends on another of its own
    collection, else None. Plain loops, and the index built only for an
    operation naming its own collection: a first rollout's 300,000 adds
    depend on other collections only."""
    for o in ops:
        collection = o.collection
        for d in o.depends_on:
            if d[0] == collection:
                return _index_if_within(ops)
    return None


def _index_if_within(ops: list[Operation]) -> dict[tuple[str, str], int] | None:
    index = {(o.collection, o.key): i for i, o in enumerate(ops)}
    for o in ops:
        collection = o.collection
        for d in o.depends_on:
            if d[0] == collection and d in index:
                return index
    return None


def _callees_first(ops: list[Operation]) -> list[Operation]:
    """Within a collection, records that others of it depend on go first (subroutines)."""
    index = _depend_within(ops)
    if index is None:
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
