"""What a plan after a shared-record change writes and computes, and what it
leaves alone (#16): a template edit that moves no record between elements
leaves where each resource lands as stored, a stored row whose value is
unchanged is not written again, and the secret values are digested once.
Each plan still equals the full plan, and an apply of it ends in sync."""

from __future__ import annotations

import asyncio
import marshal
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_shared_change import (
    _comparable,
    _full,
    _plan,
    _shared,
    _stored_is_the_projection,
    _write,
    _written,
)

from provgit.api import Config
from provgit.incremental import replacing
from provgit.incremental.disk import PlanMemo
from provgit.incremental.store import TargetStore
from provgit.projection.project import Target
from provgit.secrets import Fingerprinter


def _landing(state: Path) -> tuple[list[Any], list[Any]]:
    with sqlite3.connect(PlanMemo(state).target_path) as db:
        return (
            db.execute("SELECT * FROM resources ORDER BY 1, 2").fetchall(),
            db.execute("SELECT * FROM landing ORDER BY 1, 2, 3").fetchall(),
        )


def test_a_template_edit_leaves_the_landing_as_stored_and_ends_in_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A template's device type: every reached record changes on the elements
    it was on, none moves, so the landing tables are not looked at; a user
    sent to another call server does move records, and they are."""
    monkeypatch.setenv("SHARED_PIN", "1234")
    # The store written in this process (not a forked child's): the calls counted here.
    monkeypatch.setenv("PROVGIT_NO_FORK", "1")
    root, state, net, _rng = _written(tmp_path, 21, 24)
    assert asyncio.run(Config.open(root, state).reconcile()).exit_code == 0
    relocated: list[int] = []
    relocate = replacing._relocate

    def counting(db: sqlite3.Connection, new: Target, resources: set[tuple[str, str]]) -> None:
        relocated.append(len(resources))
        relocate(db, new, resources)

    monkeypatch.setattr(replacing, "_relocate", counting)
    pair = next(t for t in net["templates"] if t["name"] == "Pair")
    pair["phones"][0]["device_type"] = "6940"
    _write(root, net)
    landing = _landing(state)
    full = _full(root, state, monkeypatch)
    config = Config.open(root, state)
    run = asyncio.run(config.plan())
    assert _comparable(run.plan) == _comparable(full.plan)
    assert sum(len(ep.operations) for ep in run.plan.elements) > 0
    assert relocated == [] and _landing(state) == landing
    _stored_is_the_projection(root, state)
    assert asyncio.run(config.apply(run)).exit_code == 0
    status = Config.open(root, state).status()
    assert status.in_sync and status.problems == 0
    assert all(r["status"] == "Sync Completed" for r in status.document["resources"])
    # A user to another call server: its records move there.
    user = net["users"][0]
    user["host"] = "mivb2" if user["host"] != "mivb2" else "mivb3"
    _write(root, net)
    full = _full(root, state, monkeypatch)
    changed = _shared(root, state, light=True)
    assert changed is not None
    assert _comparable(changed.plan) == _comparable(full.plan)
    assert relocated, "a change that moves records relocates them"
    _stored_is_the_projection(root, state)


def test_a_row_whose_value_is_unchanged_is_not_written_again(tmp_path: Path) -> None:
    """Stored in other bytes than a dump now gives (as an older version wrote
    it, or marshal sharing objects otherwise): same value, so it is neither
    moved nor rewritten; a changed one is both."""
    store = TargetStore(tmp_path / "target.sqlite")
    dep: tuple[tuple[str, str], ...] = (("templates", "Basic"),)
    records = {"kept": {"n": 1}, "changed": {"n": 2}}
    deps = {("users", k): dep for k in records}
    store.save(Target({"mivb1": {"users": records}}, {"mivb1": deps}, {"mivb1": {}}), "d1")
    as_lists = marshal.dumps([list(d) for d in dep])
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE records SET depends = ?", (as_lists,))
    new = Target(
        {"mivb1": {"users": {"kept": {"n": 1}, "changed": {"n": 20}}}}, {"mivb1": deps}, {}
    )
    old = {"mivb1": {("users", "kept"), ("users", "changed")}}
    moved = store.replace("d2", old, new, {("users", "kept"), ("users", "changed")})
    assert moved == {"mivb1": {("users", "changed")}}
    with sqlite3.connect(store.path) as db:
        rows = dict(db.execute("SELECT key, depends FROM records"))
    assert rows["kept"] == as_lists  # as it was: not written
    assert marshal.loads(rows["changed"]) == dep
    assert store.partial("mivb1", [("users", "changed")]).records["mivb1"]["users"] == {
        "changed": {"n": 20}
    }


def test_a_plan_after_a_config_change_digests_the_secret_values_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memo is checked as unchanged, then for the shared path, under the
    same references: one digest of their values, not two; and a value
    changed before the next plan is seen by it (nothing kept across plans)."""
    monkeypatch.setenv("SHARED_PIN", "1234")
    root, state, net, _rng = _written(tmp_path, 22, 24)
    _plan(root, state)
    digests: list[int] = []
    digest = Fingerprinter._values_digest

    def counting(fp: Fingerprinter, described: Any) -> tuple[str, list[str]]:
        digests.append(len(described))
        return digest(fp, described)

    monkeypatch.setattr(Fingerprinter, "_values_digest", counting)
    net["templates"][0]["description"] = "once"
    _write(root, net)
    full = _full(root, state, monkeypatch)
    digests.clear()
    before = asyncio.run(Config.open(root, state).plan())
    assert _comparable(before.plan) == _comparable(full.plan)
    assert len(digests) == 1 and digests[0] > 0
    # Nothing kept across plans: a value changed since is seen by the next.
    monkeypatch.setenv("SHARED_PIN", "4321")
    full = _full(root, state, monkeypatch)
    run = asyncio.run(Config.open(root, state).plan())
    assert _comparable(run.plan) == _comparable(full.plan) != _comparable(before.plan)
