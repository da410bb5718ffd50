"""The kept-write check against elements that lie about their writes in ways
the fourth adversary pass found it did not see: a write kept and changed a
moment later, a batch answered at one revision, a write answered at a
revision from before it. Real simulator processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provgit import exitcodes

from .helpers import Sim, cli, start_sims, write_config

pytestmark = pytest.mark.slow


def _holds_as_sent(sim: Sim) -> bool:
    """Every user renamed Bea, no field changed by the element (`~`)."""
    users = sim.records()["users"].values()
    return all(
        u["first_name"] == "Bea" and not any(str(v).endswith("~") for v in u.values())
        for u in users
    )


@pytest.mark.parametrize("lie", ["revert", "one", "stale"])
def test_an_element_that_does_not_keep_what_it_answered_is_never_sync_completed(
    sims: list[Sim], tmp_path: Path, lie: str
) -> None:
    # "revert": cs1 keeps each put as sent, then changes it at the next
    # revision (the check read the feed at the write's revision only).
    # "one": cs1 keeps a batch's last op and answers every op with its
    # revision (the check kept one op per revision). "stale": cs1 keeps
    # nothing and answers with its revision from before (the check skipped
    # any answer not after the observed revision).
    cs1, _ = sims
    config = write_config(tmp_path / "config", sims, users=4)
    assert cli("reconcile", str(config)).code == 0
    cs1.faults(lie=lie)
    write_config(tmp_path / "config", sims, users=4, first_name="Bea")
    r = cli("reconcile", str(config), "--format", "json")
    by = {e["element"]: e for e in json.loads(r.out)["elements"]}
    assert not _holds_as_sent(cs1)  # the element really holds something else
    assert r.code == exitcodes.APPLIED_WITH_ERRORS, r.out
    assert by["cs1"]["status"] != "Sync Completed", by["cs1"]
    assert by["cs1"]["counts"]["failed"] > 0, by["cs1"]
    assert by["cs2"]["status"] == "Sync Completed"
    status = json.loads(cli("status", str(config), "--format", "json").out)
    assert status["in_sync"] is False
    assert status["elements"]["cs1"]["status"] != "Sync Completed"

    # Told the truth again: the errors an admin retries land.
    cs1.faults(lie=None)
    assert cli("errors", "retry", "--all", "-C", str(config)).code == 0
    assert cli("reconcile", str(config)).code == 0
    assert cli("status", str(config)).code == 0
    assert _holds_as_sent(cs1)


def test_writes_past_a_truncated_feed_that_the_element_did_not_keep_are_not_sync_completed(
    tmp_path: Path,
) -> None:
    # cs1 keeps 3 changes in its feed and drops every write it answers as
    # done: 8 renames push the feed past the revision the check reads from,
    # so the check reads the written collections in full instead.
    sims = start_sims(tmp_path, [("cs1", "mivb"), ("cs2", "mivb")], "--retention", "3")
    try:
        cs1 = sims[0]
        config = write_config(tmp_path / "config", sims, users=8)
        assert cli("reconcile", str(config)).code == 0
        cs1.faults(lie="drop")
        write_config(tmp_path / "config", sims, users=8, first_name="Bea")
        r = cli("reconcile", str(config), "--format", "json")
        by = {e["element"]: e for e in json.loads(r.out)["elements"]}
        assert not _holds_as_sent(cs1)
        assert by["cs1"]["status"] != "Sync Completed", by["cs1"]
        # cs2 kept its writes, past its feed's reach too: read in full, it is in sync.
        assert by["cs2"]["status"] == "Sync Completed", by["cs2"]
        assert _holds_as_sent(sims[1])
        assert len(sims[1].records()["users"]) > 3  # more renames than its feed keeps
    finally:
        for s in sims:
            s.stop()
