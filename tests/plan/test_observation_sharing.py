"""The watcher's observations hold the projection's own record where the
element holds the same (`observe.share`, #16): every plan made from them after
a one-user change, a template change, a drifted element or a SIGHUP's reload
is the plan a cold run makes from the element's own copy."""

from __future__ import annotations

import copy
import dataclasses
import random
from pathlib import Path
from typing import Any

from plan.test_incremental import _shared_state, _template_phones, _user
from provgit.observe import Observation, ObservationCache
from provgit.observe.share import headers, load_sharing, share_desired
from provgit.plan import PlanOptions
from provgit.plan.compute import plan_element
from provgit.projection import Target, project
from provgit.projection.project import reproject
from provgit.projection.reach import DependencyIndex
from provgit.secrets import Fingerprinter
from provgit.wire.protocol import StoredRecord


def _users(rng: random.Random) -> list[dict[str, Any]]:
    users = [_user(i, rng) for i in range(15)]
    for i, u in enumerate(users):
        u["role"] = ["Agent", "Lead"][i % 2]
        if i % 4 == 0:
            u["template"] = rng.choice(["Basic", "Pair"])
    return users


def _element_copy(target: Target) -> dict[str, Observation]:
    """What the elements hold, each record its own copy: the target, one record drifted."""
    out = {}
    for el, colls in target.records.items():
        recs = {
            coll: {k: StoredRecord(coll, k, copy.deepcopy(f), 5) for k, f in items.items()}
            for coll, items in colls.items()
        }
        out[el] = Observation(el, "running", 10, recs)
    users = out["mcl"].records["users"]
    key = sorted(users)[0]
    users[key] = StoredRecord("users", key, {**users[key].fields, "first_name": "Drifted"}, 7)
    return out


def _plans(
    target: Target, observed: dict[str, Observation], types: dict[str, str], settings: Any
) -> list[Any]:
    return [
        plan_element(n, types[n], target, observed[n], settings, PlanOptions()).to_json()
        for n in sorted(types)
    ]


def test_a_loaded_observation_holds_the_desired_records_it_equals(tmp_path: Path) -> None:
    state = _shared_state(tmp_path / "cfg", _users(random.Random(1)), {})
    target = project(state, Fingerprinter(b"k"))
    cache = ObservationCache(tmp_path / "state")
    for o in _element_copy(target).values():
        cache.save(o)
    cold = cache.load_all(list(target.records))
    shared = load_sharing(cache, list(target.records), target.records)
    drifted = same = 0
    for el, o in shared.items():
        assert o.records == cold[el].records  # what a reader sees: unchanged
        for coll, recs in o.records.items():
            for key, rec in recs.items():
                want = target.records[el].get(coll, {}).get(key)
                if want == rec.fields:
                    assert rec.fields is want  # held once, not twice
                    same += 1
                else:
                    assert rec.fields is not want
                    drifted += 1
    assert same > 50 and drifted == 1


def test_plans_from_shared_observations_equal_a_cold_run_after_each_change(
    tmp_path: Path,
) -> None:
    rng = random.Random(2)
    users = _users(rng)
    fp = Fingerprinter(b"k")
    old = _shared_state(tmp_path / "a", users, {})
    target = project(old, fp)
    types = {n: e.type for n, e in old.elements.items()}
    settings = old.settings
    elements = _element_copy(target)
    # The watcher: observations shared with the projection it keeps and reprojects in place.
    watcher = {n: share_desired(o, target.records[n]) for n, o in elements.items()}
    assert _plans(target, watcher, types, settings) == _plans(target, elements, types, settings)

    # A one-user change, then a template change, each reprojected in place.
    edited = [{**u} for u in users]
    edited[3]["first_name"] = "Renamed"
    steps: list[tuple[dict[str, Any], dict[str, set[str]], list[dict[str, Any]]]] = [
        ({}, {"users": {edited[3]["login_id"]}}, edited),
        ({"templates": _template_phones}, {"templates": {"Basic", "Pair"}}, edited),
    ]
    state = old
    for n, (change, changed, people) in enumerate(steps):
        new = _shared_state(tmp_path / f"s{n}", people, change)
        index = DependencyIndex.of(state)
        index.update(state, new, changed)
        found = reproject(target, state, new, changed, fp, in_place=True, index=index)
        assert found is not None and found[0] is target
        assert any(found[1].values())
        cold = project(new, fp)
        assert target.records == cold.records
        assert _plans(target, watcher, types, settings) == _plans(cold, elements, types, settings)
        state = new

    # A drifted element: the feed hands a record the element changed.
    users_on = watcher["mcl"].records["users"]
    key = sorted(users_on)[1]
    drift = StoredRecord("users", key, {**users_on[key].fields, "last_name": "Edited"}, 9)
    for side in (watcher, elements):
        records = {c: dict(r) for c, r in side["mcl"].records.items()}
        records["users"][key] = drift
        side["mcl"] = Observation("mcl", "running", 11, records)
    cold = project(state, fp)
    plans = _plans(target, watcher, types, settings)
    assert plans == _plans(cold, elements, types, settings)
    assert "Edited" in str(plans)  # the drift is planned back, not hidden

    # SIGHUP: everything in memory dropped, the observations loaded from the disk again.
    cache = ObservationCache(tmp_path / "state")
    for o in elements.values():
        cache.save(o)
    reloaded = load_sharing(cache, list(types), cold.records)
    assert _plans(cold, reloaded, types, settings) == _plans(cold, elements, types, settings)


def test_a_save_against_the_records_free_copy_writes_only_what_moved(tmp_path: Path) -> None:
    state = _shared_state(tmp_path / "cfg", _users(random.Random(3)), {})
    target = project(state, Fingerprinter(b"k"))
    cache = ObservationCache(tmp_path / "state")
    elements = _element_copy(target)
    cache.save_all(elements)
    on_disk = headers(elements)  # what the watcher keeps of what it wrote
    assert all(o.records == {} for o in on_disk.values())
    path = cache._path("mcl")
    written = path.stat().st_mtime_ns, path.stat().st_ino
    cache.save_all(elements, on_disk)  # same revisions: nothing written
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == written
    moved = dataclasses.replace(elements["mcl"], revision=12)
    moved.records["users"].pop(sorted(moved.records["users"])[0])
    cache.save_all({"mcl": moved}, on_disk)  # a newer reading: written whole
    loaded = cache.load("mcl")
    assert loaded is not None and loaded.revision == 12
    assert loaded.records == moved.records
