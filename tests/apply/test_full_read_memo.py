"""A due full read on the memo path: the plan equals the full path's.

Real simulator processes. One element's content is changed behind its feed at
random (edits straight into its database file, which neither its feed nor its
content digest knows; silent edits, adds and deletes through /admin/edit,
which move the digest only), then the state directory is copied twice: one
copy plans through the memo (the full path refused), the other in full
(`PROVGIT_NO_MEMO`). Their plans and what each says the feed missed must be
the same, with the full read forced (`--full-read`) and without it (the
digest caught the silent ones).
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import sqlite3
import urllib.error
from pathlib import Path
from typing import Any

import pytest

from provgit.api import Config
from provgit.api.planning import PlanRun
from provgit.observe import ObservationCache
from provgit.plan import Plan

from .helpers import Sim, cli, journal, write_config

pytestmark = pytest.mark.slow


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


def _db_edit(sim: Sim, rng: random.Random, n: int) -> str:
    """Change one string field of a random record, or add a class of service,
    in the element's database file: no feed entry, no digest moved."""
    with sqlite3.connect(sim.db) as db:
        if rng.random() < 0.3:
            key = str(80 + n)
            fields = {"number": 80 + n, "comment": f"Backdoor{n}"}
            db.execute(
                "INSERT OR REPLACE INTO records (collection, key, fields, revision)"
                " VALUES ('cos', ?, ?, 1)",
                (key, json.dumps(fields)),
            )
            return f"db add cos/{key}"
        rows = db.execute("SELECT collection, key, fields FROM records").fetchall()
        rng.shuffle(rows)
        for collection, key, text in rows:
            fields = json.loads(text)
            names = [k for k, v in fields.items() if isinstance(v, str) and k[:1] != "_"]
            if names:
                name = rng.choice(sorted(names))
                fields[name] = f"Restored{n}"
                db.execute(
                    "UPDATE records SET fields = ? WHERE collection = ? AND key = ?",
                    (json.dumps(fields), collection, key),
                )
                return f"db edit {collection}/{key}.{name}"
    return "nothing"


def _silent_edit(sim: Sim, rng: random.Random, n: int) -> str:
    """A silent add, change or delete of a class of service (no feed entry)."""
    cos = sorted(sim.records().get("cos", {}))
    choice = rng.random()
    if choice < 0.4 or not cos:
        key = str(60 + n)
        body = {"op": "put", "collection": "cos", "key": key}
        body["fields"] = {"number": 60 + n, "comment": f"Rogue{n}"}
        what = f"silent add cos/{key}"
    elif choice < 0.7:
        key = rng.choice(cos)
        body = {"op": "put", "collection": "cos", "key": key}
        body["fields"] = {"number": int(key), "comment": f"Silent{n}"}
        what = f"silent edit cos/{key}"
    else:
        key = rng.choice(cos)
        body = {"op": "delete", "collection": "cos", "key": key}
        what = f"silent delete cos/{key}"
    try:
        sim.admin("/admin/edit", {**body, "silent": True})
    except urllib.error.HTTPError as e:
        assert e.code == 422, e  # a class of service still in use: the element refuses
        return f"{what} refused"
    return what


def _plan(root: Path, state: Path, full_read: bool) -> PlanRun:
    return asyncio.run(Config.at(root, state).plan(full_read=full_read))


def _through_memo(
    root: Path, state: Path, full_read: bool, monkeypatch: pytest.MonkeyPatch
) -> PlanRun:
    def refused(*args: object, **kwargs: object) -> PlanRun:
        raise AssertionError("the plan left the memo path")

    with monkeypatch.context() as m:
        m.setattr("provgit.api.planning_shared.plan_changed", refused)
        return _plan(root, state, full_read)


def _in_full(root: Path, state: Path, full_read: bool, monkeypatch: pytest.MonkeyPatch) -> PlanRun:
    with monkeypatch.context() as m:
        m.setenv("PROVGIT_NO_MEMO", "1")
        return _plan(root, state, full_read)


