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

A move is paired by the person, not only by the record key: a user moved
and renamed in one commit (login_id user0 -> user9) is a delete of
users/user0 on the old host and a create of users/user9 on the new one. The
delete waits for that create as for one of the same key, paired by what the
projection keeps across a rename (a service DN, the email: plan/identity.py),
and the move names the key it is created with there (`Move.as_key`). An
element that re-creates the person itself (renamed in place) is not moving
it: its delete pairs by key only.

The marks are part of the plan (`ElementPlan.moves`, signed with it), so a
saved plan applied later, or a plan cut to some elements, holds the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provgit.plan.identity import Identity, deleted_fields, identities
from provgit.registry import KEYED_APART

if TYPE_CHECKING:
    from provgit.plan.model import ElementPlan, Operation, Plan

Ref = tuple[str, str]
Where = tuple[str, str]  # (element, element type)
# Where a record is created: (element, element type, the key it has there).
Created = tuple[str, str, str]


@dataclass(frozen=True)
class Move:
    """The delete of `collection`/`key` on its element waits for its create on
    `to`, under `as_key` there when the move renames it (None: the same key)."""

    collection: str
    key: str
    to: tuple[str, ...]
    as_key: str | None = None

    @property
    def created(self) -> Ref:
        """The record whose create on `to` the delete waits for."""
        return (self.collection, self.key if self.as_key is None else self.as_key)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"collection": self.collection, "key": self.key, "to": list(self.to)}
        if self.as_key is not None:  # only then: a plain move's plan keeps its checksum
            out["as"] = self.as_key
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Move:
        as_key = d.get("as")
        return cls(
            str(d["collection"]),
            str(d["key"]),
            tuple(str(t) for t in d["to"]),
            None if as_key is None else str(as_key),
        )


# Every status word of a move's held write starts so (report/document_common.py).
MOVE_PENDING = "Move pending: "


def held_reason(
    collection: str,
    key: str,
    missing: Sequence[str],
    as_key: str | None = None,
    outside: Sequence[str] = (),
) -> str:
    """The status words of a delete kept back: the move is not done yet
    (`outside`: those of `missing` the run did not cover, `--element`)."""
    renamed = "" if as_key is None or as_key == key else f" as {collection}/{as_key}"
    away = [e for e in missing if e in outside]
    cut = f"; {', '.join(away)} {'is' if len(away) == 1 else 'are'} not in this run" if away else ""
    return (
        f"{MOVE_PENDING}delete of {collection}/{key} held until "
        f"{', '.join(missing)} has it{renamed} (created and kept there{cut})"
    )


def _moves_whole(op: Operation) -> bool:
    """A delete of a resource's own record (a user on its host), not of one
    derived from it (the directory entry other call servers keep for that
    user, keyed by its DN): those follow the resource's own, on each element."""
    return op.action == "delete" and op.key == op.resource and op.collection not in KEYED_APART


def _persons(deletes: Mapping[str, Sequence[Operation]]) -> dict[tuple[str, Identity], set[str]]:
    """(collection, identity) -> the keys of the deleted records that carry it."""
    out: dict[tuple[str, Identity], set[str]] = {}
    for found in deletes.values():
        for op in found:
            for ident in identities(deleted_fields(op)):
                out.setdefault((op.collection, ident), set()).add(op.key)
    return out


def _may_be(fields: Mapping[str, Any], dns: set[str], emails: set[str]) -> bool:
    """Whether an add may be a deleted person (a DN or the email in common):
    looked at for every add of a plan with deletes, so no set is built."""
    services = fields.get("services")
    if type(services) is list:
        for s in services:
            if type(s) is dict and (dn := s.get("dn")) is not None and str(dn) in dns:
                return True
    email = fields.get("email")
    return isinstance(email, str) and email.casefold() in emails


def _creates(
    elements: Sequence[ElementPlan], deletes: Mapping[str, Sequence[Operation]]
) -> dict[Ref, list[Created]]:
    """Each deleted record -> where the plan creates (or queues) it: under
    its key, or, for a delete no element of its type re-creates under its
    key, under another key with the same person (a rename)."""
    keys = {op.key for found in deletes.values() for op in found}
    deleted = {(op.collection, op.key) for found in deletes.values() for op in found}
    created: dict[Ref, list[Created]] = {}
    for e in elements:
        for ops in (e.operations, e.queued):
            for op in ops:
                if op.action == "add" and op.key in keys and (op.collection, op.key) in deleted:
                    created.setdefault((op.collection, op.key), []).append(
                        (e.element, e.element_type, op.key)
                    )
    types = {e.element: e.element_type for e in elements}
    lone = {
        name: alone
        for name, found in deletes.items()
        if (alone := [op for op in found if not _by_key(name, types[name], op, created)])
    }
    # Only those are looked for by person: a plain move (the same login)
    # costs no scan of every add (benchmarks/bench_moves.py).
    persons = _persons(lone)
    if persons:
        _by_person(elements, persons, created)
    return created


