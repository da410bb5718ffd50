"""Status derived, never remembered (DESIGN "Trust, scale and reach", issue 12).

For every record targeting says an element must hold, the status comes from
three things and nothing else:

- the desired record (`target.Target`, the same projection plan uses);
- the element's last observation (`observe.ObservationCache`, or the watcher's
  observations in memory), with provgit's own acknowledged writes since that
  observation laid over it (the journal knows what it wrote, by a digest of the
  fields, and the revision the element gave the write);
- the journal: pending updates, distribution errors, the element's state as the
  last run found it (offline, stopped, token refused).

No element is contacted. A resource is `Sync Completed` only when every
record of it is, on every element it lands on; `completed/total` counts
elements, not writes. Records compare the way plan compares them
(`plan.compute.field_changes`), so status and plan never disagree about what
differs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from provgit.apply import status as st
from provgit.journal.db import fields_hash
from provgit.projection.project import COLLECTION_KIND, Target
from provgit.records import Fields
from provgit.report.element_facts import ElementFacts, element_facts
from provgit.report.journal_read import JournalFacts, element_rows, journal_facts
from provgit.report.leftovers import Away, Said, deletes_not_applied, held_here
from provgit.report.states import (
    COMPLETED,
    DISTRIBUTION_ERROR,
    DOWN_STATES,
    DRIFT,
    DRIFT_PROPOSED,
    DRIFT_PROPOSED_TEXT,
    DRIFT_TEXT,
    IVR_DOWN,
    LABELS,
    NOT_APPLIED,
    NOT_APPLIED_TEXT,
    OFFLINE,
    PENDING,
    PENDING_TEXT,
    READ_ONLY,
    READ_ONLY_TEXT,
    SEVERITY,
    STOPPED,
    TOKEN_REFUSED,
    TOKEN_REFUSED_TEXT,
    UNKNOWN,
    UNKNOWN_TEXT,
    UNREADABLE,
    Ref,
    Write,
    element_text,
    label,
    status_class_of,
    worst,
)
from provgit.report.target_view import VIEW_LOCK, MemoryView, TargetView, memory_view

# The names documents, the watcher and the benchmarks read through `derive`.
__all__ = [
    "COMPLETED",
    "DISTRIBUTION_ERROR",
    "DOWN_STATES",
    "DRIFT",
    "DRIFT_PROPOSED",
    "DRIFT_PROPOSED_TEXT",
    "DRIFT_TEXT",
    "FAST_LIMIT",
    "IVR_DOWN",
    "LABELS",
    "NOT_APPLIED",
    "NOT_APPLIED_TEXT",
    "OFFLINE",
    "PENDING",
    "PENDING_TEXT",
    "READ_ONLY",
    "READ_ONLY_TEXT",
    "SEVERITY",
    "STOPPED",
    "TOKEN_REFUSED",
    "TOKEN_REFUSED_TEXT",
    "UNKNOWN",
    "UNKNOWN_TEXT",
    "UNREADABLE",
    "VIEW_LOCK",
    "Derived",
    "ElementFacts",
    "JournalFacts",
    "MemoryView",
    "Ref",
    "ResourceState",
    "TargetView",
    "Write",
    "derive",
    "derive_fast",
    "describe",
    "element_facts",
    "element_rows",
    "element_text",
    "journal_facts",
    "label",
    "memory_view",
    "plan_ops",
    "resource_text",
    "status_class_of",
    "worst",
]


@dataclass
class ResourceState:
    kind: str
    resource: str
    state: str  # worst over its elements
    completed: int
    total: int
    elements: dict[str, str]  # element -> state of the resource there
    # element -> (collection, key) of the resource's first record there (for links)
    records: dict[str, Ref]
    # element -> the spare number a number swap left the user on there, or
    # the elements its swap waits for there
    parked: dict[str, Said] = field(default_factory=dict)


@dataclass
class Derived:
    resources: dict[tuple[str, str], ResourceState]
    elements: dict[str, str]  # element -> worst state of its records (or its own down state)
    element_facts: dict[str, ElementFacts]
    # element -> records provgit put there that the config no longer has
    deletes_not_applied: dict[str, list[Ref]]
    # records whose observed value provgit did not write: element -> refs
    drift: dict[str, list[Ref]]
    # Derived from the stored target's summary (`derive_fast`): completed
    # resources not in `resources`, and the store to list them from.
    completed_extra: int = 0
    store: TargetView | None = None
    # Elements marked read_only: their state is READ_ONLY, and they count in
    # neither in_sync nor the worst state (nothing lands there).
    read_only: frozenset[str] = frozenset()
    # Records held on an element the config does not put them on, of resources
    # not looked at there (`derive_fast` places them where the resource lands).
    away: list[Away] = field(default_factory=list)

    @property
    def observed_all(self) -> bool:
        return all(f.readable for n, f in self.element_facts.items() if n not in self.read_only)

    @property
    def in_sync(self) -> bool:
        return (
            self.observed_all
            and all(s in (COMPLETED, READ_ONLY) for s in self.elements.values())
            and all(r.state == COMPLETED for r in self.resources.values())
            and not any(self.deletes_not_applied.values())
        )

    def worst(self) -> str:
        out = COMPLETED
        for s in self.elements.values():
            if s != READ_ONLY:
                out = worst(out, s)
        return out


# ---- the derivation -------------------------------------------------------------


def _matches(write: Write, desired: Fields) -> bool:
    action, digest, _ = write
    if action == "delete" or digest is None:
        return False
    return digest == fields_hash(action, desired)


# A record that differs from what the element was last seen holding: its ref,
# resource, desired fields, and what the element holds (None: missing there).
_Differing = tuple[Ref, tuple[str, str], Fields, tuple[Fields, int] | None]
# Per resource on one element: its worst state there, and its first record.
_Here = dict[tuple[str, str], str]
_First = dict[tuple[str, str], Ref]


def derive(
    target: Target,
    elements: Mapping[str, ElementFacts],
    journal: JournalFacts,
    per_element: Callable[[str], Target | None] | None = None,
) -> Derived:
    """The status of every (resource, element) pair `target` produces;
    `per_element` gives each element's records in turn (`target` names them)."""
    resources: dict[tuple[str, str], ResourceState] = {}
    el_states: dict[str, str] = {}
    drift: dict[str, list[Ref]] = {}
    deletes: dict[str, list[Ref]] = {}
    pending, errors = journal.pending, journal.errors
    away: list[Away] = []
    for name, facts in elements.items():
        if name in target.read_only:
            # A source, not a target: no landing to derive (not even provgit's
            # own records there are deleted, so none is "not deleted" either).
            el_states[name] = READ_ONLY
            continue
        part = target if per_element is None else per_element(name) or target
        desired = part.records.get(name, {})
        after = journal.writes_after.get(name, {})
        here, first, differing = _classify(
            name, facts, desired, part.origin.get(name, {}), after, journal
        )
        if differing:
            _settle_differing(name, differing, journal, here, first, drift)
        parked, more_away = held_here(name, desired, journal, here)
        away += more_away
        el_state = COMPLETED if facts.readable else facts.state
        if facts.readable:
            gone = deletes_not_applied(desired, facts, after, target)
            if gone:
                deletes[name] = gone
                el_state = worst(el_state, NOT_APPLIED)
        el_state = _fold_resources(name, here, first, resources, el_state)
        for res, on in parked.items():
            if res in here:
                resources[res].parked[name] = on
        # Pending updates and errors of records the config no longer has
        # (deletes, or updates of a resource since removed) still count.
        for ref3 in (*pending, *errors):
            if ref3[0] == name and ref3[2] not in desired.get(ref3[1], {}):
                el_state = worst(el_state, DISTRIBUTION_ERROR if ref3 in errors else PENDING)
        el_states[name] = el_state
    derived = Derived(resources, el_states, dict(elements), deletes, drift)
    derived.read_only, derived.away = target.read_only, away
    return derived


