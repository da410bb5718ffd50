"""The watcher's view of its target for status (`derive.MemoryView`): kept up
to date from each reprojection's delta, it says what a fresh view says."""

from __future__ import annotations

import random
from pathlib import Path

from plan.test_incremental import _state, _user
from provgit.projection.project import project, reproject
from provgit.report.derive import MemoryView, memory_view
from provgit.secrets import Fingerprinter


def test_view_updated_from_the_delta_equals_a_fresh_view(tmp_path: Path) -> None:
    for seed in range(5):
        rng = random.Random(seed)
        users = [_user(i, rng) for i in range(15)]
        flows = [{"name": "main", "media_servers": ["ms1"], "steps": [{"action": "hangup"}]}]
        fp = Fingerprinter(b"k")
        old = _state(tmp_path / f"a{seed}", users, flows)
        target = project(old, fp)
        view = memory_view(target, 1)
        changed: set[str] = set()
        for i in rng.sample(range(len(users)), 4):
            users[i] = {**_user(i, rng), "first_name": "Changed"}  # host and DNs may move
            changed.add(users[i]["login_id"])
        removed = users.pop(rng.randrange(len(users)))
        changed.add(removed["login_id"])
        users.append(_user(50 + seed, rng))
        changed.add(users[-1]["login_id"])
        new = _state(tmp_path / f"b{seed}", users, flows)
        found = reproject(target, old, new, {"users": changed}, fp, in_place=True)
        assert found is not None and found[0] is target
        updated = memory_view(target, 2, (1, 2, found[1]))
        assert updated is view
        fresh = MemoryView(project(new, fp))
        assert updated.totals() == fresh.totals()
        resources = list(fresh.totals())
        assert updated.landing_of(resources) == fresh.landing_of(resources)
        for element in new.elements:
            assert sorted(updated.landing_on(element)) == sorted(fresh.landing_on(element))
        assert updated.first_resources(5, set()) == fresh.first_resources(5, set())