def _by_key(
    name: str, element_type: str, op: Operation, created: Mapping[Ref, list[Created]]
) -> bool:
    """Whether another element of `name`'s type creates `op`'s record under its key."""
    where = created.get((op.collection, op.key), ())
    return any(t == element_type and n != name for n, t, _ in where)


def _adds(
    elements: Sequence[ElementPlan], kinds: set[str]
) -> Iterator[tuple[ElementPlan, Operation, dict[str, Any]]]:
    for e in elements:
        for ops in (e.operations, e.queued):
            for op in ops:
                if op.action == "add" and op.collection in kinds and op.fields:
                    yield e, op, op.fields


def _by_person(
    elements: Sequence[ElementPlan],
    persons: Mapping[tuple[str, Identity], set[str]],
    created: dict[Ref, list[Created]],
) -> None:
    """Add to `created` the adds of another key that are a deleted person.
    An add is the person its key is on every element: a call server's user
    record has no email, the MiCollab's add of the same key has it."""
    kinds = {c for c, _ in persons}
    dns, emails = _values(persons)
    maybe = {
        (op.collection, op.key)
        for _, op, fields in _adds(elements, kinds)
        if _may_be(fields, dns, emails)
    }
    if not maybe:
        return
    found: dict[Ref, set[Identity]] = {}
    where: dict[Ref, list[Created]] = {}
    for e, op, fields in _adds(elements, kinds):
        ref = (op.collection, op.key)
        if ref in maybe:
            found.setdefault(ref, set()).update(identities(fields))
            where.setdefault(ref, []).append((e.element, e.element_type, op.key))
    for (collection, old), keys in _pairs(found, persons).items():
        for key in sorted(keys):
            created.setdefault((collection, old), []).extend(where[(collection, key)])


def _values(persons: Mapping[tuple[str, Identity], set[str]]) -> tuple[set[str], set[str]]:
    """The DNs and the emails the deleted persons carry."""
    dns = {v for (_, (what, v)) in persons if what == "DN"}
    emails = {v for (_, (what, v)) in persons if what == "email"}
    return dns, emails


def _pairs(
    found: Mapping[Ref, set[Identity]], persons: Mapping[tuple[str, Identity], set[str]]
) -> dict[Ref, set[str]]:
    """Each deleted record -> the other keys its person is added under
    (`found`: each added record's identities). An email names a person; a
    DN is handed on (a new hire given the number of someone who moved, in
    the same commit). So a record paired by its email is paired by nothing
    else, and a DN shared by two records with different emails pairs none."""
    old_emails: dict[Ref, set[str]] = {}
    for (collection, (what, v)), keys in persons.items():
        if what == "email":
            for k in keys:
                old_emails.setdefault((collection, k), set()).add(v)
    by_old: dict[Ref, dict[str, bool]] = {}
    for (collection, key), idents in found.items():
        emails = {v for what, v in idents if what == "email"}
        for ident in idents:
            for old in persons.get((collection, ident), ()):
                mine = old_emails.get((collection, old))
                if old == key or (ident[0] == "DN" and emails and mine and not emails & mine):
                    continue
                paired = by_old.setdefault((collection, old), {})
                paired[key] = paired.get(key, False) or ident[0] == "email"
    return {
        old: {k for k, e in paired.items() if e} or set(paired) for old, paired in by_old.items()
    }


def mark_moves(
    elements: Sequence[ElementPlan], elsewhere: Mapping[Ref, Sequence[Created]] | None = None
) -> list[ElementPlan]:
    """`elements` with each one's deletes that are moves marked: the record
    (or the person it is, renamed) is created on another element of the same
    type (a MiCollab keeping the user a call server gives up is not where it
    moves). `elsewhere`: records wanted on elements this plan does not cover
    (a plan cut to some elements), which count as creates not confirmed in
    the run."""
    # Plain loops, the action looked at first: a first rollout's plan holds a
    # million adds and no delete (benchmarks/bench_moves.py).
    deletes: dict[str, list[Operation]] = {}
    for e in elements:
        found = [op for op in e.operations if op.action == "delete" and _moves_whole(op)]
        if found:
            deletes[e.element] = found
    if not deletes:
        return list(elements)
    created = _creates(elements, deletes)
    for ref, where in (elsewhere or {}).items():
        created.setdefault(ref, []).extend(where)
    out = []
    for e in elements:
        moves = []
        for op in deletes.get(e.element, ()) if created else ():
            moves += _moves_of(e, op, created.get((op.collection, op.key), ()))
        out.append(dataclasses.replace(e, moves=tuple(moves)) if moves else e)
    return out