def _field_changes(want: Fields, got: Fields) -> dict[str, dict[str, Any]]:
    """`plan.compute.field_changes`, loaded at the first record not equal as
    stored: a status in sync compares none, and the plan computation loads the
    ordering, safety and rename checks."""
    from provgit.plan.compute import field_changes

    return field_changes(want, got)


def _classify(
    name: str,
    facts: ElementFacts,
    desired: Mapping[str, Mapping[str, Fields]],
    origin: Mapping[Ref, tuple[str, str]],
    after: Mapping[Ref, Write],
    journal: JournalFacts,
) -> tuple[_Here, _First, list[_Differing]]:
    """The state of each desired record on one element that the journal, the
    last plan or a plain compare settles; the records that differ from the
    element come back to be weighed against provgit's own writes.
    (One pass over every record: kept inline, it is the hot loop of status.)"""
    pending, errors = journal.pending, journal.errors
    readable = facts.readable
    planned = facts.ops
    # The watcher's observations hold record objects; the cache file, tuples.
    objects = facts.objects
    down = COMPLETED if readable else facts.state
    here: _Here = {}
    first: _First = {}
    differing: list[_Differing] = []
    for coll, recs in desired.items():
        have = facts.records.get(coll, {}) if readable else {}
        default_kind = COLLECTION_KIND.get(coll, coll)
        for key, want in recs.items():
            res = origin.get((coll, key)) or (default_kind, key)
            ref3 = (name, coll, key)
            # A queued or refused write is the record's state unless the
            # element, read since, holds the desired record: the queue may
            # be of a value the config has since dropped.
            queued = DISTRIBUTION_ERROR if ref3 in errors else PENDING if ref3 in pending else None
            if not readable:
                s = queued or down
            else:
                w = after.get((coll, key))
                if w is not None:
                    # A write that lands clears its record's queue; one queued
                    # after it is the element's own word against its answer
                    # (a write it acknowledged but did not keep).
                    s = queued or (COMPLETED if _matches(w, want) else NOT_APPLIED)
                elif planned is not None:
                    op = planned.get((coll, key))
                    if op is None:
                        s = COMPLETED
                    else:
                        seen: tuple[Fields, int] | None = (
                            None if op[0] == "add" else ({}, -1 if op[1] is None else op[1])
                        )
                        differing.append(((coll, key), res, want, seen))
                        continue
                else:
                    got = have.get(key)
                    if got is None:
                        differing.append(((coll, key), res, want, None))
                        continue
                    f = got.fields if objects else got[0]
                    if f == want or not _field_changes(want, f):
                        s = COMPLETED
                    else:
                        rev = got.revision if objects else got[1]
                        differing.append(((coll, key), res, want, (f, rev)))
                        continue
            prev = here.get(res)
            if prev is None:
                here[res] = s
                first[res] = (coll, key)
            elif s != prev:
                here[res] = worst(prev, s)
    return here, first, differing


