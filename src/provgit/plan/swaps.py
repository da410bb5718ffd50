"""Number swaps: users trading directory numbers (DNs) in one commit.

An element refuses a DN another record of it still holds. Two users swapping
numbers (user0 3000 -> 3001, user1 3001 -> 3000), or a longer rotation
A -> B -> C -> A, planned as plain writes wait for each other for ever: on
one element each modify is refused while the other still holds its number;
across hosts (the users swap hosts too) each create on the new host waits for
the other's delete there, which waits for that create on the other host
(make before break, plan/moves.py).

Such a cycle is broken with a spare number (option (a) of the design): one
user of it (the first by key) is written, in the same run, with a spare DN in
place of its numbers in dispute: on an element that keeps it, its own record
with the spare instead of the number still held by another (its old number
is freed, none held is taken); on the host it leaves, its record with spares
instead of its delete (the delete waits for the new host, and the number it
holds there is what the others wait for). The writes taking the numbers it
frees depend on that step (they go after it, and not if it fails), so every
user is on a call server all along. The next run, planned against what the
elements then hold, ends the swap: the number the spare user waited for is
free by then, and the host it left is told to delete it once the new host has
it. Option (b), a delete first where the user already sits on another host,
never breaks a swap: neither user is on its new host yet, and a delete before
the create would leave a user on no call server.

The spare is a number that clashes with no number any record names, in the
config or as observed on any element of the network, nor with one of them
in a dial plan (plan/numbers.py: the highest such number of the disputed
DN's length, else of 7 digits). The steps are part of the plan (`ElementPlan.swaps`,
signed with it), shown by `provgit plan`; a saved plan's step is re-checked
as the record the config wants with the spares put back (plan/recheck.py).
Apply keeps each landed step as a pending update ("Move pending: ... spare
DN ..."): no element says Sync Completed while a user is on a spare number.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from provgit.plan.identity import USERS
from provgit.plan.model import Action, ElementPlan, Operation
from provgit.plan.numbers import Taken, free_dn, spare_allowed
from provgit.plan.ordering import order
from provgit.plan.swap_mark import Swap

Node = tuple[str, int]  # (element, index of the operation in its list)
# Owners -> the numbers every other record names, and each owner's own.
Apart = Callable[[Collection[str]], tuple[set[str], dict[str, set[str]]]]


def _dns(services: Any) -> list[str]:
    if not isinstance(services, list):
        return []
    return [str(s["dn"]) for s in services if isinstance(s, dict) and s.get("dn") is not None]


def _gives_takes(op: Operation) -> tuple[set[str], set[str]]:
    """The DNs `op` frees on its element, and those it takes there."""
    if op.action == "add":
        return set(), set(_dns((op.fields or {}).get("services")))
    change = op.changes.get("services")
    if not isinstance(change, dict):
        return set(), set()
    before = set(_dns(change.get("before")))
    if op.action == "delete":
        return before, set()
    after = set(_dns(change.get("after")))
    return before - after, after - before


def _ops(e: ElementPlan) -> Sequence[Operation]:
    return e.operations if e.observed else e.queued


@dataclass
class _Graph:
    """Which write waits for which: a write taking a DN another record of its
    element frees waits for that record's write; a move's delete waits for
    the create on the new host (queued ones of an element that is down too)."""

    edges: dict[Node, set[Node]] = field(default_factory=dict)
    # Element -> DN -> the indexes of the users' writes freeing it there.
    freed: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    # (element type, key) -> each element creating that user, with its add.
    adds: dict[tuple[str, str], list[tuple[str, Operation]]] = field(default_factory=dict)


def _graph(elements: Sequence[ElementPlan]) -> _Graph:
    g = _Graph()
    deleted: dict[tuple[str, str], list[Node]] = {}  # (type, key) -> deletes
    for e in elements:
        ops = _ops(e)
        freed: dict[str, list[int]] = {}
        for i, op in enumerate(ops):
            if op.action != "add" and op.collection == USERS:
                for dn in _gives_takes(op)[0]:
                    freed.setdefault(dn, []).append(i)
                if op.action == "delete":
                    deleted.setdefault((e.element_type, op.key), []).append((e.element, i))
        if not freed:
            continue
        g.freed[e.element] = freed
        for i, op in enumerate(ops):
            if op.action != "delete" and op.collection == USERS:
                for dn in _gives_takes(op)[1]:
                    for j in freed.get(dn, ()):
                        if ops[j].key != op.key:
                            g.edges.setdefault((e.element, i), set()).add((e.element, j))
    if not g.edges:
        return g
    for e in elements:
        for i, op in enumerate(_ops(e)):
            if op.action == "add" and op.collection == USERS:
                g.adds.setdefault((e.element_type, op.key), []).append((e.element, op))
                for node in deleted.get((e.element_type, op.key), ()):
                    if node[0] != e.element:
                        g.edges.setdefault(node, set()).add((e.element, i))
    return g


def _on_cycle(edges: Mapping[Node, set[Node]], start: Node) -> bool:
    seen: set[Node] = set()
    todo = list(edges.get(start, ()))
    while todo:
        n = todo.pop()
        if n == start:
            return True
        if n not in seen:
            seen.add(n)
            todo.extend(edges.get(n, ()))
    return False


def _spared(services: Any, spares: Mapping[str, str]) -> Any:
    if not isinstance(services, list):
        return services
    return [
        {**s, "dn": spares[str(s["dn"])]}
        if isinstance(s, dict) and s.get("dn") is not None and str(s["dn"]) in spares
        else s
        for s in services
    ]


def unspared(fields: Mapping[str, Any], swap: Swap) -> dict[str, Any]:
    """A step's record with its spares put back: what the config wants (on
    `swap.home`, for a record leaving its element)."""
    back = {spare: dn for dn, spare in swap.spares}
    return {**fields, "services": _spared(fields.get("services"), back)}


def _parked(elements: Sequence[ElementPlan]) -> dict[tuple[str, str], str]:
    """(user, DN the config gives it) -> the number it holds in that DN's
    place on an element whose record of it differs from the config's in DNs
    only: a swap's step landed there (and the element down then is up now)."""
    out: dict[tuple[str, str], str] = {}
    for e in elements:
        for op in e.operations if e.observed else ():
            change = op.changes.get("services")
            if op.action != "modify" or op.collection != USERS or op.changes.keys() != {"services"}:
                continue
            assert isinstance(change, dict)
            before, after = change.get("before"), change.get("after")
            if not isinstance(before, list) or not isinstance(after, list):
                continue
            if len(before) != len(after):
                continue
            for b, a in zip(before, after, strict=True):
                if not (isinstance(a, dict) and isinstance(b, dict)) or b.get("dn") is None:
                    continue
                if b["dn"] != a.get("dn") and {**b, "dn": a.get("dn")} == a:
                    out.setdefault((op.key, str(a["dn"])), str(b["dn"]))
    return out


