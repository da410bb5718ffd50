"""`TargetStore.replace` says which records' desired state moved: fields,
dependencies or origin changed, a record added or gone; never one that is
only written again (in other bytes, or as an older version wrote it)."""

from __future__ import annotations

import marshal
import sqlite3
from pathlib import Path

from provgit.incremental.shared import records_of
from provgit.incremental.store import TargetStore
from provgit.projection.project import Target


def _target(
    records: dict[str, dict[str, object]], depends: dict[str, tuple[tuple[str, str], ...]]
) -> Target:
    return Target(
        {"mivb1": {"users": records}},
        {"mivb1": {("users", k): d for k, d in depends.items()}},
        {"mivb1": {}},
    )


def test_replace_moves_only_records_whose_desired_state_changed(tmp_path: Path) -> None:
    store = TargetStore(tmp_path / "target.sqlite")
    dep = (("cos", "1"),)
    store.save(
        _target(
            {
                "same": {"n": 1},
                "old-form": {"n": 2},
                "fields": {"n": 3},
                "deps": {"n": 4},
                "gone": {"n": 5},
            },
            {"same": dep, "old-form": dep, "deps": dep},
        ),
        "d1",
    )
    # A row as an older version wrote it: dependencies as lists.
    with sqlite3.connect(store.path) as db:
        db.execute(
            "UPDATE records SET depends = ? WHERE key = 'old-form'",
            (marshal.dumps([list(d) for d in dep]),),
        )
    new = _target(
        {"same": {"n": 1}, "old-form": {"n": 2}, "fields": {"n": 30}, "deps": {"n": 4}, "new": {}},
        {"same": dep, "old-form": dep, "deps": (("cos", "2"),)},
    )
    old = {"mivb1": {("users", k) for k in ("same", "old-form", "fields", "deps", "gone")}}
    moved = store.replace("d2", old, new, {("users", k) for k in ("same", "fields", "new")})
    assert moved == {"mivb1": {("users", k) for k in ("fields", "deps", "gone", "new")}}
    assert store.digest() == "d2"
    stored = store.partial("mivb1", [("users", k) for k in ("same", "fields", "gone", "new")])
    assert stored.records["mivb1"]["users"] == {"same": {"n": 1}, "fields": {"n": 30}, "new": {}}


def test_a_replace_without_compare_leaves_the_rows_one_with_it_leaves(tmp_path: Path) -> None:
    """The shared path's write (`compare=False`: every record of the change
    put, none read) ends with the rows, landing and digest `replace` ends with:
    records kept, changed, gone and new, dependencies as an older version
    wrote them, a record on another element, a resource that moves."""
    dep = (("cos", "1"),)
    first = Target(
        {
            "mivb1": {
                "users": {"same": {"n": 1}, "old-form": {"n": 2}, "fields": {"n": 3}},
                "cos": {"1": {"c": 1}},
            },
            "mivb2": {"users": {"gone": {"n": 5}, "moves": {"n": 6}}},
        },
        {"mivb1": {("users", "same"): dep, ("users", "old-form"): dep}},
        {"mivb1": {}, "mivb2": {}},
    )
    new = Target(
        {
            "mivb1": {
                "users": {"same": {"n": 1}, "old-form": {"n": 2}, "fields": {"n": 30}, "moves": {}}
            },
            "mivb2": {"users": {"new": {"n": 7}}},
        },
        {"mivb1": {("users", "same"): dep, ("users", "old-form"): (("cos", "2"),)}},
        {"mivb1": {}, "mivb2": {}},
    )
    old = {
        "mivb1": {("users", k) for k in ("same", "old-form", "fields")},
        "mivb2": {("users", "gone"), ("users", "moves")},
    }
    resources = {("users", k) for k in ("same", "old-form", "fields", "gone", "moves", "new")}
    stores = []
    for name in ("replaced", "overwritten"):
        store = TargetStore(tmp_path / f"{name}.sqlite")
        store.save(first, "d1")
        with sqlite3.connect(store.path) as db:
            db.execute(
                "UPDATE records SET depends = ? WHERE key = 'old-form'",
                (marshal.dumps([list(d) for d in dep]),),
            )
        stores.append(store)
    stores[0].replace("d2", old, new, resources)
    assert stores[1].replace("d2", old, new, resources, compare=False) is None
    assert _tables(stores[1].path) == _tables(stores[0].path)
    assert stores[1].digest() == "d2"
    mivb2 = stores[1].partial("mivb2", [("users", "gone"), ("users", "new")])
    assert mivb2.records["mivb2"]["users"] == {"new": {"n": 7}}