def _moves_of(e: ElementPlan, op: Operation, where: Sequence[Created]) -> list[Move]:
    """The moves of `e`'s delete `op` to the elements of `e`'s type `where`
    creates it on, one per key it has there. A key `e` re-creates the person
    under itself is no move (renamed in place: it keeps it); the keys only
    other elements create it under still are (two users may share an email:
    a new hire here given the moving user's email is not where it went)."""
    by_key: dict[str, set[str]] = {}
    for name, element_type, key in where:
        if element_type == e.element_type:
            by_key.setdefault(key, set()).add(name)
    for key in [k for k, names in by_key.items() if k != op.key and e.element in names]:
        del by_key[key]
    moves = []
    for key, names in sorted(by_key.items()):
        names.discard(e.element)
        if names:
            as_key = None if key == op.key else key
            moves.append(Move(op.collection, op.key, tuple(sorted(names)), as_key))
    return moves


def move_map(e: ElementPlan) -> dict[Ref, tuple[str, ...]]:
    """(collection, key) of each delete on `e` that waits for a create -> where."""
    out: dict[Ref, tuple[str, ...]] = {}
    for m in e.moves:
        ref = (m.collection, m.key)
        out[ref] = tuple(sorted({*out.get(ref, ()), *m.to}))
    return out


def move_wants(e: ElementPlan) -> dict[Ref, list[tuple[str, Ref]]]:
    """(collection, key) of each delete on `e` that waits -> each (element,
    record) whose create it waits for (the record renamed on the way, or not)."""
    out: dict[Ref, list[tuple[str, Ref]]] = {}
    for m in e.moves:
        out.setdefault((m.collection, m.key), []).extend((t, m.created) for t in m.to)
    return out


def wanted_elsewhere(
    elements: Sequence[ElementPlan],
    wanted: Mapping[str, Mapping[str, Mapping[str, Any]]],
    element_types: Mapping[str, str],
    cut: bool,
) -> dict[Ref, list[Created]]:
    """Each record the deletes of `elements` remove that `wanted` (element ->
    collection -> key -> fields, the config's) has, under its key or renamed
    (the same person), on an element the plan cannot say holds it: one never
    observed (down, nothing queued for it), or, for a plan `cut` to some
    elements, one it leaves out. The delete waits as for a create not
    confirmed."""
    known = {e.element for e in elements if e.observed or e.queued}
    if not cut:
        known |= {n for n in element_types if n not in {e.element for e in elements}}
    out: dict[Ref, list[Created]] = {}
    if known >= set(element_types):
        return out  # every element of the network says what it holds
    deletes = {
        e.element: found
        for e in elements
        if (found := [op for op in e.operations if op.action == "delete" and _moves_whole(op)])
    }
    deleted = [(op.collection, op.key) for found in deletes.values() for op in found]
    unknown = {n for n in wanted if n not in known and n in element_types}
    for name in sorted(unknown):
        for collection, key in deleted:
            if key in wanted[name].get(collection, {}):
                out.setdefault((collection, key), []).append((name, element_types[name], key))
    persons = _persons(deletes) if deleted else {}
    if not persons:
        return out
    # The person a record is comes from every element's record of its key
    # (a call server's has no email), as in _by_person.
    kinds = {c for c, _ in persons}
    dns, emails = _values(persons)
    maybe = {
        (collection, key)
        for records in wanted.values()
        for collection in kinds
        for key, fields in records.get(collection, {}).items()
        if _may_be(fields, dns, emails)
    }
    ids_of: dict[Ref, set[Identity]] = {}
    for records in wanted.values():
        for collection, key in maybe:
            fields = records.get(collection, {}).get(key)
            if fields is not None:
                ids_of.setdefault((collection, key), set()).update(identities(fields))
    for (collection, old), keys in _pairs(ids_of, persons).items():
        for name in sorted(unknown):
            for key in sorted(keys):
                if key in wanted[name].get(collection, {}):
                    out.setdefault((collection, old), []).append((name, element_types[name], key))
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
    delete waits until that element is read to hold it (apply/moves.py)."""
    elsewhere = wanted_elsewhere(plan.elements, wanted, element_types, True)
    if not elsewhere:
        return plan
    return dataclasses.replace(plan, elements=tuple(mark_moves(plan.elements, elsewhere)))


def unmarked_moves(elements: Sequence[ElementPlan]) -> list[str]:
    """The moves `elements`' own operations make that their marks do not hold
    back: a saved plan from a provgit that paired moves by record key only
    (a move that renames went unmarked) would delete the old copy at once.
    Apply refuses such a plan; planning again marks them."""
    bare = [dataclasses.replace(e, moves=()) if e.moves else e for e in elements]
    problems = []
    for e, derived in zip(elements, mark_moves(bare), strict=True):
        have = {(ref, w) for ref, wants in move_wants(e).items() for w in wants}
        for ref, wants in move_wants(derived).items():
            missing = [(t, made) for t, made in wants if (ref, (t, made)) not in have]
            if missing:
                where = ", ".join(
                    t if made == ref else f"{t} as {made[0]}/{made[1]}" for t, made in missing
                )
                problems.append(
                    f"{e.element}: the delete of {ref[0]}/{ref[1]} moves it to {where}, but "
                    "the plan does not hold it back until it is there (saved by an older "
                    "provgit?): run `provgit plan --out FILE` again"
                )
    return problems