class _Breaker:
    """Breaks the cycles of one plan, one step at a time."""

    def __init__(
        self,
        elements: Sequence[ElementPlan],
        in_use: Callable[[], set[str]],
        apart: Apart | None = None,
    ) -> None:
        self.elements = list(elements)
        self.planned = tuple(elements)
        self.index = {e.element: i for i, e in enumerate(self.elements)}
        self._in_use = in_use
        self.used: Taken | None = None
        self.spare_of: dict[tuple[str, str], str] = {}  # (key, DN) -> spare
        self.graph = _Graph()
        self._apart = apart
        self._parked: dict[tuple[str, str], str] | None = None  # read at the first spare
        self._rest: tuple[Taken, dict[str, set[str]]] | None = None

    def spare(self, key: str, dn: str, held: Collection[str] = ()) -> str:
        """The same spare for a person's DN on every element: the one it is
        already on elsewhere, if any and still free (`held`: the numbers it
        holds on the element written)."""
        if (key, dn) not in self.spare_of:
            if self.used is None:
                self.used = Taken(self._in_use())
            spare = self._kept(key, dn, held) or free_dn(dn, self.used)
            self.used.add(spare)
            self.spare_of[(key, dn)] = spare
        return self.spare_of[(key, dn)]

    def _kept(self, key: str, dn: str, held: Collection[str]) -> str | None:
        """The spare `key` is parked on in `dn`'s place on another element,
        while it rings no one else: no other record names it (nor clashes with
        it in a dial plan), no other user of this plan is given it."""
        if self._apart is None:
            return None
        if self._parked is None:
            # The plan as planned (no step yet: a step's own spare is no parking).
            self._parked = _parked(self.planned)
        spare = self._parked.get((key, dn))
        if spare is None or spare in held or not spare_allowed(spare):
            return None
        if self._rest is None:
            rest, owned = self._apart({k for k, _ in self._parked})
            self._rest = (Taken(rest), owned)
        taken, owned = self._rest
        others = Taken(n for k, numbers in owned.items() if k != key for n in numbers)
        for (k, _), given in self.spare_of.items():
            if k != key:
                others.add(given)
        return None if taken.clashes(spare) or others.clashes(spare) else spare

    def run(self) -> None:
        """Break every cycle, one pass in (key, element) order: a step's
        write takes no number another frees, so it ends every cycle through it."""
        g = self.graph = _graph(self.elements)
        candidates = sorted(
            {n for targets in g.edges.values() for n in targets},
            key=lambda n: (_ops(self.elements[self.index[n[0]]])[n[1]].key, n[0]),
        )
        for node in candidates:
            e = self.elements[self.index[node[0]]]
            if e.observed and _on_cycle(g.edges, node) and self._break(e, node[1], g):
                g.edges[node] = set()

    def _break(self, e: ElementPlan, i: int, g: _Graph) -> bool:
        op = e.operations[i]
        if op.action == "modify":
            # The numbers it takes that another user's write here frees.
            freed = g.freed.get(e.element, {})
            held = {
                dn
                for dn in _gives_takes(op)[1]
                if any(e.operations[j].key != op.key for j in freed.get(dn, ()))
            }
            now = _dns(op.changes.get("services", {}).get("before"))
            spares = tuple((dn, self.spare(op.key, dn, now)) for dn in sorted(held))
            swap = Swap(op.collection, op.key, spares)
            step = self._renumber(op, swap)
        else:
            homes = [h for h in g.adds.get((e.element_type, op.key), ()) if h[0] != e.element]
            if not homes:
                return False
            home, add = min(homes, key=lambda h: h[0])
            fields = add.fields or {}
            now = _dns(op.changes.get("services", {}).get("before"))
            spares = tuple((dn, self.spare(op.key, dn, now)) for dn in _dns(fields.get("services")))
            swap = Swap(op.collection, op.key, spares, home)
            step = self._leave(op, fields, swap)
        if not swap.spares:
            return False
        self._replace(e, i, step, swap)
        return True

    @staticmethod
    def _renumber(op: Operation, swap: Swap) -> Operation:
        """`op`'s modify with its spares instead of the DNs it waits for."""
        fields = op.fields or {}
        services = _spared(fields.get("services"), dict(swap.spares))
        before = op.changes.get("services", {}).get("before")
        changes = {**op.changes, "services": {"before": before, "after": services}}
        return rebuilt(op, {**fields, "services": services}, changes)

    @staticmethod
    def _leave(op: Operation, fields: Mapping[str, Any], swap: Swap) -> Operation:
        """Instead of `op`'s delete, the record as the config has it on its
        new host, with spares for its numbers."""
        services = _spared(fields.get("services"), dict(swap.spares))
        before = op.changes.get("services", {}).get("before")
        changes = {"services": {"before": before, "after": services}}
        return rebuilt(op, {**fields, "services": services}, changes, (), "modify")

    def _replace(self, e: ElementPlan, i: int, step: Operation, swap: Swap) -> None:
        ops = list(e.operations)
        ops[i] = step
        self.elements[self.index[e.element]] = dataclasses.replace(
            e, operations=tuple(ops), swaps=(*e.swaps, swap)
        )


