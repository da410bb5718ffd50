"""A run killed (SIGKILL) before `provgit watch` starts is marked interrupted
by the watcher, whatever its first run does (real processes, 127.0.0.1)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from apply.helpers import Sim, cli, cli_killed_at, journal, write_config

from .helpers import Watch, start_watch

pytestmark = pytest.mark.slow


def test_a_killed_run_is_marked_interrupted_when_the_watchers_first_run_holds_a_removal(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    config = write_config(tmp_path / "config", sims, users=4)
    assert cli("reconcile", str(config)).code == 0
    # user3 leaves the config; the others change; the run dies right before its
    # first write is sent (its intents committed). Killed right after the first
    # call returned, the calls to the other elements in flight may all have
    # landed too: user3 gone everywhere, no removal left to hold.
    write_config(tmp_path / "config", sims, users=3, first_name="Bea")
    killed = cli_killed_at("1:before", "reconcile", str(config))
    assert killed.code == -signal.SIGKILL, killed.err
    with journal(config / ".provgit") as j:
        (dead,) = j.unfinished_runs()

    w = start_watch([str(config), "--resync-seconds", "0", "--debounce-ms", "50"])
    watches.append(w)
    first = w.wait_log("run_finished", timeout=60)
    # The removal of user3 waits for a second read (watch.delete_grace_seconds):
    # this run applies nothing.
    assert first["outcome"] == "removal held", w.logs[-10:]
    with journal(config / ".provgit") as j:
        assert j.unfinished_runs() == []
        runs = {r["id"]: r for r in j.runs(5)}
        assert runs[dead["id"]]["outcome"] == "interrupted"
        (event,) = [e for e in j.events() if e.type == "interrupted"]
        assert event.run_id == dead["id"] and "without finishing" in event.message
    assert w.stop() == 0
