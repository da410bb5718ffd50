"""A plan after a shared-record change writes its target rows, owners and
element memos in forked children (`incremental.apart`) while it re-plans and
renders (#16): the memo they leave is the one a plan in one process leaves, a
child that fails leaves no memo a later plan trusts, and within
`memo_written_behind` the plan returns before they finish."""

from __future__ import annotations

import asyncio
import contextlib
import marshal
import os
import shutil
import sqlite3
import time
import weakref
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

from provgit.api import Config, PlanOptions, memo_written_behind, planning_shared
from provgit.api.planning import plan_from_memo
from provgit.incremental import apart, shared
from provgit.incremental.disk import PlanMemo
from provgit.incremental.memo_summary import MAC_BYTES
from provgit.source import read_directory


@pytest.fixture(autouse=True)
def _every_change_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """These networks are small: every change is big enough to write apart."""
    monkeypatch.setattr(planning_shared, "APART_RECORDS", 0, raising=False)


def _tables(path: Path) -> dict[str, list[Any]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {
            t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall()
            for t in ("records", "landing", "resources")
        } | {"meta": db.execute("SELECT k, v FROM meta ORDER BY k").fetchall()}


def _memo(state: Path) -> dict[str, Any]:
    """The memo's files as values (element memos past their seal)."""
    memo = PlanMemo(state)
    found: dict[str, Any] = {
        f.name: marshal.loads(f.read_bytes()[MAC_BYTES:])
        for f in sorted((memo.dir / "elements").glob("*.marshal"))
    }
    found["owners"] = marshal.loads((memo.dir / "owners.marshal").read_bytes())
    found["target"] = _tables(memo.target_path)
    meta = memo.load_meta()
    assert meta is not None
    found["meta"] = (meta.digest, meta.inputs, meta.references)
    return found


def _template_edit(root: Path, net: dict[str, Any], value: str) -> None:
    pair = next(t for t in net["templates"] if t["name"] == "Pair")
    pair["phones"][0]["device_type"] = value
    _write(root, net)


def test_a_template_change_written_apart_leaves_the_memo_one_process_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert apart.forking_allowed(), "the test process must be single-threaded to fork"
    monkeypatch.setenv("SHARED_PIN", "1234")
    root, state, net, _rng = _written(tmp_path, 31, 24)
    _plan(root, state)  # full: the memo
    inline = tmp_path / "inline"
    shutil.copytree(state, inline)  # the same key, elements and memo
    parent = os.getpid()
    real = shared.save

    def save(directory: Path, owners: shared.Owners) -> None:
        real(directory, owners)
        if os.getpid() != parent:  # only a child leaves a mark (a file beside the owners)
            (directory / "saved-by-child").write_text(str(os.getpid()))

    monkeypatch.setattr(shared, "save", save)
    _template_edit(root, net, "6940")
    run = _shared(root, state, light=True)
    assert run is not None and run.plan.has_changes
    assert (state / "memo" / "saved-by-child").exists()
    (state / "memo" / "saved-by-child").unlink()
    with monkeypatch.context() as m:
        m.setenv("PROVGIT_NO_FORK", "1")
        in_process = _shared(root, inline, light=True)
    assert in_process is not None
    assert not (inline / "memo" / "saved-by-child").exists()
    assert _comparable(run.plan) == _comparable(in_process.plan)
    assert _memo(state) == _memo(inline)
    full = _full(root, state, monkeypatch)
    assert _comparable(run.plan) == _comparable(full.plan)
    _stored_is_the_projection(root, state)
    # The memo the children wrote is trusted: the same config plans from it,
    # and the next template change takes the shared path again.
    source = read_directory(root)
    hit = asyncio.run(plan_from_memo(source, root, state, PlanOptions()))
    assert hit is not None and _comparable(hit.plan) == _comparable(full.plan)
    _template_edit(root, net, "6920")
    again = _shared(root, state, light=True)
    assert again is not None and (state / "memo" / "saved-by-child").exists()
    assert _comparable(again.plan) == _comparable(_full(root, state, monkeypatch).plan)
    # A change that reaches fewer records than are worth a fork: in process.
    (state / "memo" / "saved-by-child").unlink()
    monkeypatch.setattr(planning_shared, "APART_RECORDS", 10_000)
    _template_edit(root, net, "6930")
    small = _shared(root, state, light=True)
    assert small is not None and not (state / "memo" / "saved-by-child").exists()
    assert _comparable(small.plan) == _comparable(_full(root, state, monkeypatch).plan)
    _stored_is_the_projection(root, state)


@pytest.mark.parametrize("failing", ["owners", "element memo"])
def test_a_child_that_fails_leaves_no_memo_a_later_plan_trusts(
    failing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child that cannot write (a full disk) or is killed: the plan it was
    for is still returned whole, the meta is gone (no memo), and the next
    plan is the full one."""
    monkeypatch.setenv("SHARED_PIN", "1234")
    root, state, net, _rng = _written(tmp_path, 32, 16)
    _plan(root, state)
    parent = os.getpid()
    name, where = ("save", shared) if failing == "owners" else ("save_element", PlanMemo)
    real = getattr(where, name)

    def failing_in_child(*args: Any, **kwargs: Any) -> None:
        if os.getpid() != parent:
            raise OSError(28, "No space left on device")  # as a full disk would
        real(*args, **kwargs)

    monkeypatch.setattr(where, name, failing_in_child)
    _template_edit(root, net, "6940")
    run = _shared(root, state, light=True)
    assert run is not None
    monkeypatch.setattr(where, name, real)
    full = _full(root, state, monkeypatch)
    assert _comparable(run.plan) == _comparable(full.plan)
    assert PlanMemo(state).load_meta() is None
    assert PlanMemo(state).load_summary() is None  # status reads no memo either
    # Neither memo path plans from what the children left.
    assert _shared(root, state, light=True) is None
    assert _shared(root, state) is None
    again = asyncio.run(Config.open(root, state).plan())
    assert _comparable(again.plan) == _comparable(full.plan)
    _stored_is_the_projection(root, state)


def test_within_memo_written_behind_a_shared_plan_returns_before_its_writes_and_waits_on_leaving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHARED_PIN", "1234")
    root, state, net, _rng = _written(tmp_path, 33, 16)
    _plan(root, state)
    go = tmp_path / "go"
    parent = os.getpid()
    real = shared.save

    def save(directory: Path, owners: shared.Owners) -> None:
        if os.getpid() != parent:
            deadline = time.monotonic() + 60
            while not go.exists() and time.monotonic() < deadline:
                time.sleep(0.01)  # polls a file the test makes (bounded)
        real(directory, owners)

    monkeypatch.setattr(shared, "save", save)
    replanned: list[int] = []  # the shared path's re-plans (a full plan makes none)
    replan = planning_shared.plan_incrementally

    def counted(*args: Any, **kwargs: Any) -> Any:
        replanned.append(os.getpid())
        return replan(*args, **kwargs)

    monkeypatch.setattr(planning_shared, "plan_incrementally", counted)
    _template_edit(root, net, "6940")
    owners = (state / "memo" / "owners.marshal").read_bytes()
    meta = (state / "memo" / "meta.pickle").read_bytes()
    config = Config.at(root, state)
    with memo_written_behind():
        run = asyncio.run(config.plan(PlanOptions()))
        assert run.plan.has_changes
        # The child holds its write until told: the plan came back without it.
        assert (state / "memo" / "owners.marshal").read_bytes() == owners
        assert (state / "memo" / "meta.pickle").read_bytes() == meta
        go.touch()
    assert replanned == [parent]
    assert (state / "memo" / "owners.marshal").read_bytes() != owners
    source = read_directory(root)
    hit = asyncio.run(plan_from_memo(source, root, state, PlanOptions()))
    assert hit is not None
    assert _comparable(hit.plan) == _comparable(run.plan)
    assert _comparable(run.plan) == _comparable(_full(root, state, monkeypatch).plan)


class _Held:
    pass


def test_within_memo_written_behind_a_shared_plan_leaves_its_working_data_to_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`provgit plan` frees a template change's working data (the records it
    read and re-planned) at the process's end, not one object at a time on
    its way out: the plan leaves it in the list `memo_written_behind` yields;
    outside it nothing is held."""
    monkeypatch.setenv("SHARED_PIN", "1234")
    root, state, net, _rng = _written(tmp_path, 35, 16)
    _plan(root, state)
    _template_edit(root, net, "6950")
    config = Config.at(root, state)
    with memo_written_behind() as left:
        run = asyncio.run(config.plan(PlanOptions()))
        assert run.plan.has_changes
    # What it re-planned: per element, the records the feeds and the change named.
    assert left, "the shared path left nothing to its caller"
    assert any(isinstance(v, dict) and set(v) == set(net_elements(state)) for v in left)
    assert _comparable(run.plan) == _comparable(_full(root, state, monkeypatch).plan)
    # Outside `memo_written_behind`, what a plan leaves is freed as usual.
    from provgit.api import planning

    held = _Held()
    gone = weakref.ref(held)
    planning.leave_to_caller(held)
    del held
    assert gone() is None


def net_elements(state: Path) -> list[str]:
    """The elements the memo knows (one element memo each)."""
    return sorted(f.stem for f in (PlanMemo(state).dir / "elements").glob("*.marshal"))
