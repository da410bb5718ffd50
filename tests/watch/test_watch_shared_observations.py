"""The watcher keeps observations that hold the projection's own records where
an element holds the same (#16, `observe.share`). Whatever reaches an element
after a one-user change, a template change, a record drifted by hand and a
SIGHUP is what the config says, the status says so, and a cold full-read plan
after all of it finds nothing to do. Real watcher process and simulators."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from apply.helpers import Sim, cli, write_config

from .helpers import Watch, start_watch

pytestmark = pytest.mark.slow


def _edit(config: Path, old: str, new: str) -> None:
    net = config / "net.yaml"
    text = net.read_text()
    assert old in text
    net.write_text(text.replace(old, new))


def _synced(w: Watch, mark: int) -> None:
    done = w.wait_log("run_finished", after=mark, timeout=60)
    assert done["outcome"] == "Sync Completed", w.logs[-10:]
    assert {e["status"] for e in w.status()["elements"].values()} == {"Sync Completed"}


def test_changes_drift_and_sighup_reach_the_elements_as_a_cold_run_sees_them(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    cs1, cs2 = sims
    config = write_config(tmp_path / "config", sims, users=4)
    args = ["--resync-seconds", "0", "--debounce-ms", "50", "--drift", "correct"]
    w = start_watch([str(config), *args])
    watches.append(w)
    _synced(w, 0)

    mark = w.mark()  # one user: user1 lives on cs2
    _edit(config, "last_name: Person1\n", "last_name: Renamed1\n")
    _synced(w, mark)
    assert cs2.records()["users"]["user1"]["last_name"] == "Renamed1"

    mark = w.mark()  # a template: every user's phone
    _edit(config, 'device_type: "6920"', 'device_type: "6930"')
    _synced(w, mark)
    for sim in sims:
        held = json.dumps(sim.records())
        assert '"6930"' in held and '"6920"' not in held, sim.name

    # By hand on cs2, then an unrelated change: the run (--drift correct) writes it back.
    by_hand = {**cs2.records()["users"]["user1"], "last_name": "ByHand"}
    put = {"op": "put", "collection": "users", "key": "user1", "fields": by_hand}
    cs2.admin("/admin/edit", put)
    mark = w.mark()
    _edit(config, "last_name: Person0\n", "last_name: Renamed0\n")
    _synced(w, mark)
    assert cs2.records()["users"]["user1"]["last_name"] == "Renamed1"
    assert cs1.records()["users"]["user0"]["last_name"] == "Renamed0"

    mark = w.mark()  # SIGHUP: every cache dropped, the observations loaded again
    w.proc.send_signal(signal.SIGHUP)
    _synced(w, mark)
    mark = w.mark()
    _edit(config, "last_name: Person2\n", "last_name: Renamed2\n")
    _synced(w, mark)
    assert cs1.records()["users"]["user2"]["last_name"] == "Renamed2"

    assert w.stop() == 0
    cold = cli("plan", str(config), "--full-read", "--detailed-exitcode", "--format", "json")
    assert cold.code == 0, cold.out  # nothing to do: the watcher left what the config says
