"""`TargetStore.replace` says which records' desired state moved: fields,
dependencies or origin changed, a record added or gone; never one that is
only written again (in other bytes, or as an older version wrote it)."""

from __future__ import annotations

import marshal
import sqlite3
from pathlib import Path

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
