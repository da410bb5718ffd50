"""The target store a first rollout's plan writes holds each record as it
always did: its fields, dependencies and origin marshalled on their own, the
rows in primary key order (`TargetStore.save` marshals in the projection's
order and rows in key order: the bytes must not change with that)."""

from __future__ import annotations

import marshal
import sqlite3
from pathlib import Path

from plan.test_add_bytes import _generated
from provgit.api import Config
from provgit.api.network import desired_target
from provgit.incremental.shared import records_of
from provgit.incremental.store import TargetStore
from provgit.projection.project import Target
from provgit.source import read_directory

Row = tuple[str, str, str, bytes, bytes | None, bytes | None]


def _reference_rows(target: Target) -> list[Row]:
    """Every record's row as the store was first written: one record at a
    time, in key order, each value marshalled where it is met."""
    rows: list[Row] = []
    for element in sorted(target.records):
        depends = target.depends.get(element, {})
        origin = target.origin.get(element, {})
        for coll in sorted(target.records[element]):
            recs = target.records[element][coll]
            for key in sorted(recs):
                dep, org = depends.get((coll, key)), origin.get((coll, key))
                rows.append(
                    (
                        element,
                        coll,
                        key,
                        marshal.dumps(recs[key]),
                        None if dep is None else marshal.dumps(dep),
                        None if org is None else marshal.dumps(org),
                    )
                )
    return rows


def test_a_first_rollouts_stored_target_holds_each_record_as_marshalled_alone(
    tmp_path: Path,
) -> None:
    root, state_dir = tmp_path / "net", tmp_path / "state"
    _generated(400, root)
    config = Config.open(root, state_dir)
    target = desired_target(config.state(), read_directory(root).read_other, state_dir)
    # (marshal's bytes depend on which objects are shared at the time, so
    # both are made from the one projection.)
    store = TargetStore(tmp_path / "target.sqlite")
    store.save(target, "d", records_of(target))
    with sqlite3.connect(store.path) as db:
        stored = db.execute("SELECT * FROM records").fetchall()  # in primary key order
    expected = _reference_rows(target)
    assert len(stored) > 1000 and sum(r[4] is not None for r in stored) > 500
    assert stored == expected
