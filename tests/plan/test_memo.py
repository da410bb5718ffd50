"""Incremental planning (the plan memo) gives exactly the full plan.

Random sequences of out-of-band edits on the elements, partial applies and
config edits; after each step the plan read from the memo and the change feeds
must equal the plan computed from scratch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import marshal
import random
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from provgit.api.network import connect
from provgit.api.planning import PlanRun, plan_from_memo, plan_network
from provgit.drivers.base import ElementError, WriteOp
from provgit.incremental.memo_summary import MAC_BYTES, memo_key, seal
from provgit.plan import Plan, PlanOptions
from provgit.secrets import local_key, with_values
from provgit.simulator.store import ElementStore
from provgit.source import read_directory
from provgit.validate import validate_source

HERE = Path(__file__).parent
_yaml = YAML(typ="safe", pure=True)


def _config(root: Path, users: list[dict[str, Any]]) -> None:
    base = _yaml.load((HERE / "base.yaml").read_text())
    base["users"] = users
    root.mkdir(parents=True, exist_ok=True)
    (root / "provgit.yaml").write_text(
        json.dumps({"network": "memo", "safety": {"max_deletes": {"count": 1000}}})
    )
    (root / "network.yaml").write_text(json.dumps(base))
    (root / "audio").mkdir(exist_ok=True)
    shutil.copy(
        next((HERE.parents[1] / "sample-config").rglob("*.wav")), root / "audio" / "welcome.wav"
    )


def _user(i: int, name: str = "User") -> dict[str, Any]:
    host = ["mivb1", "mivb3", "mivb4"][i % 3]
    return {
        "login_id": f"u{i:03d}",
        "first_name": name,
        "last_name": f"N{i}",
        "role": "Agent",
        "host": host,
        "voicemail_pin": {"env": "MEMO_PIN"},
        "services": [{"dn": str(3000 + i)}],
    }


def _full(root: Path, state: Path, monkeypatch: pytest.MonkeyPatch) -> PlanRun:
    with monkeypatch.context() as m:
        m.setenv("PROVGIT_NO_MEMO", "1")
        return _plan(root, state)


def _plan(root: Path, state: Path) -> PlanRun:
    source = read_directory(root)
    valid = validate_source(source, state / "cache")
    assert valid.ok, valid.diagnostics[:3]
    return asyncio.run(plan_network(valid.state, source, root, state, PlanOptions()))


def _memo(root: Path, state: Path) -> PlanRun | None:
    return asyncio.run(plan_from_memo(read_directory(root), root, state, PlanOptions()))


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
                write = WriteOp(
                    "delete" if op.action == "delete" else "put",
                    op.collection,
                    op.key,
                    fields,
                    op.if_revision,
                )
                # A random subset breaks dependencies: refusals are part of the game.
                with contextlib.suppress(ElementError):
                    await network.drivers[ep.element].write(write)
        await network.close()

    asyncio.run(go())


def _out_of_band(state: Path, rng: random.Random) -> None:
    db = rng.choice(sorted((state / "elements").glob("mivb*.sqlite")))
    store = ElementStore(db)
    try:
        users = store.list_records("users", None, 1000).records
        choice = rng.random()
        if users and choice < 0.4:
            r = rng.choice(users)
            store.write(
                WriteOp("put", "users", r.key, {**r.fields, "first_name": "Edited"}, r.revision)
            )
        elif users and choice < 0.6:
            r = rng.choice(users)
            store.write(WriteOp("delete", "users", r.key, None, r.revision))
        elif choice < 0.8:
            key = f"legacy{rng.randrange(1000)}"
            store.write(WriteOp("put", "departments", key, {"name": key}, None), force=True)
        else:
            store.write(
                WriteOp("put", "cos", "1", {"number": 1, "comment": "Edited"}, None), force=True
            )
    finally:
        store.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_memo_plan_equals_full_plan_through_random_changes(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMO_PIN", "1234")
    rng = random.Random(seed)
    root, state = tmp_path / "config", tmp_path / "state"
    users = [_user(i) for i in range(12)]
    _config(root, users)
    run = _plan(root, state)  # full, writes the memo
    used_memo = 0
    for step in range(14):
        action = rng.choice(["apply", "apply", "edit", "edit", "config", "secret", "none"])
        if action == "apply":
            _apply_some(run, root, state, rng)
        elif action == "edit":
            _out_of_band(state, rng)
        elif action == "config":
            i = rng.randrange(len(users))
            users[i] = _user(int(users[i]["login_id"][1:]), name=f"Renamed{step}")
            if rng.random() < 0.3:
                users.append(_user(100 + step))
            _config(root, users)
        elif action == "secret":
            monkeypatch.setenv("MEMO_PIN", str(rng.randrange(10000)))
        remembered = _memo(root, state)
        full = _full(root, state, monkeypatch)
        if remembered is None:
            # Inputs changed (config or secret): the full path runs and refreshes the memo.
            assert action in ("config", "secret"), f"step {step}: memo unused after {action}"
            run = _plan(root, state)
            assert _comparable(run.plan) == _comparable(full.plan)
            continue
        used_memo += 1
        assert _comparable(remembered.plan) == _comparable(full.plan), f"step {step} ({action})"
        run = full
    assert used_memo >= 5


def _memo_doc(state: Path, element: str) -> tuple[Path, dict[str, Any]]:
    path = state / "memo" / "elements" / f"{element}.marshal"
    return path, marshal.loads(path.read_bytes()[MAC_BYTES:])  # past its seal


def _write_memo_doc(state: Path, path: Path, doc: dict[str, Any]) -> None:
    """`doc` as the element memo at `path`, sealed with the state's key (as provgit seals it)."""
    path.write_bytes(seal(memo_key(local_key(state)), marshal.dumps(doc)))


