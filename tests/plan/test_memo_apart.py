"""A full plan writes its target store and owners index in a forked child
(`incremental.apart`) while it observes and plans: the memo it leaves is the
one a write in process leaves, and a child that fails loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import marshal
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from plan.test_memo import _config, _full, _memo, _plan, _user
from provgit.api import Config, PlanOptions, memo_written_behind
from provgit.incremental import apart
from provgit.incremental.memo_summary import MAC_BYTES
from provgit.incremental.shared import records_of
from provgit.incremental.store import TargetStore

TABLES = ("records", "landing", "resources")


def _rows(path: Path) -> dict[str, list[Any]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        found = {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall() for t in TABLES}
        found["meta"] = db.execute("SELECT k, v FROM meta ORDER BY k").fetchall()
        found["schema"] = db.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    return found


def _memo_files(state: Path) -> dict[str, Any]:
    # Element memos past their seal (each state directory has its own key).
    found = {
        f.name: marshal.loads(f.read_bytes()[MAC_BYTES:])
        for f in sorted((state / "memo" / "elements").glob("*.marshal"))
    }
    found["owners.marshal"] = marshal.loads((state / "memo" / "owners.marshal").read_bytes())
    return found


def test_a_plan_whose_target_store_is_written_apart_leaves_the_memo_one_process_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert apart.forking_allowed(), "the test process must be single-threaded to fork"
    monkeypatch.setenv("MEMO_PIN", "1234")
    root = tmp_path / "config"
    _config(root, [_user(i) for i in range(9)])
    forked, inline = tmp_path / "forked", tmp_path / "inline"
    parent = os.getpid()
    pids: list[int] = []
    real = TargetStore.save

    def save(self: TargetStore, *args: Any) -> None:
        pids.append(os.getpid())
        real(self, *args)
        if os.getpid() != parent:  # only the child leaves a mark (a file beside the store)
            self.path.with_name("written-by-child").write_text(str(os.getpid()))

    monkeypatch.setattr(TargetStore, "save", save)
    run = _plan(root, forked)
    assert (forked / "memo" / "written-by-child").exists()
    assert pids == []  # the parent's list: the child's append stayed in the child
    (forked / "memo" / "written-by-child").unlink()
    # The same state directory (its key fingerprints the secrets), without the memo.
    shutil.copytree(forked, inline, ignore=shutil.ignore_patterns("memo"))
    with monkeypatch.context() as m:
        m.setenv("PROVGIT_NO_FORK", "1")
        _plan(root, inline)
    assert pids == [parent]

    a, b = (_rows(s / "memo" / "target.sqlite") for s in (forked, inline))
    assert a.keys() == b.keys()
    for table in ("records", "landing", "resources", "schema"):
        assert a[table] == b[table], table
    digest = [v for k, v in a["meta"] if k == "digest"]
    assert [r for r in a["meta"] if r[0] != "digest"] == [r for r in b["meta"] if r[0] != "digest"]
    assert digest == [v for k, v in b["meta"] if k == "digest"]  # same inputs, same code
    assert _memo_files(forked) == _memo_files(inline)
    remembered = _memo(root, forked)
    assert remembered is not None  # the memo the child's store completes is used
    full = _full(root, forked, monkeypatch)
    assert remembered.plan.to_json()["elements"] == full.plan.to_json()["elements"]
    assert run.plan.to_json()["elements"] == full.plan.to_json()["elements"]


def test_a_child_that_fails_its_write_leaves_the_work_to_the_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMO_PIN", "1234")
    root, state = tmp_path / "config", tmp_path / "state"
    _config(root, [_user(i) for i in range(6)])
    parent = os.getpid()
    real = TargetStore.save

    def save(self: TargetStore, *args: Any) -> None:
        if os.getpid() != parent:
            raise OSError(28, "No space left on device")  # as a full disk would
        real(self, *args)

    monkeypatch.setattr(TargetStore, "save", save)
    _plan(root, state)
    remembered = _memo(root, state)
    assert remembered is not None
    full = _full(root, state, monkeypatch)
    assert remembered.plan.to_json()["elements"] == full.plan.to_json()["elements"]


def test_an_error_in_the_write_is_raised_in_the_parent_as_it_was_in_process(
    tmp_path: Path,
) -> None:
    def work() -> None:
        raise OSError(28, "No space left on device")

    writing = apart.start(work)
    assert writing.forked
    with pytest.raises(OSError, match="No space left"):
        writing.join()
    writing.join()  # once: nothing more to wait for


def test_a_process_with_another_thread_does_the_work_in_process(tmp_path: Path) -> None:
    import threading

    done: list[int] = []
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        writing = apart.start(lambda: done.append(os.getpid()))
    finally:
        release.set()
        other.join()
    assert not writing.forked
    assert done == [os.getpid()]
    writing.join()
    assert done == [os.getpid()]


def test_landing_rows_from_each_resources_records_are_those_from_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMO_PIN", "1234")
    monkeypatch.setenv("PROVGIT_NO_FORK", "1")
    root, state = tmp_path / "config", tmp_path / "state"
    _config(root, [_user(i) for i in range(12)])
    captured: list[Any] = []
    real = TargetStore.save

    def save(self: TargetStore, target: Any, digest: str, records: Any = None) -> None:
        captured.append(target)
        real(self, target, digest, records)

    monkeypatch.setattr(TargetStore, "save", save)
    _plan(root, state)
    (target,) = captured
    assert any(len({e for e, _, _ in refs}) > 1 for refs in records_of(target).values())
    TargetStore(tmp_path / "from-target.sqlite").save(target, "d")
    TargetStore(tmp_path / "from-records.sqlite").save(target, "d", records_of(target))
    assert _rows(tmp_path / "from-target.sqlite") == _rows(tmp_path / "from-records.sqlite")


def test_within_memo_written_behind_a_plan_returns_before_its_store_is_written_and_waits_on_leaving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMO_PIN", "1234")
    root, state = tmp_path / "config", tmp_path / "state"
    _config(root, [_user(i) for i in range(6)])
    go = tmp_path / "go"
    parent = os.getpid()
    real = TargetStore.save

    def save(self: TargetStore, *args: Any) -> None:
        if os.getpid() != parent:
            deadline = time.monotonic() + 60
            while not go.exists() and time.monotonic() < deadline:
                time.sleep(0.01)  # polls a file the test makes (bounded)
        real(self, *args)

    monkeypatch.setattr(TargetStore, "save", save)
    config = Config.at(root, state)
    with memo_written_behind():
        run = asyncio.run(config.plan(PlanOptions()))
        assert run.plan.has_changes
        # The child holds its write until told: the plan came back without it.
        assert not (state / "memo" / "target.sqlite").exists()
        assert _memo(root, state) is None  # meanwhile the memo is not used
        go.touch()
    assert (state / "memo" / "target.sqlite").exists()
    remembered = _memo(root, state)
    assert remembered is not None
    assert remembered.plan.to_json()["elements"] == run.plan.to_json()["elements"]
