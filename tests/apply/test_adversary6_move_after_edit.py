"""Make before break when the new host's copy was edited before the old host's
delete ran (a replica per element, or `reconcile --element`): the old host's
delete waits for the journal to say the new host holds the record, which
kept_elsewhere (apply/moves.py) reads as "provgit's newest write there
landed with the record in it" (and then reads the new host itself). After a
second commit edits the moved user, the newest write there is a modify that
landed: before, only an add counted, so the delete waited for ever and the
user stayed on both call servers.
Real simulators on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import Sim, cli, move_user0, users_on, write_config

pytestmark = pytest.mark.slow


def test_a_move_whose_new_copy_was_edited_before_the_old_host_ran_still_leaves_the_old_host(
    sims: list[Sim], tmp_path: Path
) -> None:
    cs1, cs2 = sims
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0
    move_user0(config)
    cli("reconcile", str(config), "--element", "cs2")  # the new host creates user0
    assert "user0" in users_on(cs2)
    write_config(tmp_path / "config", sims, users=3, first_name="Bea")
    move_user0(config)
    cli("reconcile", str(config), "--element", "cs2")  # ...and then edits it
    assert cs2.records()["users"]["user0"]["first_name"] == "Bea"
    cli("reconcile", str(config), "--element", "cs1")  # the old host's turn
    assert "user0" in users_on(cs2)
    assert "user0" not in users_on(cs1), "user0 stays on both call servers"