def _settle_differing(
    name: str,
    differing: list[_Differing],
    journal: JournalFacts,
    here: _Here,
    first: _First,
    drift: dict[str, list[Ref]],
) -> None:
    """Records that differ on the element: queued, refused, drifted from
    provgit's last write of them, or not applied yet."""
    errors, pending = journal.errors, journal.pending
    known = journal.last_writes(name, (r for r, _, _, _ in differing))
    for ref, res, _want, got in differing:
        w = known.get(ref)
        s = NOT_APPLIED
        ref3 = (name, *ref)
        if ref3 in errors or ref3 in pending:
            s = DISTRIBUTION_ERROR if ref3 in errors else PENDING
        elif ref3 in journal.proposed:
            # Held as the element holds it while a branch proposes it for the config.
            s = DRIFT_PROPOSED
        elif ref3 in journal.rejected:
            pass  # not yet applied: the config wins over a closed proposal
        # provgit wrote this record; what is there now is not that write.
        elif w is not None and w[0] != "delete" and (got is None or got[1] != w[2]):
            s = DRIFT
            drift.setdefault(name, []).append(ref)
        prev = here.get(res)
        if prev is None:
            here[res] = s
            first[res] = ref
        else:
            here[res] = worst(prev, s)


def _fold_resources(
    name: str,
    here: _Here,
    first: _First,
    resources: dict[tuple[str, str], ResourceState],
    el_state: str,
) -> str:
    """Add one element's resource states to the resources; the element's worst state."""
    for res, s in here.items():
        el_state = worst(el_state, s)
        r = resources.get(res)
        if r is None:
            r = resources[res] = ResourceState(res[0], res[1], COMPLETED, 0, 0, {}, {})
        r.elements[name] = s
        r.records[name] = first[res]
        r.total += 1
        if s == COMPLETED:
            r.completed += 1
        elif s != r.state:
            r.state = worst(r.state, s)
    return el_state


# Past this many records to look at, reading the whole target is as quick.
FAST_LIMIT = 20_000


