"""Re-projecting only changed resources, and re-planning only changed records,
give exactly what the full computation gives (the watcher relies on both)."""

from __future__ import annotations

import dataclasses
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
from provgit.projection.reach import DependencyIndex
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


def _shared_state(tmp: Path, users: list[dict[str, Any]], edit: dict[str, Any]) -> DesiredState:
    base = _yaml.load((HERE / "base.yaml").read_text())
    base["templates"].append(
        {
            "name": "Pair",
            "admin_group": "east",
            "phones": [
                {"label": "Desk", "device_type": "6930", "primary": True},
                {"label": "Soft", "device_type": "MiCollab"},
            ],
            "cos": {"day": 1},
        }
    )
    base["roles"].append({"name": "Lead", "template": "Pair"})
    base["users"] = users
    for kind, change in edit.items():
        if kind == "elements":
            base["elements"] = [{**e, **change.get(e["name"], {})} for e in base["elements"]]
        else:
            base[kind] = change(base[kind])
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "provgit.yaml").write_text("network: inc\n")
    (tmp / "network.yaml").write_text(json.dumps(base))
    (tmp / "audio").mkdir(exist_ok=True)
    wav = next((HERE.parents[1] / "sample-config").rglob("*.wav")).read_bytes()
    (tmp / "audio" / "welcome.wav").write_bytes(wav)
    result = validate_source(read_directory(tmp), None)
    assert result.ok, result.diagnostics[:3]
    return result.state


def _template_phones(ts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**t, "phones": [{**t["phones"][0], "device_type": "6940"}]} for t in ts]


def _template_scope(ts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**t, "admin_group": "west"} if t["name"] == "Pair" else t for t in ts]


def _role_template(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "template": "Pair"} if r["name"] == "Agent" else r for r in rs]


def _role_described(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "description": "Team leads"} if r["name"] == "Lead" else r for r in rs]


def _cos_options(cs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**c, "comment": "Changed", "options": {"toll_denied": True}} for c in cs]


def _prompt_added(ps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Steps name prompts by name: a second language of "welcome" is one more dependency.
    return [*ps, {**ps[0], "language": "fr-CA"}]


SHARED_EDITS: dict[str, tuple[dict[str, Any], dict[str, set[str]]]] = {
    "template phones": ({"templates": _template_phones}, {"templates": {"Basic", "Pair"}}),
    "template admin group": ({"templates": _template_scope}, {"templates": {"Pair"}}),
    "role template": ({"roles": _role_template}, {"roles": {"Agent"}}),
    "role description": ({"roles": _role_described}, {"roles": {"Lead"}}),
    "cos options": ({"classes_of_service": _cos_options}, {"classes_of_service": {"1"}}),
    "prompt added": ({"prompts": _prompt_added}, {"prompts": {"welcome:fr-CA"}}),
    "element partner": (
        {
            "elements": {
                "mivb1": {"partner": "mivb3"},
                "mivb2": {"partner": None},
                "mivb3": {"partner": "mivb1"},
            }
        },
        {"elements": {"mivb1", "mivb2", "mivb3"}},
    ),
    "element description": ({"elements": {"mivb4": {"description": "moved"}}}, {}),
}


@pytest.mark.parametrize("edit", sorted(SHARED_EDITS))
@pytest.mark.parametrize("seed", [1, 2])
def test_reproject_after_a_shared_record_change_equals_the_full_computation(
    edit: str, seed: int, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    users = [_user(i, rng) for i in range(15)]
    for i, u in enumerate(users):
        u["role"] = ["Agent", "Lead"][i % 2]
        if i % 4 == 0:
            u["template"] = rng.choice(["Basic", "Pair"])
    users[0]["host"] = "mivb2"
    fp = Fingerprinter(b"k")
    old = _shared_state(tmp_path / "a", users, {})
    old_target = project(old, fp)
    observed = _observed(old_target, rng)
    types = {n: e.type for n, e in old.elements.items()}
    options = PlanOptions()
    before = {
        n: plan_element(n, types[n], old_target, observed[n], old.settings, options) for n in types
    }
    change, changed = SHARED_EDITS[edit]
    new = _shared_state(tmp_path / "b", users, change)
    index = DependencyIndex.of(old)
    index.update(old, new, changed)
    found = reproject(old_target, old, new, changed, fp, in_place=bool(seed & 1), index=index)
    assert found is not None, edit
    target, delta = found
    full = project(new, fp)
    assert target.records == full.records
    assert target.depends == full.depends
    assert target.origin == full.origin
    if edit != "element description":
        assert any(delta.values()), "the edit changes records"
    for n in types:
        again = replan_element(
            n, types[n], target, observed[n], new.settings, options, before[n], delta[n]
        )
        expected = plan_element(n, types[n], full, observed[n], new.settings, options)
        assert again.to_json() == expected.to_json(), n


def test_a_template_change_reaches_only_its_users_and_roles(tmp_path: Path) -> None:
    rng = random.Random(3)
    users = [_user(i, rng) for i in range(6)]
    for i, u in enumerate(users):
        u["role"] = "Lead" if i < 2 else "Agent"
    users[5]["template"] = "Pair"
    state = _shared_state(tmp_path / "a", users, {})
    reached = DependencyIndex.of(state).reach({"templates": {"Pair"}}, (), state)
    assert reached == {"templates": {"Pair"}, "roles": {"Lead"}, "users": {"u000", "u001", "u005"}}
    cos = DependencyIndex.of(state).reach({"classes_of_service": {"1"}}, (), state)
    assert cos == {"classes_of_service": {"1"}}


def test_the_index_from_user_edges_is_the_index_from_the_user_models(tmp_path: Path) -> None:
    """The shared path builds its index from each user's (key, template, role,
    host) without the models: the same tables."""
    rng = random.Random(8)
    users = [_user(i, rng) for i in range(40)]
    for i, u in enumerate(users):
        u["role"] = ["Lead", "Agent"][i % 2]
        if i % 3 == 0:
            u["template"] = rng.choice(["Basic", "Pair"])
    state = _shared_state(tmp_path / "a", users, {})
    edges = [(k, u.template, u.role, u.host) for k, u in state.of("users").items()]
    from_edges = DependencyIndex.of_edges(edges, state.of("roles"))
    from_models = DependencyIndex.of(state)
    assert vars(from_edges) == vars(from_models)
    assert from_edges.untemplated_users_of_role and from_edges.users_of_template


def test_reproject_declines_changes_whose_reach_is_unbounded(tmp_path: Path) -> None:
    rng = random.Random(1)
    users = [_user(i, rng) for i in range(3)]
    state = _state(tmp_path / "a", users, [])
    target = project(state, Fingerprinter(b"k"))
    base = _yaml.load((HERE / "base.yaml").read_text())
    # An element moved to another cluster re-scopes every cluster-wide record.
    moved = _shared_state(
        tmp_path / "b", users, {"elements": {"mivb4": {"cluster": "east", "admin_group": "east"}}}
    )
    assert base["elements"][4]["cluster"] == "west"
    assert reproject(target, state, moved, {"elements": {"mivb4"}}, Fingerprinter(b"k")) is None
    scoped = state.settings.model_copy(update={"network": "other"})
    other = dataclasses.replace(state, settings=scoped)
    assert reproject(target, state, other, {"users": set()}, Fingerprinter(b"k")) is None
