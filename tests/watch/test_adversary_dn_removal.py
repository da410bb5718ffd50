"""Directory mode: a half-written file that drops a user's second number removes nothing.

A save cut off after a user's first service still parses: the user is there,
with one directory number fewer. That is not a deleted record, so the removal
hold did not see it, and the number was taken off the user on every element at
once (on a call server, with the number's element-side state) only to be added
back when the save finished. A number leaving a user is now a removal too: held
until a read after the grace period still lacks it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from apply.helpers import Sim, start_sims, write_config

from .helpers import Watch, start_in_sync

GRACE_LONG = "watch:\n  settle_seconds: 0.2\n  delete_grace_seconds: 60\n"
GRACE_NONE = "watch:\n  settle_seconds: 0.2\n  delete_grace_seconds: 0\n"


@pytest.fixture
def sims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Sim]]:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    started = start_sims(tmp_path, [("cs1", "mivb")])
    try:
        yield started
    finally:
        for s in started:
            s.stop()


def _two_numbers(config: Path) -> tuple[str, str]:
    """user1 (the last user) gets a second number; the full text, and the
    text as a save cut off after user1's first number leaves it."""
    net = (config / "net.yaml").read_text()
    full = net + '      - {dn: "3901"}\n'
    (config / "net.yaml").write_text(full)
    return full, net


def _dns(sim: Sim, login: str) -> list[str]:
    user = sim.records()["users"][login]
    return [s["dn"] for s in user["services"]]


def _puts(sim: Sim) -> int:
    db = sqlite3.connect(f"file:{sim.db}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM changes WHERE op = 'put'").fetchone()[0])
    finally:
        db.close()


@pytest.mark.slow
def test_a_save_cut_after_a_users_first_number_changes_nothing(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    config = write_config(tmp_path / "config", sims, users=2, extra_settings=GRACE_LONG)
    full, cut = _two_numbers(config)
    w = start_in_sync(config, watches)
    assert _dns(sims[0], "user1") == ["3001", "3901"]
    writes = _puts(sims[0])

    mark = w.mark()
    (config / "net.yaml").write_text(cut)
    held = w.wait_log("removal_held", after=mark, timeout=30)
    assert held["resources"] == ["users/user1 DN 3901"], held
    assert _dns(sims[0], "user1") == ["3001", "3901"]
    assert _puts(sims[0]) == writes

    mark = w.mark()
    (config / "net.yaml").write_text(full)
    w.wait_log("removal_withdrawn", after=mark, timeout=30)
    done = w.wait_log("run_finished", lambda e: e["outcome"] != "removal held", after=mark)
    assert done["outcome"] == "Sync Completed", w.logs[-10:]
    assert _dns(sims[0], "user1") == ["3001", "3901"]
    assert _puts(sims[0]) == writes  # nothing was taken off, so nothing put back
    assert w.stop() == 0


@pytest.mark.slow
def test_a_number_really_removed_goes_once_confirmed(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    config = write_config(tmp_path / "config", sims, users=2, extra_settings=GRACE_NONE)
    _, cut = _two_numbers(config)
    w = start_in_sync(config, watches)
    mark = w.mark()
    (config / "net.yaml").write_text(cut)
    done = w.wait_log("run_finished", after=mark, timeout=30)
    assert done["outcome"] == "Sync Completed", w.logs[-10:]
    assert _dns(sims[0], "user1") == ["3001"]
    assert w.stop() == 0
