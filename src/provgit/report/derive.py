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

import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from provgit.apply import status as st
from provgit.journal import (
    DistributionError,
    JournalReader,
    PendingUpdate,
    fields_hash,
    read_journal,
)
from provgit.observe import Observation, ObservationCache
from provgit.plan.compute import field_changes
from provgit.projection.project import COLLECTION_KIND, Target
from provgit.records import MANAGED_BY, MANAGED_BY_VALUE, Fields

# Machine names of the states, worst first (a resource or element takes the
# worst state of its records; the page header takes the worst of all).
TOKEN_REFUSED = "token_refused"
DRIFT = "drift"
OFFLINE = "offline"
STOPPED = "stopped"
UNREADABLE = "error"
DISTRIBUTION_ERROR = "distribution_error"
PENDING = "pending"
NOT_APPLIED = "not_applied"
UNKNOWN = "unknown"
COMPLETED = "completed"
SEVERITY = (
    TOKEN_REFUSED,
    DRIFT,
    OFFLINE,
    STOPPED,
    UNREADABLE,
    DISTRIBUTION_ERROR,
    PENDING,
    NOT_APPLIED,
    UNKNOWN,
    COMPLETED,
)
_RANK = {s: i for i, s in enumerate(SEVERITY)}
DOWN_STATES = frozenset({OFFLINE, STOPPED, UNREADABLE, TOKEN_REFUSED, UNKNOWN})

# The IVR seed's words for an IVR server that cannot serve ("All" devices).
IVR_DOWN = "IVR services are stopped or the server is offline"
TOKEN_REFUSED_TEXT = "Token refused"
UNKNOWN_TEXT = "Unknown (never observed)"
DRIFT_TEXT = "Drift"
NOT_APPLIED_TEXT = "Not yet applied"
PENDING_TEXT = "Pending update"
LABELS = {
    TOKEN_REFUSED: TOKEN_REFUSED_TEXT,
    DRIFT: DRIFT_TEXT,
    OFFLINE: st.OFFLINE,
    STOPPED: st.STOPPED,
    UNREADABLE: "Element error",
    DISTRIBUTION_ERROR: "Distribution error",
    PENDING: PENDING_TEXT,
    NOT_APPLIED: NOT_APPLIED_TEXT,
    UNKNOWN: UNKNOWN_TEXT,
    COMPLETED: st.SYNC_COMPLETED,
}

Ref = tuple[str, str]  # (collection, key)
Write = tuple[str, str | None, int]  # (action, fields hash, revision)


def worst(a: str, b: str) -> str:
    return a if _RANK[a] <= _RANK[b] else b


def label(state: str, element_type: str | None = None) -> str:
    """The words of a state; an IVR server that cannot serve says what the seed says."""
    if element_type == "ivr" and state in (OFFLINE, STOPPED):
        return IVR_DOWN
    return LABELS[state]


@dataclass
class ElementFacts:
    """What is known of one element without contacting it."""

    name: str
    type: str
    # running / locked (records readable), or offline / stopped / token_refused /
    # error / unknown (never observed)
    state: str
    revision: int | None = None
    records: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)
    detail: str | None = None
    # Instead of `records`: the operations the last plan found for this element
    # (a newer reading than the cache), (collection, key) -> (action, record
    # revision); every other record of the target was as desired.
    ops: dict[Ref, tuple[str, int | None]] | None = field(default=None, repr=False)
    objects: bool = False  # `records` holds StoredRecord objects, not (fields, revision)

    @property
    def readable(self) -> bool:
        return self.state in ("running", "locked")


@dataclass
class JournalFacts:
    pending: dict[tuple[str, str, str], PendingUpdate]
    errors: dict[tuple[str, str, str], DistributionError]
    # element -> (state, detail, time) as the last run left it
    element_rows: dict[str, tuple[str, str | None, float]]
    # element -> (collection, key) -> provgit's last acknowledged write newer
    # than the element's observation
    writes_after: dict[str, dict[Ref, Write]]
    path: Path | None = None

    def last_writes(self, element: str, refs: Iterable[Ref]) -> dict[Ref, Write]:
        """provgit's last acknowledged write of each of these records (any age)."""
        wanted = list(dict.fromkeys(refs))
        if not wanted or self.path is None:
            return {}
        return _query_last_writes(self.path, element, wanted)


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

    @property
    def observed_all(self) -> bool:
        return all(f.readable for f in self.element_facts.values())

    @property
    def in_sync(self) -> bool:
        return (
            self.observed_all
            and all(s == COMPLETED for s in self.elements.values())
            and all(r.state == COMPLETED for r in self.resources.values())
            and not any(self.deletes_not_applied.values())
        )

    def worst(self) -> str:
        out = COMPLETED
        for s in self.elements.values():
            out = worst(out, s)
        return out