def _chained(e: ElementPlan) -> ElementPlan:
    """`e` with each write taking a DN another user's modify frees here
    depending on that modify: it goes after it (in a later wave, not side by
    side), and not if it fails. With the cycles broken, they form chains."""
    ops = list(e.operations)
    freed: dict[str, tuple[str, str]] = {}
    for op in ops:
        if op.action == "modify" and op.collection == USERS:
            for dn in _gives_takes(op)[0]:
                freed[dn] = (op.collection, op.key)
    for j, op in enumerate(ops):
        if op.action == "delete" or op.collection != USERS:
            continue
        refs = {freed[dn] for dn in _gives_takes(op)[1] if dn in freed}
        refs -= {(op.collection, op.key), *op.depends_on}
        if refs:
            ops[j] = rebuilt(op, op.fields, None, (*op.depends_on, *sorted(refs)))
    return dataclasses.replace(e, operations=tuple(order(ops)))


def rebuilt(
    op: Operation,
    fields: dict[str, Any] | None,
    changes: dict[str, dict[str, Any]] | None = None,
    depends_on: tuple[tuple[str, str], ...] | None = None,
    action: Action | None = None,
) -> Operation:
    """`op` writing `fields` (with `changes`, else its own; `depends_on`, else its own)."""
    return Operation(
        action or op.action,
        op.collection,
        op.key,
        op.kind,
        op.resource,
        op.delta if changes is None else changes,
        fields,
        op.if_revision,
        op.depends_on if depends_on is None else depends_on,
        op.managed,
        op.claim,
    )


