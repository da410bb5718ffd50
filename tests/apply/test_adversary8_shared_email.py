"""adversary8: a new hire on a moving user's old host given the moving user's
email (two users may share one; the pairing folds its case). user0 (cs1) is
renamed user9, moved to cs2 and renumbered while cs2 is down: before, cs1
took the hire for user0 re-created in place and deleted user0 at once, so
user0 was on no call server. Real simulator processes on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .helpers import Sim
from .test_adversary7_moves import (
    _add_hire,
    _ann_as_user0_on_cs1,
    _reconcile,
    _rename_move_renumber,
    _status,
    _where,
)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("email", ["ann.person0@example.com", "Ann.Person0@EXAMPLE.com"])
def test_a_hire_sharing_a_moving_users_email_on_its_old_host_leaves_it_on_no_call_server_never(
    sims: list[Sim], tmp_path: Path, email: str
) -> None:
    _, cs2 = sims
    config = _ann_as_user0_on_cs1(sims, tmp_path)
    _rename_move_renumber(config)
    _add_hire(config, "3009", email)
    cs2.faults(offline=True)
    _, by = _reconcile(config)
    assert _where(sims, "user0") | _where(sims, "user9"), (
        "user0 (now user9) is on no call server while cs2 is down: " + json.dumps(by["cs1"])
    )
    assert _where(sims, "hire") == {"cs1"}
    assert _status(config)["in_sync"] is False
    cs2.faults(offline=False)
    for _ in range(3):
        _reconcile(config)
        if _status(config)["in_sync"]:
            break
    assert _where(sims, "user9") == {"cs2"} and not _where(sims, "user0")
    assert _where(sims, "hire") == {"cs1"}
    assert _status(config)["in_sync"] is True
