"""Make before break, confirmed on the new host by a read. The old host's
delete of a moving user goes out only once the new host, read now (its
change feed from the create on, or its records), holds the user: not on the
strength of an ok answer or of the journal's row alone. A new host that
took the user and lost it since (reinstalled, or it dropped what it had
acknowledged), or that cannot be read, keeps the old copy and the old host
says "Move pending", never Sync Completed. Real simulators on 127.0.0.1;
each run covers one element (--element), so the delete trusts what another
run wrote, as a replica's does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .helpers import Sim, cli, move_user0, users_on, write_config

pytestmark = pytest.mark.slow


def _reconcile(config: Path, *elements: str) -> dict[str, dict[str, Any]]:
    cut = [a for e in elements for a in ("--element", e)]
    r = cli("reconcile", str(config), *cut, "--format", "json")
    return {e["element"]: e for e in json.loads(r.out)["elements"]}


def _status(config: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(cli("status", str(config), "--format", "json").out)
    return doc


def _moved_to_cs2_by_its_own_run(sims: list[Sim], tmp_path: Path) -> Path:
    """user0 moved from cs1 to cs2, a run of cs2 alone having created it there
    (answered ok, kept, journaled); cs1 still holds it."""
    cs1, cs2 = sims
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0
    move_user0(config, "cs2")
    by = _reconcile(config, "cs2")
    assert by["cs2"]["status"] == "Sync Completed", by["cs2"]
    assert "user0" in users_on(cs2) and "user0" in users_on(cs1)
    return config


def _old_host_keeps_it(config: Path, cs1: Sim) -> None:
    by = _reconcile(config, "cs1")
    assert "user0" in users_on(cs1), "user0 left cs1 though cs2 no longer has it"
    assert by["cs1"]["status"] != "Sync Completed", by["cs1"]
    held = cli("status", str(config), "--element", "cs1").out
    assert "delete of users/user0 held until cs2 has it" in held, held
    assert _status(config)["in_sync"] is False


def _a_full_run_completes_the_move(config: Path, cs1: Sim, cs2: Sim) -> None:
    _reconcile(config)
    assert "user0" in users_on(cs2) and "user0" not in users_on(cs1)
    status = _status(config)
    assert status["in_sync"] is True, status["elements"]


def test_a_new_host_reinstalled_after_it_took_the_user_keeps_it_on_the_old_one(
    sims: list[Sim], tmp_path: Path
) -> None:
    cs1, cs2 = sims
    config = _moved_to_cs2_by_its_own_run(sims, tmp_path)
    cs2.admin("/admin/reset")  # replaced: empty, its feed starting afresh
    _old_host_keeps_it(config, cs1)
    _a_full_run_completes_the_move(config, cs1, cs2)


def test_a_new_host_that_dropped_the_user_it_acknowledged_keeps_it_on_the_old_one(
    sims: list[Sim], tmp_path: Path
) -> None:
    cs1, cs2 = sims
    config = _moved_to_cs2_by_its_own_run(sims, tmp_path)
    # The journal says the create landed and was kept; the element lost it since.
    cs2.admin("/admin/edit", {"op": "delete", "collection": "users", "key": "user0"})
    _old_host_keeps_it(config, cs1)
    _a_full_run_completes_the_move(config, cs1, cs2)


def test_a_new_host_that_cannot_be_read_keeps_the_user_on_the_old_one(
    sims: list[Sim], tmp_path: Path
) -> None:
    cs1, cs2 = sims
    config = _moved_to_cs2_by_its_own_run(sims, tmp_path)
    cs2.faults(offline=True)
    _old_host_keeps_it(config, cs1)
    cs2.faults(offline=False)
    _a_full_run_completes_the_move(config, cs1, cs2)


def test_a_new_host_that_still_holds_the_user_lets_the_old_one_go(
    sims: list[Sim], tmp_path: Path
) -> None:
    cs1, cs2 = sims
    config = _moved_to_cs2_by_its_own_run(sims, tmp_path)
    by = _reconcile(config, "cs1")
    assert "user0" not in users_on(cs1) and "user0" in users_on(cs2)
    assert by["cs1"]["status"] == "Sync Completed", by["cs1"]
    # MiCollab, left out of both runs, still has the old host for user0.
    elements = _status(config)["elements"]
    assert {n: elements[n]["status"] for n in ("cs1", "cs2")} == dict.fromkeys(
        ("cs1", "cs2"), "Sync Completed"
    ), elements
