"""The target store's landing tables: where each resource lands (its first
record on each element, in the projection's order) and on how many elements.
What a status with nothing to report reads instead of every record."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from provgit.projection.project import COLLECTION_KIND, RecordRef, Target

# Made once the rows are in: one sort instead of an index kept up per row.
_INDEXES = "CREATE INDEX landing_element ON landing (element);"


def _first_records(target: Target, element: str) -> dict[tuple[str, str], RecordRef]:
    """Each resource's first record on `element`, in the projection's order."""
    first: dict[tuple[str, str], RecordRef] = {}
    origin = target.origin.get(element, {})
    for coll, recs in target.records[element].items():
        kind_of = COLLECTION_KIND.get(coll, coll)
        for key in recs:
            ref = (coll, key)
            res = origin.get(ref) or (kind_of, key)
            if res not in first:
                first[res] = ref
    return first


def _landing_of(
    target: Target,
) -> tuple[list[tuple[str, str, str, str, str]], dict[tuple[str, str], int]]:
    rows: list[tuple[str, str, str, str, str]] = []
    totals: dict[tuple[str, str], int] = {}
    for element in target.records:
        for (kind, resource), (coll, key) in _first_records(target, element).items():
            rows.append((kind, resource, element, coll, key))
            totals[(kind, resource)] = totals.get((kind, resource), 0) + 1
    return rows, totals


def _landing_from(
    records: Mapping[tuple[str, str], list[tuple[str, str, str]]],
) -> tuple[list[tuple[str, str, str, str, str]], list[tuple[str, str, int]]]:
    """`_landing_of` from each resource's records in the projection's order
    (`incremental.shared.records_of`: grouped by element, in its order), which
    the full plan has at hand: the first of each element's run is the row.
    Both lists come out in key order, made so rather than sorted: the
    resources by kind, then by name (strings, not tuples, compared), and
    each one's few elements (sorting 300,000 five-string tuples and 100,000
    pairs was a third of the table's time)."""
    by_kind: dict[str, list[str]] = {}
    for kind, resource in records:
        names = by_kind.get(kind)
        if names is None:
            names = by_kind[kind] = []
        names.append(resource)
    rows: list[tuple[str, str, str, str, str]] = []
    totals: list[tuple[str, str, int]] = []
    for kind in sorted(by_kind):
        for resource in sorted(by_kind[kind]):
            refs = records[(kind, resource)]
            first = [
                (element, coll, key)
                for i, (element, coll, key) in enumerate(refs)
                if i == 0 or refs[i - 1][0] != element
            ]
            if len(first) > 1:
                first.sort()
            rows += [(kind, resource, element, coll, key) for element, coll, key in first]
            totals.append((kind, resource, len(first)))
    return rows, totals


def insert_landing(
    db: sqlite3.Connection,
    target: Target,
    records: Mapping[tuple[str, str], list[tuple[str, str, str]]] | None,
) -> None:
    """Where each resource lands: its first record on each element (in the
    projection's order), written in key order."""
    if records is None:
        rows, counts = _landing_of(target)
        rows.sort()
        totals = [(k, r, n) for (k, r), n in sorted(counts.items())]
    else:
        rows, totals = _landing_from(records)
    db.executemany("INSERT INTO resources VALUES (?, ?, ?)", totals)
    db.executemany("INSERT INTO landing VALUES (?, ?, ?, ?, ?)", rows)
    db.execute(_INDEXES)