def test_a_memo_keeps_an_adds_fields_once_in_the_target_store_and_plans_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMO_PIN", "1234")
    root, state = tmp_path / "config", tmp_path / "state"
    _config(root, [_user(i) for i in range(6)])
    _plan(root, state)  # onto empty elements: every record an add

    _, doc = _memo_doc(state, "mivb1")
    adds = [i for i, o in enumerate(doc["operations"]) if o[0] == "add"]
    assert adds and doc["stored_without"] == adds
    payload = [op for chunk in marshal.loads(doc["payload"]) for op in marshal.loads(chunk)]
    assert all(payload[i][1] is None for i in adds)
    remembered = _memo(root, state)
    assert remembered is not None
    full = _full(root, state, monkeypatch)
    assert _comparable(remembered.plan) == _comparable(full.plan)
    assert [op.fields for ep in remembered.plan.elements for op in ep.operations] == [
        op.fields for ep in full.plan.elements for op in ep.operations
    ]


def test_an_older_memo_format_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # plan-memo-3 stored every add's fields; read now, a None there would be
    # taken for "in the target store": such a memo is not read at all.
    monkeypatch.setenv("MEMO_PIN", "1234")
    root, state = tmp_path / "config", tmp_path / "state"
    _config(root, [_user(i) for i in range(6)])
    _plan(root, state)
    path, doc = _memo_doc(state, "mivb1")
    _write_memo_doc(state, path, {**doc, "format": "plan-memo-3"})

    assert _memo(root, state) is None
    rerun = _plan(root, state)  # the full path plans and writes the memo anew
    assert _comparable(rerun.plan) == _comparable(_full(root, state, monkeypatch).plan)
    assert _memo(root, state) is not None


def test_a_memo_whose_target_store_lacks_an_adds_row_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMO_PIN", "1234")
    root, state = tmp_path / "config", tmp_path / "state"
    _config(root, [_user(i) for i in range(6)])
    _plan(root, state)
    with contextlib.closing(sqlite3.connect(state / "memo" / "target.sqlite")) as db:
        gone = db.execute(
            "DELETE FROM records WHERE element = 'mivb1' AND collection = 'users'"
        ).rowcount
        db.commit()
    assert gone > 0

    assert _memo(root, state) is None  # never a plan with an add of no fields