# ---- inputs -------------------------------------------------------------------


def _query_last_writes(path: Path, element: str, refs: list[Ref]) -> dict[Ref, Write]:
    return read_journal(path, lambda journal: journal.acknowledged_writes(element, refs), {})


def element_rows(journal_path: Path) -> dict[str, tuple[str, str | None, float]]:
    """Each element's state as the last run left it: (state, detail, time)."""
    return read_journal(journal_path, JournalReader.element_states, {})


def journal_facts(journal_path: Path, observed_revisions: Mapping[str, int | None]) -> JournalFacts:
    """Everything the derivation needs from the journal, through a read-only
    reader (a report runs beside writers); what could be read before an error."""
    facts = JournalFacts({}, {}, {}, {}, journal_path)

    def read(journal: JournalReader) -> None:
        for p in journal.pending():
            facts.pending[(p.element, p.collection, p.key)] = p
        for de in journal.distribution_errors():
            facts.errors[(de.element, de.collection, de.key)] = de
        facts.element_rows.update(journal.element_states())
        for name, revision in observed_revisions.items():
            if revision is None:
                continue
            # provgit's acknowledged writes the observation does not show yet.
            after = journal.acknowledged_writes_after(name, revision)
            if after:
                facts.writes_after[name] = after

    read_journal(journal_path, read, None)
    return facts


_DOWN_ROW = {
    "offline": OFFLINE,
    "stopped": STOPPED,
    "unauthorized": TOKEN_REFUSED,
    "error": UNREADABLE,
}
_OBS_DOWN = {
    "offline": OFFLINE,
    "unauthorized": TOKEN_REFUSED,
    "error": UNREADABLE,
}


def element_facts(
    element_types: Mapping[str, str],
    state_dir: Path,
    journal_rows: Mapping[str, tuple[str, str | None, float]],
    observations: Mapping[str, Observation] | None = None,
    memo_digest: str | None = None,
    plans: Mapping[str, tuple[int, dict[Ref, tuple[str, int | None]]]] | None = None,
) -> dict[str, ElementFacts]:
    """Each element's last observation (in memory when given, else the cache
    file or, when newer, the last plan's memo of it) and whether the last run
    found it down.

    The newer wins: a run that found the element offline after it was last
    read makes it offline; a later successful read makes it readable.
    `memo_digest`: the digest of the target being derived from; a memo
    entry planned against another target is not used.
    """
    cache = ObservationCache(state_dir)
    out: dict[str, ElementFacts] = {}
    for name, etype in element_types.items():
        row = journal_rows.get(name)
        obs = (observations or {}).get(name)
        if obs is not None:
            # The watcher keeps only good readings in memory: a run that found
            # the element down since is the newer word.
            if row is not None and row[0] in _DOWN_ROW:
                out[name] = ElementFacts(name, etype, _DOWN_ROW[row[0]], detail=row[1])
            elif obs.ok:
                plan = (plans or {}).get(name)
                if plan is not None and obs.revision is not None and plan[0] >= obs.revision:
                    # The watcher's plan of this reading: its operations are what differs.
                    out[name] = ElementFacts(name, etype, obs.state, plan[0], ops=plan[1])
                else:
                    out[name] = ElementFacts(
                        name, etype, obs.state, obs.revision, obs.records, objects=True
                    )
            else:
                down = _OBS_DOWN.get(obs.state, UNREADABLE)
                if row is not None and row[0] == "stopped":
                    down = STOPPED
                out[name] = ElementFacts(name, etype, down, detail=obs.error)
            continue
        planned = _load_memo(state_dir, name, memo_digest) if memo_digest else None
        # The plan memo is written after the observation it was planned from,
        # so a cache file newer than it holds a later reading (the watcher's).
        loaded = None
        if planned is None or _mtime(cache._path(name)) > planned[2]:
            loaded = _load_cached(cache, name)
            if planned is not None and loaded is not None and planned[0] < loaded[0]:
                planned = None
        mtime = max([t for t in (loaded and loaded[2], planned and planned[2]) if t] or [0.0])
        # A plan (or run) that could not read the element since: its failure
        # is the newer word, unless a run found it down later still.
        failed = cache.down(name)
        if (
            failed is not None
            and failed[2] >= mtime
            and not (row is not None and row[0] in _DOWN_ROW and row[2] >= failed[2])
        ):
            down = _OBS_DOWN.get(failed[0], UNREADABLE)
            out[name] = ElementFacts(name, etype, down, detail=failed[1])
        elif row is not None and row[0] in _DOWN_ROW and (not mtime or row[2] >= mtime):
            out[name] = ElementFacts(name, etype, _DOWN_ROW[row[0]], detail=row[1])
        elif planned is not None:
            out[name] = ElementFacts(name, etype, "running", planned[0], ops=planned[1])
        elif loaded is not None:
            revision, records, _ = loaded
            out[name] = ElementFacts(name, etype, "running", revision, records)
        else:
            out[name] = ElementFacts(name, etype, UNKNOWN, detail="never observed")
    return out