def plan_ops(operations: Iterable[Any]) -> dict[Ref, tuple[str, int | None]]:
    """A plan's operations as the derivation reads them."""
    return {(op.collection, op.key): (op.action, op.if_revision) for op in operations}


def derive_fast(
    store: TargetView, elements: Mapping[str, ElementFacts], journal: JournalFacts
) -> Derived | None:
    """`derive` reading from the stored target only the records something is
    known about: the last plan's operations, pending updates, distribution
    errors, provgit's writes since, and the resources of elements that are
    down. Every other record was as desired when the element was last read.
    Needs the last plan's memo for every readable element (None otherwise, or
    when there is too much to look at)."""
    if any(f.readable and f.ops is None for f in elements.values()):
        return None
    count = store.resource_count()
    if count is None:
        return None
    mine: dict[str, set[Ref]] = {n: set() for n in elements}
    for e, c, k in (*journal.pending, *journal.errors):
        if e in mine:
            mine[e].add((c, k))
    records: dict[str, dict[str, dict[str, Fields]]] = {}
    origin: dict[str, dict[Ref, tuple[str, str]]] = {}
    excluded: set[tuple[str, str]] = set()
    read_only = store.partial(next(iter(elements)), ()).read_only if elements else frozenset()
    looked = 0
    for name, f in elements.items():
        if f.readable:
            assert f.ops is not None
            refs = mine[name] | set(f.ops) | set(journal.writes_after.get(name, ()))
            looked += len(refs)
            if looked > FAST_LIMIT:
                return None
            part = store.partial(name, refs)
            records[name] = part.records.get(name, {})
            origin[name] = part.origin.get(name, {})
            excluded = part.excluded
        else:
            recs: dict[str, dict[str, Fields]] = {}
            org: dict[Ref, tuple[str, str]] = {}
            for kind, resource, coll, key in store.landing_on(name):
                recs.setdefault(coll, {})[key] = {}
                org[(coll, key)] = (kind, resource)
            records[name], origin[name] = recs, org
    derived = derive(
        Target(records, {}, origin, excluded=excluded, read_only=read_only), elements, journal
    )
    _place_away(derived, store)
    totals = store.totals_of(derived.resources)
    for res, r in derived.resources.items():
        r.total = totals.get(res, r.total)
        r.completed = r.total - sum(1 for s in r.elements.values() if s != COMPLETED)
    derived.completed_extra = count - len(totals)
    derived.store = store
    return derived


def _place_away(derived: Derived, store: TargetView) -> None:
    """The resources of records held away (`leftovers.Away`), on the elements
    they land on: not synced there while the element holds those records."""
    if not derived.away:
        return
    lands = store.landing_of({a.resource for a in derived.away})
    for a in derived.away:
        ref = lands.get(a.resource, {}).get(a.element)
        if ref is None:
            continue  # the resource no longer lands there (or is gone)
        r = derived.resources.get(a.resource)
        if r is None:
            r = derived.resources[a.resource] = ResourceState(*a.resource, COMPLETED, 0, 0, {}, {})
        r.elements[a.element] = worst(r.elements.get(a.element, COMPLETED), a.state)
        r.records.setdefault(a.element, ref)
        r.state = worst(r.state, a.state)
        if a.parked is not None:
            r.parked[a.element] = a.parked


def resource_text(r: ResourceState, element_types: Mapping[str, str]) -> str:
    """The seeds' words for a resource: Sync Completed; Syncing (IVRs) X/Y
    Completed while provgit's own work is under way (pending, not yet applied);
    the IVR service message when an IVR server it lands on is down; else Sync
    Incomplete."""
    if r.state == COMPLETED:
        return st.SYNC_COMPLETED
    if r.state in (PENDING, NOT_APPLIED):
        return st.syncing(r.kind, r.completed, r.total)
    if r.state in (OFFLINE, STOPPED) and r.kind in st.IVR_KINDS:
        return IVR_DOWN
    if r.state == DRIFT_PROPOSED:
        return DRIFT_PROPOSED_TEXT
    return st.SYNC_INCOMPLETE


def describe(d: Derived) -> dict[str, Any]:
    """Counts by state, for the document and the benchmark."""
    by: dict[str, int] = {}
    for r in d.resources.values():
        by[r.state] = by.get(r.state, 0) + 1
    return by