def break_swaps(
    elements: Sequence[ElementPlan],
    in_use: Callable[[], set[str]],
    apart: Apart | None = None,
) -> list[ElementPlan]:
    """`elements` with each cycle of DN writes broken by a spare number step.
    `in_use`: every number an element of the network holds or the config
    uses (plan/numbers.py; asked only when a cycle is found); `apart`: the
    same with given users' own numbers apart (asked only when a user of a
    cycle is already on a spare elsewhere: it keeps that one, when free)."""
    if not any(op.action != "add" and op.collection == USERS for e in elements for op in _ops(e)):
        return list(elements)  # a first rollout: adds only
    breaker = _Breaker(elements, in_use, apart)
    breaker.run()
    # Chained too where no cycle is: a modify taking the number another
    # user's modify frees must not go out beside it, and is refused if that fails.
    edges = breaker.graph.edges.items()
    chained = {a[0] for a, targets in edges if any(t[0] == a[0] for t in targets)}
    out = [_chained(e) if e.swaps or e.element in chained else e for e in breaker.elements]
    return [
        b if b is a else dataclasses.replace(b, unbroken=a.operations)
        for a, b in zip(elements, out, strict=True)
    ]


def waits_elsewhere(elements: Sequence[ElementPlan], held: Collection[str]) -> bool:
    """Whether a write of `elements` takes a number that the delete of
    another user leaving for an element not in `held` frees: the one place a
    cycle of a plan cut to `held` (a replica's elements) can leave them, and
    come back through the creates it waits for. Only then does such a plan
    need the other elements to see whether it is a swap (watch/replicas)."""
    return any(True for _ in waiting_elsewhere(elements, held))


def waiting_elsewhere(
    elements: Sequence[ElementPlan], held: Collection[str]
) -> Iterator[tuple[Operation, str, Operation]]:
    """Each (delete of a user leaving for an element not in `held`, the
    element, a write there taking a number that delete frees): the halves
    of the swaps `waits_elsewhere` looks for."""
    for e in elements:
        leaving = {m.key for m in e.moves if m.collection == USERS and set(m.to) - set(held)}
        if not leaving:
            continue
        ops = e.unbroken if e.unbroken is not None else _ops(e)
        freed: dict[str, Operation] = {}
        for op in ops:
            if op.action == "delete" and op.collection == USERS and op.key in leaving:
                freed.update(dict.fromkeys(_gives_takes(op)[0], op))
        for op in ops:
            takes = _gives_takes(op)[1] if op.action != "delete" and op.collection == USERS else ()
            for dn in takes:
                gone = freed.get(dn)
                if gone is not None and gone.key != op.key:
                    yield gone, e.element, op
