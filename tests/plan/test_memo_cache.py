"""A plan from the memo keeps the observation cache at the elements' feeds
(status derives from it once the config changes), reading a cached
observation only when its element moved since: with nothing to do, no cache
file is loaded; after an out-of-band edit, that element's cache holds it."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from plan.test_memo import _config, _plan, _user
from provgit.api.planning import plan_from_memo
from provgit.drivers.base import WriteOp
from provgit.observe import Observation, ObservationCache
from provgit.plan import PlanOptions
from provgit.simulator.store import ElementStore
from provgit.source import read_directory


def _memo_plan(root: Path, state: Path) -> None:
    run = asyncio.run(plan_from_memo(read_directory(root), root, state, PlanOptions()))
    assert run is not None, "the memo path was not taken"


def test_memo_plan_loads_only_the_cache_of_an_element_that_moved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMO_PIN", "1234")
    root, state = tmp_path / "config", tmp_path / "state"
    _config(root, [_user(i) for i in range(9)])
    _plan(root, state)
    loads: list[str] = []
    load = ObservationCache.load

    def counting(cache: ObservationCache, element: str) -> Observation | None:
        loads.append(element)
        return load(cache, element)

    monkeypatch.setattr(ObservationCache, "load", counting)
    _memo_plan(root, state)  # the first one after the full plan may refresh
    loads.clear()
    _memo_plan(root, state)
    assert loads == [], "a plan with nothing new read the observation cache"

    store = ElementStore(state / "elements" / "mivb3.sqlite")
    try:
        store.write(WriteOp("put", "departments", "legacy", {"name": "Oob"}, None), force=True)
        revision = store.revision
    finally:
        store.close()
    _memo_plan(root, state)
    assert loads == ["mivb3"]
    cached = load(ObservationCache(state), "mivb3")
    assert cached is not None and cached.revision == revision
    assert cached.records["departments"]["legacy"].fields["name"] == "Oob"
    loads.clear()
    _memo_plan(root, state)
    assert loads == []


def test_a_copied_state_directory_loads_its_caches_once_then_never_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy (a backup restored, a state directory moved to another disk)
    gives every cache file a new identity, so no stamp vouches for it: the
    next plan loads them, and must stamp them again instead of loading them
    on every run from then on."""
    monkeypatch.setenv("MEMO_PIN", "1234")
    root, original = tmp_path / "config", tmp_path / "state"
    _config(root, [_user(i) for i in range(9)])
    _plan(root, original)
    _memo_plan(root, original)
    state = tmp_path / "copied"
    shutil.copytree(original, state)  # new inodes: the stamps no longer name the files
    assert all(ObservationCache(state).revision(e.stem) is None for e in _caches(state))
    loads: list[str] = []
    load = ObservationCache.load

    def counting(cache: ObservationCache, element: str) -> Observation | None:
        loads.append(element)
        return load(cache, element)

    monkeypatch.setattr(ObservationCache, "load", counting)
    _memo_plan(root, state)
    assert sorted(loads) == sorted(e.stem for e in _caches(state))
    loads.clear()
    _memo_plan(root, state)
    assert loads == [], "the copied caches were loaded again on a plan with nothing new"


def _caches(state: Path) -> list[Path]:
    return [
        p
        for p in (state / "observed").glob("*.marshal")
        if p.name.count(".") == 1  # not the stamps, writes or down files beside them
    ]


def test_a_memo_plan_with_nothing_new_rewrites_no_element_memo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provgit.incremental.disk import PlanMemo

    monkeypatch.setenv("MEMO_PIN", "1234")
    root, state = tmp_path / "config", tmp_path / "state"
    _config(root, [_user(i) for i in range(9)])
    _plan(root, state)
    _memo_plan(root, state)  # the first one after the full plan may move revisions on
    saved: list[str] = []
    save = PlanMemo.save_element

    def counting(memo: PlanMemo, element: str, known: object, **kwargs: bool) -> None:
        saved.append(element)
        save(memo, element, known, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(PlanMemo, "save_element", counting)
    _memo_plan(root, state)
    assert saved == [], "a plan with nothing new rewrote element memos"
    store = ElementStore(state / "elements" / "mivb3.sqlite")
    try:
        store.write(WriteOp("put", "departments", "legacy", {"name": "Oob"}, None), force=True)
    finally:
        store.close()
    _memo_plan(root, state)
    assert saved == ["mivb3"]
    memo = PlanMemo(state).load_element("mivb3")
    assert memo is not None and memo.keys is not None
    assert "legacy" in memo.keys["departments"]