def _mtime(path: Path) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _load_cached(
    cache: ObservationCache, element: str
) -> tuple[int, dict[str, dict[str, tuple[Fields, int]]], float] | None:
    """The cache file as plain tuples (no record objects: 300,000 of them cost
    more than the whole derivation)."""
    import marshal

    path = cache._path(element)
    try:
        mtime = os.stat(path).st_mtime
        doc = marshal.loads(path.read_bytes())
        if doc["format"] != ObservationCache.FORMAT or doc["element"] != element:
            return None
        return int(doc["revision"]), doc["records"], mtime
    except (OSError, EOFError, ValueError, TypeError, KeyError):
        return None


def _load_memo(
    state_dir: Path, element: str, digest: str
) -> tuple[int, dict[Ref, tuple[str, int | None]], float] | None:
    """The last plan of an element (plan.memo), read raw: its revision and operations."""
    import marshal

    from provgit.plan import memo

    path = memo.PlanMemo(state_dir).dir / "elements" / f"{memo._safe(element)}.marshal"
    try:
        mtime = os.stat(path).st_mtime
        doc = marshal.loads(path.read_bytes())
        if doc["format"] != memo.FORMAT or doc["element"] != element or doc["digest"] != digest:
            return None
        ops = {
            (o["collection"], o["key"]): (o["action"], o["if_revision"]) for o in doc["operations"]
        }
        return int(doc["revision"]), ops, mtime
    except (OSError, EOFError, ValueError, TypeError, KeyError):
        return None


# ---- the derivation -------------------------------------------------------------


def _matches(write: Write, desired: Fields) -> bool:
    action, digest, _ = write
    if action == "delete" or digest is None:
        return False
    return digest == fields_hash(action, desired)


def derive(
    target: Target,
    elements: Mapping[str, ElementFacts],
    journal: JournalFacts,
) -> Derived:
    """The status of every (resource, element) pair `target` produces."""
    resources: dict[tuple[str, str], ResourceState] = {}
    el_states: dict[str, str] = {}
    drift: dict[str, list[Ref]] = {}
    deletes: dict[str, list[Ref]] = {}
    pending, errors = journal.pending, journal.errors
    for name, facts in elements.items():
        desired = target.records.get(name, {})
        origin = target.origin.get(name, {})
        after = journal.writes_after.get(name, {})
        readable = facts.readable
        planned = facts.ops
        # The watcher's observations hold record objects; the cache file, tuples.
        objects = facts.objects
        down = COMPLETED if readable else facts.state
        el_state = down
        # per resource on this element: worst state and its first record
        here: dict[tuple[str, str], str] = {}
        first: dict[tuple[str, str], Ref] = {}
        differing: list[tuple[Ref, tuple[str, str], Fields, tuple[Fields, int] | None]] = []
        for coll, recs in desired.items():
            have = facts.records.get(coll, {}) if readable else {}
            default_kind = COLLECTION_KIND.get(coll, coll)
            for key, want in recs.items():
                res = origin.get((coll, key)) or (default_kind, key)
                ref3 = (name, coll, key)
                # A queued or refused write is the record's state unless the
                # element, read since, holds the desired record: the queue may
                # be of a value the config has since dropped.
                queued = (
                    DISTRIBUTION_ERROR if ref3 in errors else PENDING if ref3 in pending else None
                )
                if not readable:
                    s = queued or down
                else:
                    w = after.get((coll, key))
                    if w is not None:
                        s = COMPLETED if _matches(w, want) else queued or NOT_APPLIED
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
                        if f == want or not field_changes(want, f):
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
        if differing:
            known = journal.last_writes(name, (r for r, _, _, _ in differing))
            for ref, res, _want, got in differing:
                w = known.get(ref)
                s = NOT_APPLIED
                ref3 = (name, *ref)
                if ref3 in errors or ref3 in pending:
                    s = DISTRIBUTION_ERROR if ref3 in errors else PENDING
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
        if readable:
            gone = _deletes_not_applied(desired, facts, after, target)
            if gone:
                deletes[name] = gone
                el_state = worst(el_state, NOT_APPLIED)
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
        # Pending updates and errors of records the config no longer has
        # (deletes, or updates of a resource since removed) still count.
        for ref3 in (*pending, *errors):
            if ref3[0] == name and ref3[2] not in desired.get(ref3[1], {}):
                el_state = worst(el_state, DISTRIBUTION_ERROR if ref3 in errors else PENDING)
        el_states[name] = el_state
    return Derived(resources, el_states, dict(elements), deletes, drift)


