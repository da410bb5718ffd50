"""A plan after a change to shared records (templates, roles, COS, elements,
prompts) re-projects and re-plans only what the change reaches, and gives
exactly the full plan.

Random sequences of config edits across several files, out-of-band edits on
the elements and partial applies; after each config edit the plan taken from
the last one (`plan_shared_change`) must equal the plan computed from scratch,
and the target it stored must equal the full projection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from provgit.api import Config, InvalidConfig, planning_shared
from provgit.api import config as config_module
from provgit.api.network import connect, fingerprinter
from provgit.api.planning import PlanRun, plan_from_memo, plan_network
from provgit.api.planning_shared import plan_shared_change, plan_shared_light
from provgit.drivers.base import ElementError, WriteOp
from provgit.incremental.disk import PlanMemo
from provgit.incremental.store import TargetStore
from provgit.observe import ObservationCache
from provgit.plan import Plan, PlanOptions
from provgit.projection import project
from provgit.secrets import with_values
from provgit.simulator.store import ElementStore
from provgit.source import read_directory
from provgit.validate import validate_source
from provgit.wire.protocol import StoredRecord

HERE = Path(__file__).parent
_yaml = YAML(typ="safe", pure=True)


def _network() -> dict[str, Any]:
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
    base["classes_of_service"].append({"number": 7, "comment": "Sales"})
    return base


# Which file holds which kinds: an edit changes one file, as an admin's would.
FILES = {
    "network.yaml": ("elements", "classes_of_service", "cor_groups", "departments", "locations"),
    "roles.yaml": ("templates", "roles"),
    "users.yaml": ("users",),
    "ivr.yaml": ("ivr_media_servers", "prompts", "subroutines", "workflows"),
}


def _write(root: Path, net: dict[str, Any]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    settings = {"network": "shared", "safety": {"max_deletes": {"count": 1000}}}
    (root / "provgit.yaml").write_text(json.dumps(settings))
    for name, kinds in FILES.items():
        (root / name).write_text(json.dumps({k: net[k] for k in kinds}))
    (root / "audio").mkdir(exist_ok=True)
    wav = next((HERE.parents[1] / "sample-config").rglob("*.wav"))
    shutil.copy(wav, root / "audio" / "welcome.wav")


def _user(i: int, rng: random.Random, name: str = "User") -> dict[str, Any]:
    user: dict[str, Any] = {
        "login_id": f"u{i:03d}",
        "first_name": name,
        "last_name": f"N{i}",
        "role": rng.choice(["Agent", "Lead"]),
        "host": rng.choice(["mivb1", "mivb2", "mivb3", "mivb4"]),
        "voicemail_pin": {"env": "SHARED_PIN"},
        "services": [{"dn": str(3000 + i)}],
    }
    if rng.random() < 0.3:
        user["template"] = rng.choice(["Basic", "Pair"])
    return user


def _written(
    tmp_path: Path, seed: int, users: int
) -> tuple[Path, Path, dict[str, Any], random.Random]:
    """The base network with `users` random users (from `seed`) written to
    tmp_path/config: (config, state directory, network, the random source)."""
    rng = random.Random(seed)
    root, state = tmp_path / "config", tmp_path / "state"
    net = _network()
    net["users"] = [_user(i, rng) for i in range(users)]
    _write(root, net)
    return root, state, net, rng


def _edit(net: dict[str, Any], rng: random.Random, step: int) -> str:
    """One config edit; returns its name."""
    what = rng.choice(["template", "template", "role", "cos", "partner", "element", "user"])
    what = rng.choice([what, what, "prompt"])
    if what == "template":
        t = rng.choice(net["templates"])
        phone = t["phones"][0]
        phone["device_type"] = rng.choice(["6920", "6930", "6940"])
        t["description"] = f"edit {step}"
    elif what == "role":
        r = rng.choice(net["roles"])
        r["template"] = rng.choice(["Basic", "Pair"])
    elif what == "cos":
        c = rng.choice(net["classes_of_service"])
        c["comment"] = f"edit {step}"
    elif what == "partner":
        by_name = {e["name"]: e for e in net["elements"]}
        paired = by_name["mivb1"].get("partner") == "mivb2"
        by_name["mivb1"]["partner"] = "mivb3" if paired else "mivb2"
        by_name["mivb2"]["partner"] = None if paired else "mivb1"
        by_name["mivb3"]["partner"] = "mivb1" if paired else None
    elif what == "element":
        rng.choice(net["elements"])["description"] = f"edit {step}"
    elif what == "user":
        i = rng.randrange(len(net["users"]))
        net["users"][i] = _user(int(net["users"][i]["login_id"][1:]), rng, f"Renamed{step}")
    else:
        prompts = net["prompts"]
        if len(prompts) == 1:
            prompts.append({**prompts[0], "language": "fr-CA"})
        else:
            prompts.pop()
    return what


def _plan(root: Path, state: Path) -> PlanRun:
    source = read_directory(root)
    valid = validate_source(source, state / "cache")
    assert valid.ok, valid.diagnostics[:3]
    return asyncio.run(plan_network(valid.state, source, root, state, PlanOptions()))


def _shared(root: Path, state: Path, light: bool = False) -> PlanRun | None:
    source = read_directory(root)
    if light:
        # Validated from the files' stored facts; no user model but the reached ones.
        found = asyncio.run(plan_shared_light(source, root, state, PlanOptions()))
        return None if isinstance(found, str) else found
    valid = validate_source(source, state / "cache")
    assert valid.ok, valid.diagnostics[:3]
    return asyncio.run(plan_shared_change(valid.state, source, root, state, PlanOptions()))


def _full(root: Path, state: Path, monkeypatch: pytest.MonkeyPatch) -> PlanRun:
    with monkeypatch.context() as m:
        m.setenv("PROVGIT_NO_MEMO", "1")
        return _plan(root, state)


def _comparable(plan: Plan) -> list[Any]:
    return [
        (
            e["element"],
            e["observed_revision"],
            e["observed_records"],
            e["refusal"],
            e["warnings"],
            e["operations"],
        )
        for e in plan.to_json()["elements"]
    ]


def _apply_some(run: PlanRun, root: Path, state: Path, rng: random.Random) -> None:
    network = connect(run.state, state, root)

    async def go() -> None:
        for ep in run.plan.elements:
            for op in ep.operations:
                if rng.random() < 0.5:
                    continue
                fields = with_values(op.fields) if op.fields is not None else None
                action = "delete" if op.action == "delete" else "put"
                write = WriteOp(action, op.collection, op.key, fields, op.if_revision)
                with contextlib.suppress(ElementError):
                    await network.drivers[ep.element].write(write)
        await network.close()

    asyncio.run(go())


def _out_of_band(state: Path, rng: random.Random) -> None:
    store = ElementStore(rng.choice(sorted((state / "elements").glob("mivb*.sqlite"))))
    try:
        users = store.list_records("users", None, 1000).records
        if users and rng.random() < 0.6:
            r = rng.choice(users)
            fields = {**r.fields, "first_name": "Edited"}
            store.write(WriteOp("put", "users", r.key, fields, r.revision))
        else:
            store.write(
                WriteOp("put", "cos", "1", {"number": 1, "comment": "Edited"}, None), force=True
            )
    finally:
        store.close()


def _stored_is_the_projection(root: Path, state: Path) -> None:
    source = read_directory(root)
    valid = validate_source(source, state / "cache")
    stored = TargetStore(PlanMemo(state).target_path).load()
    full = project(valid.state, fingerprinter(valid.state, state), source.read_other)
    assert stored is not None
    assert {e: r for e, r in stored.records.items() if r} == {
        e: r for e, r in full.records.items() if r
    }
    # Where each resource lands (what status reads) is what a full save writes.
    fresh = state.parent / "fresh" / "target.sqlite"
    fresh.parent.mkdir(exist_ok=True)
    fresh.unlink(missing_ok=True)
    TargetStore(fresh).save(full, "fresh")
    assert _landing(PlanMemo(state).target_path) == _landing(fresh)


def _landing(path: Path) -> tuple[list[Any], list[Any]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return (
            db.execute("SELECT * FROM resources ORDER BY 1, 2").fetchall(),
            db.execute("SELECT * FROM landing ORDER BY 1, 2, 3").fetchall(),
        )


@pytest.mark.parametrize(
    ("seed", "light", "chunk"),
    [(s, True, None) for s in range(1, 8)]
    + [(s, False, None) for s in range(1, 4)]
    # Memo chunks of 2 operations: each read decodes some chunks and leaves
    # others, each save writes some as read and some again.
    + [(s, True, 2) for s in range(8, 11)],
)
def test_shared_change_plan_equals_full_plan_through_random_edits(
    seed: int, light: bool, chunk: int | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHARED_PIN", "1234")
    if chunk is not None:
        monkeypatch.setattr("provgit.incremental.disk.CHUNK", chunk)
    root, state, net, rng = _written(tmp_path, seed, 16)
    run = _plan(root, state)  # full, writes the memo
    shared_plans = 0
    for step in range(12):
        roll = rng.random()
        if roll < 0.25:
            _apply_some(run, root, state, rng)
        elif roll < 0.4:
            _out_of_band(state, rng)
        edit = _edit(net, rng, step)
        _write(root, net)
        full = _full(root, state, monkeypatch)
        changed = _shared(root, state, light)
        assert changed is not None, f"step {step}: {edit} took the full path"
        shared_plans += 1
        assert _comparable(changed.plan) == _comparable(full.plan), f"step {step} ({edit})"
        _stored_is_the_projection(root, state)
        # The memo is current again: the next plan with no change comes from it.
        remembered = asyncio.run(plan_from_memo(read_directory(root), root, state, PlanOptions()))
        assert remembered is not None, f"step {step}: memo not current after {edit}"
        assert _comparable(remembered.plan) == _comparable(full.plan)
        run = full
    assert shared_plans == 12


def test_a_change_whose_reach_cannot_be_bounded_takes_the_full_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHARED_PIN", "1234")
    root, state, net, _rng = _written(tmp_path, 9, 6)
    _plan(root, state)
    # mivb4 moves to the east cluster: every cluster-wide record moves with it.
    mivb4 = next(e for e in net["elements"] if e["name"] == "mivb4")
    mivb4.update(cluster="east", admin_group="east")
    _write(root, net)
    assert _shared(root, state, light=True) is None
    assert _shared(root, state) is None
    _plan(root, state)
    # Settings: the sharing scopes may move every record.
    (root / "provgit.yaml").write_text(json.dumps({"network": "renamed"}))
    assert _shared(root, state, light=True) is None
    assert _shared(root, state) is None
    _plan(root, state)
    # A template edit after those is bounded again.
    net["templates"][0]["description"] = "bounded"
    _write(root, net)
    (root / "provgit.yaml").write_text(json.dumps({"network": "renamed"}))
    full = _full(root, state, monkeypatch)
    changed = _shared(root, state)
    assert changed is not None
    assert _comparable(changed.plan) == _comparable(full.plan)


def _no_full_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("every user's model was built")

    monkeypatch.setattr(config_module, "validate_source", refuse)


def test_config_plan_after_a_template_edit_builds_no_user_but_the_reached_and_status_is_true(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHARED_PIN", "1234")
    root, state, net, _rng = _written(tmp_path, 11, 20)
    assert asyncio.run(Config.open(root, state).reconcile()).exit_code == 0
    # A template's phone and one user's name, in two files.
    pair = next(t for t in net["templates"] if t["name"] == "Pair")
    pair["phones"][0]["device_type"] = "6940"
    net["users"][3]["first_name"] = "Edited"
    _write(root, net)
    full = _full(root, state, monkeypatch)
    with monkeypatch.context() as m:
        _no_full_validation(m)
        config = Config.open(root, state)
        run = asyncio.run(config.plan())
        assert _comparable(run.plan) == _comparable(full.plan)
        assert any(ep.operations for ep in run.plan.elements)
        applied = asyncio.run(config.apply(run))
    assert applied.exit_code == 0
    status = Config.open(root, state).status()
    assert status.in_sync and status.problems == 0
    assert all(r["status"] == "Sync Completed" for r in status.document["resources"])
    _stored_is_the_projection(root, state)


def test_a_template_edit_that_breaks_the_config_is_reported_and_changes_no_memo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHARED_PIN", "1234")
    root, state, net, _rng = _written(tmp_path, 12, 6)
    _plan(root, state)
    memo_files = {p: p.read_bytes() for p in (state / "memo").rglob("*") if p.is_file()}
    # Two primary phones: the template fails its own checks.
    pair = next(t for t in net["templates"] if t["name"] == "Pair")
    pair["phones"][1]["primary"] = True
    _write(root, net)
    with pytest.raises(InvalidConfig) as raised:
        asyncio.run(Config.open(root, state).plan())
    where = raised.value.diagnostics[0]
    assert where.location.file == "roles.yaml" and "primary" in where.message
    assert {p: p.read_bytes() for p in (state / "memo").rglob("*") if p.is_file()} == memo_files


def test_a_shared_plan_stopped_after_writing_the_owners_plans_in_full_next_and_equals_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHARED_PIN", "1234")
    root, state, net, _rng = _written(tmp_path, 5, 8)
    _plan(root, state)
    net["templates"][0]["description"] = "stopped"
    _write(root, net)

    def stop(*_: Any, **__: Any) -> Any:
        raise KeyboardInterrupt("stopped after the target and owners were written")

    # Stopped where the caches are read: the target store and the owners memo
    # are the new config's already, the meta and element memos the old one's.
    with monkeypatch.context() as m:
        m.setattr(planning_shared, "plan_incrementally", stop)
        with pytest.raises(KeyboardInterrupt):
            _shared(root, state, light=True)
    owners = (state / "memo" / "owners.marshal").read_bytes()
    # Neither path reads that half-written memo as current: both send it in full.
    assert _shared(root, state, light=True) is None
    assert _shared(root, state) is None
    assert (state / "memo" / "owners.marshal").read_bytes() == owners
    full = _full(root, state, monkeypatch)
    again = _plan(root, state)  # the full path, with the memo: writes it whole
    assert _comparable(again.plan) == _comparable(full.plan)
    net["templates"][0]["description"] = "bounded again"
    _write(root, net)
    full = _full(root, state, monkeypatch)
    changed = _shared(root, state, light=True)
    assert changed is not None
    assert _comparable(changed.plan) == _comparable(full.plan)


def test_shared_plan_equals_full_plan_when_an_edit_reaches_few_of_many_cached_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200 users, four of them on a rarely used template: an edit of it
    reaches a handful of MiCollab's users, which the observation cache gives
    by reading each where it lies; an edit of a common one, most of them
    (the whole collection decoded). Either way the plan is the full plan's,
    with some of the last plan applied and the elements edited out of band."""
    monkeypatch.setenv("SHARED_PIN", "1234")
    rng = random.Random(16)
    root, state = tmp_path / "config", tmp_path / "state"
    net = _network()
    soft = {"label": "Soft", "device_type": "MiCollab", "primary": True}
    rare = {**net["templates"][1], "name": "Rare", "phones": [soft]}
    net["templates"].append(rare)
    net["users"] = [_user(i, rng) for i in range(200)]
    for user in rng.sample(net["users"], 4):
        user["template"] = "Rare"
    _write(root, net)
    asked: list[int] = []
    fields_of = ObservationCache.fields_of

    def counting(
        cache: ObservationCache, element: str, refs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], StoredRecord | None] | None:
        refs = list(refs)
        if element == "mcl":
            asked.append(sum(1 for c, _ in refs if c == "users"))
        return fields_of(cache, element, refs)

    monkeypatch.setattr(ObservationCache, "fields_of", counting)
    run = _plan(root, state)
    for step in range(8):
        if step % 3 == 2:
            _apply_some(run, root, state, rng)
        elif step % 3 == 1:
            _out_of_band(state, rng)
        t = rare if step % 2 == 0 else rng.choice(net["templates"][:2])
        t["phones"][-1]["label"] = f"Edit {step}"
        _write(root, net)
        full = _full(root, state, monkeypatch)
        changed = _shared(root, state, light=step % 2 == 0)
        assert changed is not None, f"step {step} took the full path"
        assert _comparable(changed.plan) == _comparable(full.plan), f"step {step}"
        _stored_is_the_projection(root, state)
        run = full
    # Both ways of reading the cache were taken: a few of 200, and most of them.
    raw = ObservationCache(state).raw("mcl")
    assert raw is not None
    held = len(raw[1]["users"])
    assert 0 < min(n for n in asked if n) * 16 < held < max(asked) * 2, (asked, held)
