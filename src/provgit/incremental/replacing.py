"""Some resources' records replaced in the stored target (`store.TargetStore.replace`):
`compare` (the rows to write, and per element the records whose desired state
moved) then `write` (those rows, in one transaction). Kept apart from the
store's reads; the shared-change path (`provgit.api.planning_shared`) runs the
whole replace in a forked child (`apart`) while it re-plans every record the
change reached.
"""

from __future__ import annotations

import marshal
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from provgit.projection.project import COLLECTION_KIND, RecordRef, Target

Row = tuple[bytes, bytes | None, bytes | None]  # fields, depends, origin
Added = tuple[str, str, str, bytes, bytes | None, bytes | None]
Rewritten = tuple[bytes, bytes | None, bytes | None, str, str, str]


@dataclass
class Replacement:
    """A compare's outcome: the rows `write` changes, and `moved`."""

    gone: list[tuple[str, str, str]] = field(default_factory=list)
    rewritten: list[Rewritten] = field(default_factory=list)
    added: list[Added] = field(default_factory=list)
    # Per element, the records whose desired state (fields, dependencies,
    # origin) changed, or that the resources no longer have.
    moved: dict[str, set[RecordRef]] = field(default_factory=dict)
    # Rows written whether or not the store holds them (`overwritten`).
    put: list[Added] = field(default_factory=list)


def compare(db: sqlite3.Connection, old: dict[str, set[RecordRef]], new: Target) -> Replacement:
    """`new` (a target holding exactly the replaced resources' records) against
    the stored rows of `old` (element -> the records they had)."""
    # The old records by one join, not one SELECT per record (32,026 for a
    # template at 100,000 users).
    db.execute(
        "CREATE TEMP TABLE old (element TEXT, collection TEXT, key TEXT, "
        "PRIMARY KEY (element, collection, key)) WITHOUT ROWID"
    )
    db.executemany(
        "INSERT OR IGNORE INTO old VALUES (?, ?, ?)",
        [(el, c, k) for el, refs in old.items() for c, k in refs],
    )
    before: dict[tuple[str, str, str], Row] = {
        (el, c, k): (f, d, o)
        for el, c, k, f, d, o in db.execute(
            "SELECT r.element, r.collection, r.key, r.fields, r.depends, r.origin "
            "FROM old JOIN records AS r USING (element, collection, key)"
        )
    }
    db.execute("DROP TABLE old")
    change = _compared(new, before)
    for element, coll, key in before:  # records the resources no longer have
        change.moved.setdefault(element, set()).add((coll, key))
    change.gone = list(before)
    return change


def overwritten(old: dict[str, set[RecordRef]], new: Target) -> Replacement:
    """`compare` without reading the stored rows, for a caller that needs no
    `moved` (it plans again every record the resources had or have): every
    record of `new` is put (one the store holds as it is, written again), every
    one of `old` that `new` lacks deleted. The rows the store ends with hold
    the values `compare` and `write` leave (a row `compare` would keep may be
    written in other bytes: marshal's depend on how the objects are shared).
    A template edit changes 32,026 of the 38,000 records it reaches: reading
    and decoding the old rows to spare ~6,000 writes cost more than the
    writes (replayed alone at 100,000 users, load 12: 1.12 -> 0.85 CPU s)."""
    dumps = marshal.dumps
    put: list[Added] = [
        (element, coll, key, dumps(fields), _dumps_or_none(dep), _dumps_or_none(org))
        for element, coll, key, fields, dep, org in _each(new)
    ]
    gone: list[tuple[str, str, str]] = []
    for element, refs in old.items():
        have = new.records.get(element, {})
        gone.extend((element, c, k) for c, k in refs if k not in have.get(c, {}))
    return Replacement(gone=gone, put=put)


def write(
    db: sqlite3.Connection,
    change: Replacement,
    digest: str,
    new: Target,
    resources: set[tuple[str, str]],
    relocate: bool,
) -> None:
    """`change`'s rows, where the resources land (`relocate`), and the new
    digest, in one transaction: committed whole or not at all."""
    # The pages a large replace reads and rewrites, held (64 MB; the 2 MB
    # default reads many of them from the file again).
    db.execute("PRAGMA cache_size = -65536")
    db.executemany(
        "DELETE FROM records WHERE element = ? AND collection = ? AND key = ?", change.gone
    )
    # In the table's key order: each B-tree page is found and changed once in
    # a row, not revisited across the 32,026 updates.
    rewritten = sorted(change.rewritten, key=lambda r: (r[3], r[4], r[5]))
    db.executemany(
        "UPDATE records SET fields = ?, depends = ?, origin = ? "
        "WHERE element = ? AND collection = ? AND key = ?",
        rewritten,
    )
    db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)", change.added)
    # In key order too (see above).
    put = sorted(change.put, key=lambda r: (r[0], r[1], r[2]))
    db.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?, ?)", put)
    if relocate:
        _relocate(db, new, resources)
    db.execute("UPDATE meta SET v = ? WHERE k = 'digest'", (marshal.dumps(digest),))
    db.commit()