# Past this many records to look at, reading the whole target is as quick.
FAST_LIMIT = 20_000


class TargetView(Protocol):
    """What `derive_fast` and the document read of a target: the stored one
    (`target.store.TargetStore`) or one in memory (`MemoryView`)."""

    def totals(self) -> Mapping[tuple[str, str], int] | None: ...

    def partial(self, element: str, refs: Iterable[Ref]) -> Target: ...

    def landing_on(self, element: str) -> list[tuple[str, str, str, str]]: ...

    def landing_of(
        self, resources: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], dict[str, Ref]]: ...

    def first_resources(
        self, limit: int, skip: set[tuple[str, str]]
    ) -> list[tuple[str, str, int]]: ...


class MemoryView:
    """A target in memory seen as `TargetView`: which records of each resource
    sit on each element, from one pass over the target, then kept up to date
    from the records each reprojection moved (the watcher's delta)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        # (kind, resource) -> element -> its records there
        self._landing: dict[tuple[str, str], dict[str, set[Ref]]] = {}
        # element -> record -> (kind, resource)
        self._res_of: dict[str, dict[Ref, tuple[str, str]]] = {}
        # every resource in order, until one comes or goes
        self._sorted: list[tuple[str, str]] | None = None
        for element in target.records:
            self._res_of[element] = {}
            self._place(element, self._refs(element))

    def _refs(self, element: str) -> list[Ref]:
        return [(c, k) for c, recs in self.target.records.get(element, {}).items() for k in recs]

    def _place(self, element: str, refs: Iterable[Ref]) -> None:
        recs = self.target.records.get(element, {})
        origin = self.target.origin.get(element, {})
        res_of = self._res_of.setdefault(element, {})
        landing = self._landing
        for ref in refs:
            old = res_of.pop(ref, None)
            if old is not None:
                here = landing[old]
                mine = here[element]
                mine.discard(ref)
                if not mine:
                    del here[element]
                    if not here:
                        del landing[old]
                        self._sorted = None
            coll, key = ref
            if key in recs.get(coll, {}):
                res = origin.get(ref) or (COLLECTION_KIND.get(coll, coll), key)
                res_of[ref] = res
                found = landing.get(res)
                if found is None:
                    landing[res] = {element: {ref}}
                    self._sorted = None
                elif element in found:
                    found[element].add(ref)
                else:
                    found[element] = {ref}

    def update(self, delta: Mapping[str, Iterable[Ref]]) -> None:
        """The records `delta` names changed in the target (in place)."""
        for element, refs in delta.items():
            self._place(element, refs)

    def totals(self) -> Mapping[tuple[str, str], int]:
        return _Totals(self._landing)

    def partial(self, element: str, refs: Iterable[Ref]) -> Target:
        have = self.target.records.get(element, {})
        origin = self.target.origin.get(element, {})
        records: dict[str, dict[str, Fields]] = {}
        org: dict[Ref, tuple[str, str]] = {}
        for coll, key in refs:
            fields = have.get(coll, {}).get(key)
            if fields is None:
                continue
            records.setdefault(coll, {})[key] = fields
            if (coll, key) in origin:
                org[(coll, key)] = origin[(coll, key)]
        return Target({element: records}, {}, {element: org}, excluded=self.target.excluded)

    def landing_on(self, element: str) -> list[tuple[str, str, str, str]]:
        return [
            (k, r, *min(els[element])) for (k, r), els in self._landing.items() if element in els
        ]

    def landing_of(
        self, resources: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], dict[str, Ref]]:
        return {
            res: {el: min(refs) for el, refs in self._landing[res].items()}
            for res in resources
            if res in self._landing
        }

    def first_resources(self, limit: int, skip: set[tuple[str, str]]) -> list[tuple[str, str, int]]:
        lands = self._landing
        if self._sorted is None:
            self._sorted = sorted(lands)
        out: list[tuple[str, str, int]] = []
        for k, r in self._sorted:
            if (k, r) not in skip:
                out.append((k, r, len(lands[(k, r)])))
                if len(out) >= limit:
                    break
        return out


class _Totals(Mapping[tuple[str, str], int]):
    """(kind, resource) -> elements it lands on, read through the view (no copy)."""

    def __init__(self, landing: Mapping[tuple[str, str], Mapping[str, set[Ref]]]) -> None:
        self._landing = landing

    def __getitem__(self, res: tuple[str, str]) -> int:
        return len(self._landing[res])

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._landing)

    def __len__(self) -> int:
        return len(self._landing)


# One view, of the watcher's target: built once, then updated run by run.
VIEW_LOCK = threading.Lock()
_VIEW: tuple[int, object, MemoryView] | None = None


def memory_view(
    target: Target,
    version: object,
    delta: tuple[object, object, Mapping[str, Iterable[Ref]]] | None = None,
) -> MemoryView:
    """The view of `target` at `version` (the watcher's projection serial).
    `delta` (from version, to version, records moved) brings a view of the
    same target object at the from version up to date. Hold VIEW_LOCK."""
    global _VIEW
    if _VIEW is not None and _VIEW[0] == id(target) and _VIEW[2].target is target:
        if _VIEW[1] == version:
            return _VIEW[2]
        if delta is not None and delta[0] == _VIEW[1] and delta[1] == version:
            _VIEW[2].update(delta[2])
            _VIEW = (id(target), version, _VIEW[2])
            return _VIEW[2]
    view = MemoryView(target)
    _VIEW = (id(target), version, view)
    return view


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
    totals = store.totals()
    if totals is None:
        return None
    mine: dict[str, set[Ref]] = {n: set() for n in elements}
    for e, c, k in (*journal.pending, *journal.errors):
        if e in mine:
            mine[e].add((c, k))
    records: dict[str, dict[str, dict[str, Fields]]] = {}
    origin: dict[str, dict[Ref, tuple[str, str]]] = {}
    excluded: set[tuple[str, str]] = set()
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
    derived = derive(Target(records, {}, origin, excluded=excluded), elements, journal)
    for res, r in derived.resources.items():
        r.total = totals.get(res, r.total)
        r.completed = r.total - sum(1 for s in r.elements.values() if s != COMPLETED)
    derived.completed_extra = len(totals) - sum(1 for res in derived.resources if res in totals)
    derived.store = store
    return derived


def _deletes_not_applied(
    desired: Mapping[str, Mapping[str, Fields]],
    facts: ElementFacts,
    after: Mapping[Ref, Write],
    target: Target,
) -> list[Ref]:
    """Records provgit created that the config no longer has and that are still there."""
    from provgit.plan.compute import deleted_resource

    out: list[Ref] = []
    if facts.ops is not None:
        # The plan deletes only what provgit created (or --prune says).
        out = [
            ref
            for ref, (action, _) in facts.ops.items()
            if action == "delete"
            and ref[1] not in desired.get(ref[0], {})
            and not ((w := after.get(ref)) is not None and w[0] == "delete")
        ]
        out += [
            ref
            for ref, (action, _, _) in after.items()
            if action != "delete" and ref[1] not in desired.get(ref[0], {})
        ]
        return out
    for coll, have in facts.records.items():
        want = desired.get(coll, {})
        for key in have.keys() - want.keys():
            rec = have[key]
            fields = rec.fields if facts.objects else rec[0]
            if fields.get(MANAGED_BY) != MANAGED_BY_VALUE:
                continue
            w = after.get((coll, key))
            if w is not None and w[0] == "delete":
                continue
            if deleted_resource(coll, key, fields) in target.excluded:
                continue
            out.append((coll, key))
    # Put there by provgit since the observation.
    for ref, (action, _, _) in after.items():
        if (
            action != "delete"
            and ref[1] not in desired.get(ref[0], {})
            and ref[1] not in facts.records.get(ref[0], {})
        ):
            out.append(ref)
    return out


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
    return st.SYNC_INCOMPLETE


def element_text(name: str, state: str, element_type: str | None) -> str:
    if state == COMPLETED:
        return st.SYNC_COMPLETED
    if state in (DISTRIBUTION_ERROR, DRIFT, PENDING):
        return st.failed(name)
    return label(state, element_type)


def status_class_of(state: str) -> str:
    if state == COMPLETED:
        return "ok"
    if state in (OFFLINE, STOPPED, UNKNOWN):
        return "down"
    if state in (PENDING, NOT_APPLIED):
        return "syncing"
    return "failed"


def describe(d: Derived) -> dict[str, Any]:
    """Counts by state, for the document and the benchmark."""
    by: dict[str, int] = {}
    for r in d.resources.values():
        by[r.state] = by.get(r.state, 0) + 1
    return by