def test_a_target_read_one_element_at_a_time_is_the_one_open_when_reading_began(
    tmp_path: Path,
) -> None:
    """The report after a rollout reads the stored target per element (not all
    of it at once); a plan replacing the file meanwhile is not mixed in."""
    store = TargetStore(tmp_path / "target.sqlite")
    first = Target(
        {"mivb1": {"users": {"a": {"n": 1}}}, "mivb2": {"users": {"b": {"n": 2}}}, "ivr1": {}},
        {},
        {"mivb1": {("users", "a"): ("users", "a")}, "mivb2": {}, "ivr1": {}},
    )
    store.save(first, "d1")
    with store.one_by_one() as load:
        names = load("")
        assert names is not None
        assert names.records == {"mivb1": {}, "mivb2": {}, "ivr1": {}}
        one = load("mivb1")
        assert one is not None
        assert one.records["mivb1"] == {"users": {"a": {"n": 1}}}
        assert one.records["mivb2"] == {}
        assert one.origin["mivb1"] == {("users", "a"): ("users", "a")}
        # A plan writes a new target (write, then rename over the file).
        store.save(Target({"mivb2": {"users": {"b": {"n": 20}}}}, {}, {"mivb2": {}}), "d2")
        two = load("mivb2")
        assert two is not None and two.records["mivb2"] == {"users": {"b": {"n": 2}}}
    whole = store.load()
    assert whole is not None and whole.records["mivb2"] == {"users": {"b": {"n": 20}}}


def _tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as db:
        return {
            t: db.execute(f"SELECT * FROM {t}").fetchall()
            for t in ("records", "landing", "resources", "meta")
        }


def test_the_landing_rows_from_a_full_plans_records_are_those_found_from_the_target(
    tmp_path: Path,
) -> None:
    """The full plan hands `save` each resource's records (in key order, made
    so, not sorted); the rows and totals equal those the target alone gives,
    for resources on several elements, several records of one resource on an
    element (its first wins), kinds and names out of order, non-ASCII names."""
    target = Target(
        {
            "mivb2": {
                "users": {"zed": {"n": 1}, "ann": {"n": 2}, "émile": {"n": 3}},
                "cos": {"9": {"c": 1}, "10": {"c": 2}},
            },
            "mivb1": {
                "users": {"ann": {"n": 2}, "bob": {"n": 4}},
                "remote_directory": {"ann-rd": {"r": 1}, "ann-rd2": {"r": 2}},
            },
            "micollab": {"users": {"bob": {"m": 1}}},
            "empty": {},
        },
        {"mivb2": {("users", "zed"): (("cos", "9"),), ("users", "ann"): (("cos", "9"),)}},
        {
            "mivb1": {
                ("remote_directory", "ann-rd"): ("users", "ann"),
                ("remote_directory", "ann-rd2"): ("users", "ann"),
            },
            "micollab": {("users", "bob"): ("users", "zed")},
        },
    )
    given = TargetStore(tmp_path / "given.sqlite")
    given.save(target, "d", records_of(target))
    found = TargetStore(tmp_path / "found.sqlite")
    found.save(target, "d")
    tables = _tables(given.path)
    assert tables == _tables(found.path)
    assert ("users", "ann", "mivb1", "users", "ann") in tables["landing"]
    assert ("users", "ann", 2) in tables["resources"]
    assert ("users", "zed", 2) in tables["resources"]
    assert given.landing_on("mivb1") == found.landing_on("mivb1")
    # Dependencies shared by records are stored as each record's own would be.
    deps = {r[2]: r[4] for r in tables["records"] if r[0] == "mivb2" and r[1] == "users"}
    assert marshal.loads(deps["zed"]) == marshal.loads(deps["ann"]) == (("cos", "9"),)
    assert deps["émile"] is None


def test_where_many_resources_land_is_read_whatever_their_number_and_kinds(
    tmp_path: Path,
) -> None:
    """A status lists ~2,000 resources: asked together (in chunks), each one's
    landing is what its rows say, over more than a chunk of one kind, several
    kinds, resources on no element and ones asked for twice."""
    users = {f"u{i:04d}": {"n": i} for i in range(1203)}
    target = Target(
        {
            "mivb1": {"users": {k: v for k, v in users.items() if v["n"] % 2 == 0}},
            "mivb2": {"users": {k: v for k, v in users.items() if v["n"] % 3 == 0}},
            "mcl": {"users": users, "cos": {"1": {"c": 1}, "7": {"c": 7}}},
        },
        {},
        {},
    )
    store = TargetStore(tmp_path / "target.sqlite")
    store.save(target, "d")
    asked = [("users", k) for k in users] + [("classes_of_service", n) for n in ("1", "7")]
    asked.append(("users", "none"))
    got = store.landing_of([*asked, ("users", "u0006")])
    rows = _tables(store.path)["landing"]
    expected: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}
    for kind, resource, element, coll, key in rows:
        expected.setdefault((str(kind), str(resource)), {})[str(element)] = (str(coll), str(key))
    assert got == expected
    assert set(got["users", "u0006"]) == {"mivb1", "mivb2", "mcl"}
    assert ("users", "none") not in got and len(got) == 1203 + 2
