"""A full plan's full reads hold a record the element has as projected as the
projection's own fields, and the other records' strings once (#16: the
largest part of a full plan's memory). The plan, the observation and its
cache file must be what a reading on its own gives, drift included."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from test_shared_change import _comparable, _full, _user, _write, _written

from provgit.api import Config
from provgit.api.network import connect, fingerprinter
from provgit.drivers.base import WriteOp
from provgit.observe import Observation, ObservationCache, observe
from provgit.plan import PlanOptions, compute_plan
from provgit.projection import Target, project
from provgit.simulator.store import ElementStore
from provgit.source import read_directory
from provgit.validate import validate_source


def _drift(state: Path) -> None:
    """Out-of-band edits: a changed user, a deleted one, a record provgit never made."""
    stores = sorted((state / "elements").glob("mivb*.sqlite"))
    store = ElementStore(stores[0])
    try:
        first, second, *_ = store.list_records("users", None, 1000).records
        edited = {**first.fields, "first_name": "Edited"}
        store.write(WriteOp("put", "users", first.key, edited, first.revision))
        store.write(WriteOp("delete", "users", second.key, None, second.revision))
        store.write(
            WriteOp("put", "cos", "1", {"number": 1, "comment": "Edited"}, None), force=True
        )
    finally:
        store.close()


def _alone(root: Path, state: Path) -> tuple[Target, dict[str, Observation]]:
    """The projection, and every element read in full with nothing expected."""
    source = read_directory(root)
    valid = validate_source(source, state / "cache")
    assert valid.ok, valid.diagnostics[:3]
    target = project(valid.state, fingerprinter(valid.state, state), source.read_other)
    network = connect(valid.state, state, root)

    async def read() -> dict[str, Observation]:
        try:
            return await observe(network.drivers, {}, full=list(network.drivers))
        finally:
            await network.close()

    return target, asyncio.run(read())


def test_a_full_plan_holding_the_projection_plans_and_caches_what_a_reading_alone_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHARED_PIN", "1234")
    root, state, net, rng = _written(tmp_path, 5, 24)
    assert asyncio.run(Config.open(root, state).reconcile()).exit_code == 0
    _drift(state)
    net["users"][5] = _user(5, rng, "Renamed")
    net["users"].append(_user(99, rng))
    del net["users"][9]
    _write(root, net)
    # Before: the projection and a reading of every element that knows nothing of it.
    target, alone = _alone(root, state)
    shutil.rmtree(state / "observed")
    valid = validate_source(read_directory(root), state / "cache").state
    types = {n: e.type for n, e in valid.elements.items()}
    before = compute_plan(target, alone, valid.settings, types, PlanOptions())
    after = _full(root, state, monkeypatch)  # reads every element in full (no cache)
    assert _comparable(after.plan) == _comparable(before)
    actions = {op.action for ep in after.plan.elements for op in ep.operations}
    assert {"add", "modify", "delete"} <= actions
    cache = ObservationCache(state)
    for name in types:
        cached = cache.load(name)
        assert cached is not None
        assert cached.records == alone[name].records, name
        assert cached.digest == alone[name].digest, name


def test_a_full_read_holds_an_in_sync_record_as_the_expected_fields_and_a_drifted_one_as_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHARED_PIN", "1234")
    root, state, _net, _rng = _written(tmp_path, 6, 12)
    assert asyncio.run(Config.open(root, state).reconcile()).exit_code == 0
    _drift(state)
    target, alone = _alone(root, state)
    source = read_directory(root)
    valid = validate_source(source, state / "cache")
    network = connect(valid.state, state, root)

    async def read() -> dict[str, Observation]:
        try:
            return await observe(
                network.drivers, {}, full=list(network.drivers), expected=target.records
            )
        finally:
            await network.close()

    shared = asyncio.run(read())
    held = drifted = 0
    for name, obs in shared.items():
        assert obs.records == alone[name].records
        assert obs.digest == alone[name].digest
        for coll, recs in obs.records.items():
            for key, record in recs.items():
                want = target.records.get(name, {}).get(coll, {}).get(key)
                if want == record.fields:
                    assert record.fields is want, (name, coll, key)
                    held += 1
                else:
                    assert record.fields is not want
                    drifted += 1
    assert held > 50
    assert drifted >= 2  # the edited user and the edited COS (the deleted user is absent)
    # Strings the records read apart repeat are one object on each element.
    for obs in shared.values():
        expected = target.records.get(obs.element, {})
        values = [
            v
            for recs in obs.records.values()
            for r in recs.values()
            if r.fields is not expected.get(r.collection, {}).get(r.key)
            for v in r.fields.values()
            if isinstance(v, str)
        ]
        assert len({id(v) for v in values}) == len(set(values)), obs.element
