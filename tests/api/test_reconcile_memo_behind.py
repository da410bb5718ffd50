"""`reconcile` applies while its full plan's memo (the target store, a forked
child's work) is still being written, and waits for it before the report,
which reads the stored target: a first rollout's apply no longer waits on the
child, and the report and the memo the run leaves are as before."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from plan.test_memo import _config, _memo, _user
from provgit.api import Config, PlanOptions
from provgit.apply.transport import install_write_hook
from provgit.incremental import apart
from provgit.incremental.store import TargetStore


def test_reconcile_applies_while_the_memo_is_written_and_reports_once_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert apart.forking_allowed(), "the test process must be single-threaded to fork"
    monkeypatch.setenv("MEMO_PIN", "1234")
    root, state = tmp_path / "config", tmp_path / "state"
    _config(root, [_user(i) for i in range(6)])
    go, store = tmp_path / "go", state / "memo" / "target.sqlite"
    parent = os.getpid()
    real = TargetStore.save

    def save(self: TargetStore, *args: Any) -> None:
        if os.getpid() != parent:
            # The child holds its write until the first element write is made
            # (bounded: with the apply waiting on the child, it never is).
            deadline = time.monotonic() + 20
            while not go.exists() and time.monotonic() < deadline:
                time.sleep(0.01)  # polls a file the write hook makes
        real(self, *args)

    at_first_write: list[bool] = []

    def hook(n: int, moment: str) -> None:
        if n == 1 and moment == "before":
            at_first_write.append(store.exists())
            go.touch()

    monkeypatch.setattr(TargetStore, "save", save)
    install_write_hook(hook)
    try:
        applied = asyncio.run(Config.at(root, state).reconcile(PlanOptions()))
    finally:
        install_write_hook(None)
    # The first write went out while the child still held the target store.
    assert at_first_write == [False]
    assert {e.status for e in applied.result.elements} == {"Sync Completed"}
    assert applied.status_file is not None
    # The report, written after the child: every user in sync where it lands.
    status = json.loads(applied.status_file.read_text())
    users = {r["resource"]: r for r in status["resources"] if r["kind"] == "users"}
    assert sorted(users) == [f"u{i:03d}" for i in range(6)]
    assert all(r["status"] == "Sync Completed" for r in users.values())
    assert all(r["completed"] == r["total"] >= 1 for r in users.values())
    assert status["in_sync"] is True
    # The memo the run left is whole: the next plan is taken from it, with nothing to do.
    remembered = _memo(root, state)
    assert remembered is not None and not remembered.plan.has_changes
