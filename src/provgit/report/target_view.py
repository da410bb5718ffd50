"""The target as status reads it: the stored one (`incremental.store.TargetStore`)
or one in memory (`MemoryView`, the watcher's, kept up to date run by run)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from provgit.projection.project import COLLECTION_KIND, Target
from provgit.records import Fields
from provgit.report.states import Ref


class TargetView(Protocol):
    """What `derive_fast` and the document read of a target: the stored one
    (`target.store.TargetStore`) or one in memory (`MemoryView`)."""

    def totals(self) -> Mapping[tuple[str, str], int] | None: ...

    def resource_count(self) -> int | None: ...

    def totals_of(self, resources: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]: ...

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
        # (kind, resource) -> element -> its record there, or its records
        # when more than one: a set per (resource, element) took ~65 MB at
        # 100,000 users where nearly every resource has one record per element (#16).
        self._landing: dict[tuple[str, str], dict[str, Ref | set[Ref]]] = {}
        # element -> record -> (kind, resource); None for the resource its
        # collection and key name (most: a tuple each was ~17 MB at 100,000 users)
        self._res_of: dict[str, dict[Ref, tuple[str, str] | None]] = {}
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
            coll, key = ref
            was = res_of.pop(ref, _ABSENT)
            if was is not _ABSENT:
                old = was or (COLLECTION_KIND.get(coll, coll), key)
                here = landing[old]
                mine = here[element]
                if isinstance(mine, set):
                    mine.discard(ref)
                if not isinstance(mine, set) or not mine:
                    del here[element]
                    if not here:
                        del landing[old]
                        self._sorted = None
            if key in recs.get(coll, {}):
                given = res_of[ref] = origin.get(ref)
                res = given or (COLLECTION_KIND.get(coll, coll), key)
                found = landing.get(res)
                if found is None:
                    landing[res] = {element: ref}
                    self._sorted = None
                elif element not in found:
                    found[element] = ref
                else:
                    mine = found[element]
                    if isinstance(mine, set):
                        mine.add(ref)
                    else:
                        found[element] = {mine, ref}

    def update(self, delta: Mapping[str, Iterable[Ref]]) -> None:
        """The records `delta` names changed in the target (in place)."""
        for element, refs in delta.items():
            self._place(element, refs)

    def totals(self) -> Mapping[tuple[str, str], int]:
        return _Totals(self._landing)

    def resource_count(self) -> int:
        return len(self._landing)

    def totals_of(self, resources: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
        lands = self._landing
        return {res: len(lands[res]) for res in resources if res in lands}

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
        return Target(
            {element: records},
            {},
            {element: org},
            excluded=self.target.excluded,
            read_only=self.target.read_only,
        )

    def landing_on(self, element: str) -> list[tuple[str, str, str, str]]:
        return [
            (k, r, *_first(els[element])) for (k, r), els in self._landing.items() if element in els
        ]

    def landing_of(
        self, resources: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], dict[str, Ref]]:
        return {
            res: {el: _first(refs) for el, refs in self._landing[res].items()}
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


_ABSENT: Any = object()


def _first(refs: Ref | set[Ref]) -> Ref:
    """The least of a resource's records on an element (its only one, mostly)."""
    return min(refs) if isinstance(refs, set) else refs


class _Totals(Mapping[tuple[str, str], int]):
    """(kind, resource) -> elements it lands on, read through the view (no copy)."""

    def __init__(self, landing: Mapping[tuple[str, str], Mapping[str, object]]) -> None:
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