def _relocate(db: sqlite3.Connection, new: Target, resources: set[tuple[str, str]]) -> None:
    """Where the replaced resources land now (`landing`, `resources`).
    Only the resources whose landing moved are written: a template edit
    changes 28,401 users' records but where none of them lands."""
    landing: dict[tuple[str, str], dict[str, RecordRef]] = {}
    for element, collections in new.records.items():
        origin = new.origin.get(element, {})
        for coll, recs in collections.items():
            kind_of = COLLECTION_KIND.get(coll, coll)
            for key in recs:
                res = origin.get((coll, key)) or (kind_of, key)
                landing.setdefault(res, {}).setdefault(element, (coll, key))
    db.execute(
        "CREATE TEMP TABLE gone (kind TEXT, resource TEXT, PRIMARY KEY (kind, resource)) "
        "WITHOUT ROWID"
    )
    db.executemany("INSERT OR IGNORE INTO gone VALUES (?, ?)", list(resources | landing.keys()))
    was: dict[tuple[str, str], dict[str, RecordRef]] = {}
    for k, r, el, c, key in db.execute(
        # CROSS: `gone` outside, each resource by its key (the planner
        # would scan all 300,000 landing rows by the element index).
        "SELECT l.kind, l.resource, l.element, l.collection, l.key "
        "FROM gone CROSS JOIN landing AS l USING (kind, resource)"
    ):
        was.setdefault((k, r), {})[el] = (c, key)
    db.execute("DROP TABLE gone")
    stale = [res for res in resources if was.get(res) != landing.get(res)]
    for table in ("landing", "resources"):
        db.executemany(f"DELETE FROM {table} WHERE kind = ? AND resource = ?", stale)
    # A resource outside `resources` (a record's origin elsewhere) gets its
    # rows on these elements replaced, its others kept.
    put = [r for r in landing if r not in resources or was.get(r) != landing[r]]
    db.executemany(
        "INSERT OR REPLACE INTO resources VALUES (?, ?, ?)",
        [(k, r, len(landing[(k, r)])) for k, r in put],
    )
    db.executemany(
        "INSERT OR REPLACE INTO landing VALUES (?, ?, ?, ?, ?)",
        [(k, r, el, c, key) for k, r in put for el, (c, key) in landing[(k, r)].items()],
    )


def _dumps_or_none(value: Any) -> bytes | None:
    return None if value is None else marshal.dumps(value)


def _compared(new: Target, before: dict[tuple[str, str, str], Row]) -> Replacement:
    """The rows to add and to rewrite, and per element the records whose
    desired state changed, of `new` against the stored rows `before` (those
    found are popped: what is left is no longer desired). Only the rows whose
    value changed are written: a row left as it was costs SQLite nothing (a
    template edit leaves ~15 % of them, most in other bytes: marshal's depend
    on how the objects are shared)."""
    dumps, loads = marshal.dumps, marshal.loads
    pop = before.pop
    added: list[Added] = []
    rewritten: list[Rewritten] = []
    moved: dict[str, set[RecordRef]] = {}
    for element, coll, key, fields, dep, org in _each(new):
        blob = dumps(fields)  # as `save` dumps them
        was = pop((element, coll, key), None)
        if was is None:
            added.append((element, coll, key, blob, _dumps_or_none(dep), _dumps_or_none(org)))
        else:
            # The fields first: a template edit changes those of 32,026
            # records, whose dependencies then need not be read.
            if (was[0] == blob or loads(was[0]) == fields) and _same_links(was, dep, org):
                continue
            rewritten.append((blob, _dumps_or_none(dep), _dumps_or_none(org), element, coll, key))
        found = moved.get(element)
        if found is None:
            found = moved[element] = set()
        found.add((coll, key))
    return Replacement(rewritten=rewritten, added=added, moved=moved)


def _each(new: Target) -> Iterator[tuple[str, str, str, Any, Any, Any]]:
    """Every record of `new`: element, collection, key, fields, its
    dependencies and its origin (None when it has none)."""
    for element, collections in new.records.items():
        depends = new.depends.get(element, {})
        origin = new.origin.get(element, {})
        for coll, recs in collections.items():
            for key, fields in recs.items():
                ref = (coll, key)
                yield element, coll, key, fields, depends.get(ref), origin.get(ref)


def _same_links(stored: Row, dep: Any, org: Any) -> bool:
    """Whether a stored row's dependencies and origin are these (a row
    written by an older version holds lists where this one dumps tuples)."""
    loads = marshal.loads
    _, was_dep, was_org = stored
    if was_dep is None or dep is None:
        if was_dep is not None or dep is not None:
            return False
    else:
        was = loads(was_dep)
        if was != dep and _listed(was) != _listed(dep):
            return False
    return (None if was_org is None else list(loads(was_org))) == (
        None if org is None else list(org)
    )


def _listed(depends: Any) -> object:
    """Dependencies as lists (tuples and lists alike)."""
    return None if depends is None else [list(d) for d in depends]
