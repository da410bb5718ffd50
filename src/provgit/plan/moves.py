"""Moves: a record deleted on one element while it is created on another.

A user whose host changes (or a role, COS or targeting change that moves
records) is planned as a delete on the old element and an add on the new one.
Sent side by side, a new element that is down or refuses the create leaves the
user nowhere until it is back. So the delete of a record that the same plan
creates (or queues for creation) on another element, in the same collection,
is marked: apply sends it only once each of those creates is confirmed in the
same run (landed and kept), and otherwise keeps it as a pending update
("Move pending: ..."); the next run, planned against elements that now hold
the record, deletes it at once. A record removed from the config (created
nowhere) is not a move: it is deleted at once.

The marks are part of the plan (`ElementPlan.moves`, signed with it), so a
saved plan applied later, or a plan cut to some elements, holds the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provgit.registry import KEYED_APART

if TYPE_CHECKING:
    from provgit.plan.model import ElementPlan, Operation, Plan

Ref = tuple[str, str]
Where = tuple[str, str]  # (element, element type)


@dataclass(frozen=True)
class Move:
    """The delete of `collection`/`key` on its element waits for its create on `to`."""

    collection: str
    key: str
    to: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"collection": self.collection, "key": self.key, "to": list(self.to)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Move:
        return cls(str(d["collection"]), str(d["key"]), tuple(str(t) for t in d["to"]))


# Every status word of a move's held write starts so (report/document_common.py).
MOVE_PENDING = "Move pending: "


def held_reason(collection: str, key: str, missing: Sequence[str]) -> str:
    """The status words of a delete kept back: the move is not done yet."""
    return (
        f"{MOVE_PENDING}delete of {collection}/{key} held until "
        f"{', '.join(missing)} has it (created and kept there)"
    )


def _moves_whole(op: Operation) -> bool:
    """A delete of a resource's own record (a user on its host), not of one
    derived from it (the directory entry other call servers keep for that
    user, keyed by its DN): those follow the resource's own, on each element."""
    return op.action == "delete" and op.key == op.resource and op.collection not in KEYED_APART


def mark_moves(
    elements: Sequence[ElementPlan], elsewhere: Mapping[Ref, Sequence[Where]] | None = None
) -> list[ElementPlan]:
    """`elements` with each one's deletes that are moves marked: the record is
    created on another element of the same type (a MiCollab keeping the user
    a call server gives up is not where it moves). `elsewhere`: records wanted
    on elements this plan does not cover (a plan cut to some elements), which
    count as creates not confirmed in the run."""
    # Plain loops, the action looked at first: a first rollout's plan holds a
    # million adds and no delete (benchmarks/bench_moves.py).
    deletes: dict[str, list[Operation]] = {}
    for e in elements:
        found = [op for op in e.operations if op.action == "delete" and _moves_whole(op)]
        if found:
            deletes[e.element] = found
    if not deletes:
        return list(elements)
    keys = {op.key for found in deletes.values() for op in found}
    deleted = {(op.collection, op.key) for found in deletes.values() for op in found}
    created: dict[Ref, list[Where]] = {}
    for e in elements:
        for ops in (e.operations, e.queued):
            for op in ops:
                if op.key in keys and op.action == "add":
                    ref = (op.collection, op.key)
                    if ref in deleted:
                        created.setdefault(ref, []).append((e.element, e.element_type))
    for ref, where in (elsewhere or {}).items():
        if ref in deleted:
            created.setdefault(ref, []).extend(where)
    out = []
    for e in elements:
        moves = []
        for op in deletes.get(e.element, ()) if created else ():
            to = {n for n, t in created.get((op.collection, op.key), ()) if t == e.element_type}
            to.discard(e.element)
            if to:
                moves.append(Move(op.collection, op.key, tuple(sorted(to))))
        out.append(dataclasses.replace(e, moves=tuple(moves)) if moves else e)
    return out


def move_map(e: ElementPlan) -> dict[Ref, tuple[str, ...]]:
    """(collection, key) of each delete on `e` that waits for a create -> where."""
    return {(m.collection, m.key): m.to for m in e.moves}


def wanted_elsewhere(
    elements: Sequence[ElementPlan],
    wanted: Mapping[str, Mapping[str, Mapping[str, Any]]],
    element_types: Mapping[str, str],
    cut: bool,
) -> dict[Ref, list[Where]]:
    """Each record the deletes of `elements` remove that `wanted` (element ->
    collection -> key -> fields, the config's) has on an element the plan
    cannot say holds it: one never observed (down, nothing queued for it), or,
    for a plan `cut` to some elements, one it leaves out. The delete waits as
    for a create not confirmed."""
    known = {e.element for e in elements if e.observed or e.queued}
    if not cut:
        known |= {n for n in element_types if n not in {e.element for e in elements}}
    out: dict[Ref, list[Where]] = {}
    if known >= set(element_types):
        return out  # every element of the network says what it holds
    deleted = [
        (op.collection, op.key)
        for e in elements
        for op in e.operations
        if op.action == "delete" and _moves_whole(op)
    ]
    for name, records in wanted.items():
        if name in known or name not in element_types:
            continue
        for collection, key in deleted:
            if key in records.get(collection, {}):
                out.setdefault((collection, key), []).append((name, element_types[name]))
    return out


def mark_cut_moves(
    plan: Plan,
    wanted: Mapping[str, Mapping[str, Mapping[str, Any]]],
    element_types: Mapping[str, str],
) -> Plan:
    """`plan`, cut to some elements (a replica's: the elements it holds), with
    the deletes of records `wanted` on an element it leaves out marked as
    moves there, however it was planned (a re-plan from memory knows no
    other element's records). Another replica creates the record there; the
    delete waits until the shared journal says that create was kept
    (apply/moves.py)."""
    elsewhere = wanted_elsewhere(plan.elements, wanted, element_types, True)
    if not elsewhere:
        return plan
    return dataclasses.replace(plan, elements=tuple(mark_moves(plan.elements, elsewhere)))
