"""Re-projecting only changed resources, and re-planning only changed records,
give exactly what the full computation gives (the watcher relies on both)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from provgit.drivers.base import StoredRecord
from provgit.incremental.replan import replan_element
from provgit.model.state import DesiredState
from provgit.observe import Observation
from provgit.plan import PlanOptions
from provgit.plan.compute import plan_element
from provgit.projection import Target, project
from provgit.projection.project import reproject
from provgit.secrets import Fingerprinter
from provgit.source import read_directory
from provgit.validate import validate_source

HERE = Path(__file__).parent
_yaml = YAML(typ="safe", pure=True)


def _user(i: int, rng: random.Random) -> dict[str, Any]:
    return {
        "login_id": f"u{i:03d}",
        "first_name": rng.choice(["Ann", "Bob", "Cy"]),
        "last_name": f"N{i}",
        "role": "Agent",
        "host": rng.choice(["mivb1", "mivb3", "mivb4"]),
        "services": [{"dn": str(4000 + i * 3 + j)} for j in range(rng.randint(1, 2))],
    }


def _state(tmp: Path, users: list[dict[str, Any]], workflows: list[dict[str, Any]]) -> DesiredState:
    base = _yaml.load((HERE / "base.yaml").read_text())
    base["users"] = users
    base["workflows"] = workflows
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "provgit.yaml").write_text("network: inc\n")
    (tmp / "network.yaml").write_text(json.dumps(base))
    (tmp / "audio").mkdir(exist_ok=True)
    wav = next((HERE.parents[1] / "sample-config").rglob("*.wav")).read_bytes()
    (tmp / "audio" / "welcome.wav").write_bytes(wav)
    result = validate_source(read_directory(tmp), None)
    assert result.ok, result.diagnostics[:3]
    return result.state


def _observed(target: Target, rng: random.Random) -> dict[str, Observation]:
    """What the elements hold: the target, with some records edited, missing or extra."""
    out = {}
    for el, colls in target.records.items():
        recs: dict[str, dict[str, StoredRecord]] = {}
        for coll, items in colls.items():
            kept = {}
            for key, fields in items.items():
                roll = rng.random()
                if roll < 0.1:
                    continue
                if roll < 0.2:
                    fields = {**fields, "first_name": "Drifted"}
                kept[key] = StoredRecord(coll, key, fields, 5)
            recs[coll] = kept
        recs.setdefault("users", {})["stray"] = StoredRecord(
            "users", "stray", {"login_id": "stray", "_managed_by": "provgit"}, 2
        )
        out[el] = Observation(el, "running", 10, recs)
    return out


# Two seeds for each of the four (in_place, prune) combinations.
@pytest.mark.parametrize("seed", range(8))
def test_reproject_and_replan_equal_the_full_computation(seed: int, tmp_path: Path) -> None:
    _check(seed, tmp_path, in_place=bool(seed & 1), prune=bool(seed & 2))


def _check(seed: int, tmp_path: Path, in_place: bool, prune: bool) -> None:
    rng = random.Random(seed)
    users = [_user(i, rng) for i in range(15)]
    flows = [{"name": "main", "media_servers": ["ms1"], "steps": [{"action": "hangup"}]}]
    fp = Fingerprinter(b"k")
    old = _state(tmp_path / "a", users, flows)
    old_target = project(old, fp)
    observed = _observed(old_target, rng)
    types = {n: e.type for n, e in old.elements.items()}
    options = PlanOptions(prune=prune)
    before = {
        n: plan_element(n, types[n], old_target, observed[n], old.settings, options) for n in types
    }
    # Change some users (rename, move host, change DNs), add and remove some, edit a workflow.
    changed: set[str] = set()
    for i in rng.sample(range(len(users)), 4):
        users[i] = {**_user(i, rng), "first_name": f"Changed{seed}"}
        changed.add(users[i]["login_id"])
    removed = users.pop(rng.randrange(len(users)))
    changed.add(removed["login_id"])
    users.append(_user(50 + seed, rng))
    changed.add(users[-1]["login_id"])
    flows[0]["steps"] = [{"action": "play", "prompt": "welcome"}, {"action": "hangup"}]
    new = _state(tmp_path / "b", users, flows)

    found = reproject(
        old_target, old, new, {"users": changed, "workflows": {"main"}}, fp, in_place=in_place
    )
    assert found is not None
    target, delta = found
    full = project(new, fp)
    assert target.records == full.records
    assert target.depends == full.depends
    assert target.origin == full.origin
    for n in types:
        again = replan_element(
            n, types[n], target, observed[n], new.settings, options, before[n], delta[n]
        )
        expected = plan_element(n, types[n], full, observed[n], new.settings, options)
        assert again.to_json() == expected.to_json(), n


def test_reproject_declines_changes_others_depend_on(tmp_path: Path) -> None:
    rng = random.Random(1)
    users = [_user(i, rng) for i in range(3)]
    state = _state(tmp_path / "a", users, [])
    target = project(state, Fingerprinter(b"k"))
    assert reproject(target, state, state, {"roles": {"Agent"}}, Fingerprinter(b"k")) is None