@pytest.mark.parametrize("seed", [1, 2])
def test_memo_path_full_read_plans_what_the_full_path_plans(
    sims: list[Sim], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = random.Random(seed)
    root = write_config(tmp_path / "config", sims, users=12)
    state = root / ".provgit"
    for _ in range(2):  # the second run takes the memo path
        ran = cli("reconcile", str(root))
        assert ran.code == 0, ran.out + ran.err
    cs1 = sims[0]
    n = 0
    for round_ in range(3):
        done = []
        for _ in range(rng.randrange(1, 5)):
            n += 1
            edit = _db_edit if rng.random() < 0.5 else _silent_edit
            done.append(edit(cs1, rng, n))
        for full_read in (False, True):
            memo_state, full_state = (
                tmp_path / f"m{round_}{full_read}",
                tmp_path / f"f{round_}{full_read}",
            )
            shutil.copytree(state, memo_state)
            shutil.copytree(state, full_state)
            memo = _through_memo(root, memo_state, full_read, monkeypatch)
            full = _in_full(root, full_state, full_read, monkeypatch)
            said = f"round {round_}, full_read {full_read}: {done}"
            assert _comparable(memo.plan) == _comparable(full.plan), said
            assert dict(memo.feed_missed) == dict(full.feed_missed), said
            if full_read:
                assert set(memo.feed_missed) == {"cs1"} or not memo.feed_missed, said
                memo_at = ObservationCache(memo_state).full_read_at("cs1")
                assert memo_at is not None and memo_at >= ObservationCache(state).full_read_at(
                    "cs1"
                ), said  # type: ignore[operator]
        ran = cli("reconcile", str(root), "--full-read")
        assert ran.code == 0, ran.out + ran.err
        # Corrected: nothing more to do, and nothing left unreviewed.
        again = _through_memo(root, state, True, monkeypatch)
        assert not [op for ep in again.plan.elements for op in ep.operations], said
        assert not again.feed_missed, said


def _edit_cos7(sim: Sim, comment: str) -> None:
    with sqlite3.connect(sim.db) as db:
        (text,) = db.execute(
            "SELECT fields FROM records WHERE collection='cos' AND key='7'"
        ).fetchone()
        fields = dict(json.loads(text), comment=comment)
        db.execute(
            "UPDATE records SET fields = ? WHERE collection = 'cos' AND key = '7'",
            (json.dumps(fields),),
        )


def test_a_feed_missed_found_on_the_memo_path_is_said_once_and_corrected(
    sims: list[Sim], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_config(tmp_path / "config", sims, users=4)
    for _ in range(2):
        ran = cli("reconcile", str(root))
        assert ran.code == 0, ran.out + ran.err
    cs1 = sims[0]
    _edit_cos7(cs1, "Restored")

    def refused(*args: object, **kwargs: object) -> PlanRun:
        raise AssertionError("the plan left the memo path")

    monkeypatch.setattr("provgit.api.planning_shared.plan_changed", refused)
    ran = cli("reconcile", str(root), "--full-read")
    assert ran.code == 0, ran.out + ran.err
    assert cs1.records()["cos"]["7"]["comment"] == "Sales"
    with journal(root / ".provgit") as j:
        events = j.events()
        drift = [(d.element, d.key, d.state) for d in j.drift_items()]
    assert [e.element for e in events if e.type == "feed_missed"] == ["cs1"]
    assert any(e.type == "drift" and "cos/7" in e.message for e in events)
    ran = cli("reconcile", str(root), "--full-read")
    assert ran.code == 0, ran.out + ran.err
    with journal(root / ".provgit") as j:
        assert [e.element for e in j.events() if e.type == "feed_missed"] == ["cs1"], drift
    status = json.loads(cli("status", str(root), "--format", "json").out)
    assert status["elements"]["cs1"]["status"] == "Sync Completed"
