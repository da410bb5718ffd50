"""The projected target on disk, for point look-ups by (element, collection, key).

The memo path re-plans only the records an element's change feed names
(`replan.replan`); it needs the desired fields of just those, without
projecting the whole network again (`partial`: the part of the target a
re-plan reads, as the watcher reads its whole target in memory). Status reads
it too (`provgit.report`). One SQLite file, replaced whole (write then rename) whenever the
inputs of the projection change.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from provgit.fsutil import private_sqlite, regular_or_absent
from provgit.incremental import replacing
from provgit.incremental.landing import insert_landing
from provgit.projection.project import RecordRef, Target

_SCHEMA = """
CREATE TABLE records (
  element TEXT NOT NULL, collection TEXT NOT NULL, key TEXT NOT NULL,
  fields BLOB NOT NULL, depends BLOB, origin BLOB,
  PRIMARY KEY (element, collection, key)
) WITHOUT ROWID;
CREATE TABLE meta (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
-- Where each resource lands (its first record on each element) and on how many
-- elements: what a status with nothing to report reads instead of every record.
CREATE TABLE resources (
  kind TEXT NOT NULL, resource TEXT NOT NULL, total INTEGER NOT NULL,
  PRIMARY KEY (kind, resource)
) WITHOUT ROWID;
CREATE TABLE landing (
  kind TEXT NOT NULL, resource TEXT NOT NULL, element TEXT NOT NULL,
  collection TEXT NOT NULL, key TEXT NOT NULL,
  PRIMARY KEY (kind, resource, element)
) WITHOUT ROWID;
"""


def _by_collection(refs: Mapping[RecordRef, Any]) -> dict[str, dict[str, bytes]]:
    """Each record's value marshalled, by collection then key: the rows then
    look it up by key alone (no (collection, key) tuple built and hashed per
    row). Most records share their dependencies (a user's template, a role's
    COS): each distinct value is marshalled once (the same bytes)."""
    dumped: dict[Any, bytes] = {}
    out: dict[str, dict[str, bytes]] = {}
    for (coll, key), value in refs.items():
        got = dumped.get(value)
        if got is None:
            got = dumped[value] = marshal.dumps(value)
        of_coll = out.get(coll)
        if of_coll is None:
            of_coll = out[coll] = {}
        of_coll[key] = got
    return out


def _insert_records(db: sqlite3.Connection, target: Target) -> None:
    """Every record, in primary key order: each row appends to the table's
    B-tree (in the projection's order they land all over it, twice the time)."""
    dumps = marshal.dumps
    for element in sorted(target.records):
        collections = target.records[element]
        depends = _by_collection(target.depends.get(element, {}))
        origin = _by_collection(target.origin.get(element, {}))
        for coll in sorted(collections):
            recs = collections[coll]
            deps = depends.get(coll, {}).get
            orgs = origin.get(coll, {}).get
            # Marshalled in the projection's order (each record's objects were
            # made together: in key order they are visited all over memory,
            # ~0.7 s more at 100,000 users), then the rows in key order. One
            # list per collection, built by a comprehension: a generator fed
            # to executemany costs a Python frame resume per row.
            blobs = {key: dumps(fields) for key, fields in recs.items()}
            rows = [(element, coll, key, blobs[key], deps(key), orgs(key)) for key in sorted(blobs)]
            db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)", rows)


def _connect(path: Path, read_only: bool = False) -> sqlite3.Connection:
    """The stored target's database, when what is at `path` is a regular file
    (or nothing: SQLite says so). Checked first: SQLite opens a named pipe put
    there read-only and waits on it for ever; refused like a damaged file."""
    try:
        regular_or_absent(path)
    except OSError as e:
        raise sqlite3.DatabaseError(str(e)) from None
    if read_only:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    return sqlite3.connect(path)


class TargetStore:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def digest(self) -> str | None:
        if not self.path.exists():
            return None
        try:
            with contextlib.closing(_connect(self.path)) as db:
                row = db.execute("SELECT v FROM meta WHERE k = 'digest'").fetchone()
        except sqlite3.Error:
            return None
        return None if row is None else str(marshal.loads(row[0]))

    def save(
        self,
        target: Target,
        digest: str,
        records: Mapping[tuple[str, str], list[tuple[str, str, str]]] | None = None,
    ) -> None:
        """`records`: each resource's records (`incremental.shared.records_of`
        of `target`) when the caller has them: the landing rows come from them."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        private_sqlite(tmp)  # desired records of every element: owner-only
        with contextlib.closing(sqlite3.connect(tmp)) as db:
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")  # the rename below is the commit point
            db.executescript(_SCHEMA)
            _insert_records(db, target)
            insert_landing(db, target, records)
            db.execute(
                "INSERT INTO meta VALUES ('excluded', ?)",
                (marshal.dumps(sorted(target.excluded)),),
            )
            db.execute(
                "INSERT INTO meta VALUES ('read_only', ?)",
                (marshal.dumps(sorted(target.read_only)),),
            )
            db.execute("INSERT INTO meta VALUES ('digest', ?)", (marshal.dumps(digest),))
            # Every element, even one the config gives no record: status lists it.
            db.execute(
                "INSERT INTO meta VALUES ('elements', ?)", (marshal.dumps(sorted(target.records)),)
            )
            db.commit()
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def partial(self, element: str, refs: Iterable[RecordRef]) -> Target:
        """A Target holding just these records of one element (absent ones: not desired)."""
        records: dict[str, dict[str, dict[str, object]]] = {}
        depends: dict[RecordRef, tuple[RecordRef, ...]] = {}
        origin: dict[RecordRef, tuple[str, str]] = {}
        with contextlib.closing(_connect(self.path)) as db:
            excluded_row = db.execute("SELECT v FROM meta WHERE k = 'excluded'").fetchone()
            read_only_row = db.execute("SELECT v FROM meta WHERE k = 'read_only'").fetchone()
            query = (
                "SELECT fields, depends, origin FROM records "
                "WHERE element = ? AND collection = ? AND key = ?"
            )
            for coll, key in refs:
                row = db.execute(query, (element, coll, key)).fetchone()
                if row is None:
                    continue
                records.setdefault(coll, {})[key] = marshal.loads(row[0])
                if row[1] is not None:
                    depends[(coll, key)] = tuple(tuple(d) for d in marshal.loads(row[1]))
                if row[2] is not None:
                    kind, resource = marshal.loads(row[2])
                    origin[(coll, key)] = (kind, resource)
        excluded = {tuple(x) for x in marshal.loads(excluded_row[0])} if excluded_row else set()
        return Target(
            {element: records},
            {element: depends},
            {element: origin},
            excluded=excluded,
            read_only=frozenset(marshal.loads(read_only_row[0])) if read_only_row else frozenset(),
        )

    def field_blobs(self, element: str, refs: Collection[RecordRef]) -> dict[RecordRef, bytes]:
        """The marshalled desired fields of these records of `element` (absent
        ones: not in the result); the caller loads only those it uses."""
        with contextlib.closing(_connect(self.path, read_only=True)) as db:
            count = "SELECT count(*) FROM records WHERE element = ?"
            if len(refs) >= 1000 and 2 * len(refs) > db.execute(count, (element,)).fetchone()[0]:
                # Most of them (a first rollout's adds): one pass over the element's rows.
                query = "SELECT collection, key, fields FROM records WHERE element = ?"
                return {(c, k): fields for c, k, fields in db.execute(query, (element,))}
            # Else a join with the refs, not a pass over the element (MiCollab: 0.22 -> 0.11 s).
            db.execute("CREATE TEMP TABLE wanted (collection TEXT, key TEXT)")
            db.executemany("INSERT INTO wanted VALUES (?, ?)", refs)
            query = (
                "SELECT w.collection, w.key, r.fields FROM wanted AS w CROSS JOIN records AS r "
                "ON r.element = ? AND r.collection = w.collection AND r.key = w.key"
            )
            return {(c, k): fields for c, k, fields in db.execute(query, (element,))}

    def load(self, only: str | None = None, db: sqlite3.Connection | None = None) -> Target | None:
        """The whole target (records, where each came from, exclusions), without
        dependencies: what status derives from. None when absent or unreadable.
        `only`: the records of that element alone ("": of none), all named;
        `db`: read through this connection (`one_by_one`), not one of its own."""
        if not self.path.exists() and db is None:
            return None
        records: dict[str, dict[str, dict[str, dict[str, object]]]] = {}
        origin: dict[str, dict[RecordRef, tuple[str, str]]] = {}
        loads = marshal.loads
        own = db is None
        try:
            if db is None:
                db = _connect(self.path, read_only=True)
            with contextlib.closing(db) if own else contextlib.nullcontext(db):
                excluded_row = db.execute("SELECT v FROM meta WHERE k = 'excluded'").fetchone()
                ro_row = db.execute("SELECT v FROM meta WHERE k = 'read_only'").fetchone()
                elements = [r[0] for r in db.execute("SELECT v FROM meta WHERE k = 'elements'")]
                query = "SELECT element, collection, key, fields, origin FROM records"
                where = () if only is None else (only,)
                for element, coll, key, fields, org in db.execute(
                    query + (" WHERE element = ?" if where else ""), where
                ):
                    recs = records.get(element)
                    if recs is None:
                        recs = records[element] = {}
                        origin[element] = {}
                    by_coll = recs.get(coll)
                    if by_coll is None:
                        by_coll = recs[coll] = {}
                    by_coll[key] = loads(fields)
                    if org is not None:
                        kind, resource = loads(org)
                        origin[element][(coll, key)] = (kind, resource)
        except sqlite3.Error:
            return None
        for names in elements:
            for name in loads(names):
                records.setdefault(name, {})
                origin.setdefault(name, {})
        excluded = {tuple(x) for x in loads(excluded_row[0])} if excluded_row else set()
        read_only = frozenset(loads(ro_row[0])) if ro_row else frozenset()
        return Target(records, {}, origin, excluded=excluded, read_only=read_only)

    @contextlib.contextmanager
    def one_by_one(self) -> Iterator[Callable[[str], Target | None]]:
        """`load(only=name)` per name, all of the file as it is now (not a new one)."""
        try:
            db = _connect(self.path, read_only=True)
        except sqlite3.Error:
            yield lambda only: None
            return
        with contextlib.closing(db):
            yield lambda only: self.load(only, db)

    def totals(self) -> dict[tuple[str, str], int] | None:
        """(kind, resource) -> how many elements it lands on (None: an older file)."""
        try:
            with contextlib.closing(_connect(self.path, read_only=True)) as db:
                return {(k, r): int(n) for k, r, n in db.execute("SELECT * FROM resources")}
        except sqlite3.Error:
            return None

    def resource_count(self) -> int | None:
        """How many resources the target has (None: an older file)."""
        try:
            with contextlib.closing(_connect(self.path, read_only=True)) as db:
                return int(db.execute("SELECT count(*) FROM resources").fetchone()[0])
        except sqlite3.Error:
            return None

    def totals_of(self, resources: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """`totals()` of just these resources (the ones the target has): a
        status in sync looks at a few, not at all 100,000."""
        out: dict[tuple[str, str], int] = {}
        query = "SELECT total FROM resources WHERE kind = ? AND resource = ?"
        with contextlib.closing(_connect(self.path, read_only=True)) as db:
            for res in resources:
                row = db.execute(query, res).fetchone()
                if row is not None:
                    out[res] = int(row[0])
        return out

    def landing_on(self, element: str) -> list[tuple[str, str, str, str]]:
        """(kind, resource, collection, key) of every resource landing on `element`."""
        with contextlib.closing(_connect(self.path, read_only=True)) as db:
            return list(
                db.execute(
                    "SELECT kind, resource, collection, key FROM landing WHERE element = ?",
                    (element,),
                )
            )

    def landing_of(
        self, resources: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], dict[str, RecordRef]]:
        """Element -> first record, for each of these resources."""
        out: dict[tuple[str, str], dict[str, RecordRef]] = {}
        by_kind: dict[str, list[str]] = {}
        for kind, resource in resources:
            by_kind.setdefault(kind, []).append(resource)
        # A status lists ~2,000 resources: one statement per 500, not per resource.
        with contextlib.closing(_connect(self.path, read_only=True)) as db:
            for kind, names in by_kind.items():
                for i in range(0, len(names), 500):
                    part = names[i : i + 500]
                    for resource, element, coll, key in db.execute(
                        "SELECT resource, element, collection, key FROM landing "
                        f"WHERE kind = ? AND resource IN ({','.join('?' * len(part))})",
                        (kind, *part),
                    ):
                        out.setdefault((kind, resource), {})[element] = (coll, key)
        return out

    def first_resources(self, limit: int, skip: set[tuple[str, str]]) -> list[tuple[str, str, int]]:
        """The first `limit` resources in (kind, resource) order, not in `skip`."""
        out: list[tuple[str, str, int]] = []
        with contextlib.closing(_connect(self.path, read_only=True)) as db:
            for k, r, n in db.execute("SELECT kind, resource, total FROM resources"):
                if (k, r) in skip:
                    continue
                out.append((k, r, int(n)))
                if len(out) >= limit:
                    break
        return out

    def replace(
        self,
        digest: str,
        old: dict[str, set[RecordRef]],
        new: Target,
        resources: set[tuple[str, str]],
        relocate: bool = True,
        compare: bool = True,
    ) -> dict[str, set[RecordRef]] | None:
        """Replace, in one transaction, some resources' records: `old` the
        records they had (element -> refs), `new` a target holding exactly the
        records they have now, `resources` their (kind, key). The stored digest
        becomes `digest`. Returns per element the records whose desired state
        (fields, dependencies, origin) changed: the only ones to plan again.
        `relocate` False: the caller knows each resource has the same records
        as before, in the same order (`shared.same_records`), so where each
        lands is as stored (a template edit: 38,000 records looked at for
        nothing). `compare` False: the rows are not read, every record of
        `new` is written (`replacing.overwritten`), and None is returned: for
        a caller that plans again every record of `old` and `new`."""
        with contextlib.closing(_connect(self.path)) as db:
            change = replacing.compare(db, old, new) if compare else replacing.overwritten(old, new)
            replacing.write(db, change, digest, new, resources, relocate)
        return change.moved if compare else None
