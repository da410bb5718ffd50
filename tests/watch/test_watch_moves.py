"""Make before break in watch mode: a user moved to a call server that is down
stays on its old one, and the watcher completes the move once the new one is
back, against real simulator processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from apply.helpers import Sim, move_user0, users_on, wait_for, write_config

from .helpers import Watch, start_watch

HELD = "Move pending: delete of users/user0 held until cs2 has it"


@pytest.mark.slow
def test_watch_holds_a_moved_users_delete_until_its_new_host_has_it(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    cs1, cs2 = sims
    config = write_config(tmp_path / "config", sims, users=3)
    w = start_watch([str(config), "--resync-seconds", "0", "--debounce-ms", "50"])
    watches.append(w)
    w.wait_log("run_finished", after=0, timeout=30)

    cs2.faults(offline=True)
    mark = w.mark()
    move_user0(config)
    w.wait_log(
        "element_status",
        lambda e: e["element"] == "cs1" and e["status"].startswith(HELD),
        after=mark,
        timeout=30,
    )
    assert "user0" in users_on(cs1)
    doc = w.status()
    assert doc["status"] != "Sync Completed"
    assert doc["elements"]["cs1"]["status"].startswith(HELD)

    mark = w.mark()  # before the element is back: its retry may end at once
    cs2.faults(offline=False)
    w.wait_log("sync_result", lambda e: e["status"] == "Sync Completed", after=mark, timeout=60)
    assert wait_for(lambda: "user0" in users_on(cs2) and "user0" not in users_on(cs1))
    assert w.status()["elements"]["cs1"]["status"] == "Sync Completed"
