"""Make before break, attacked: a move chained onto a move still held, and a
move that renames the user on the way. Whatever the elements do, a user the
config keeps is on some call server after every run, and an element that
does not hold what the config wants there never says Sync Completed. Real
simulator processes on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provgit.plan import Plan, signing
from provgit.secrets import network_key

from .helpers import Sim, cli, move_user0, start_sims, users_on, write_config

pytestmark = pytest.mark.slow


@pytest.fixture
def three(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Sim]]:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    started = start_sims(tmp_path, [("cs1", "mivb"), ("cs2", "mivb"), ("cs3", "mivb")])
    try:
        yield started
    finally:
        for s in started:
            s.stop()


def _reconcile(config: Path) -> dict[str, dict[str, Any]]:
    r = cli("reconcile", str(config), "--format", "json")
    return {e["element"]: e for e in json.loads(r.out)["elements"]}


def _status(config: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(cli("status", str(config), "--format", "json").out)
    return doc


def _rename_user0(config: Path, to: str) -> None:
    net = config / "net.yaml"
    net.write_text(net.read_text().replace("  - login_id: user0\n", f"  - login_id: {to}\n", 1))


def test_a_move_chained_onto_a_held_move_lands_only_where_the_config_says_now(
    three: list[Sim], tmp_path: Path
) -> None:
    cs1, cs2, cs3 = three
    # write_config hosts user0 on cs1 (users round-robin over the call servers).
    config = write_config(tmp_path / "config", three, users=3)
    assert cli("reconcile", str(config)).code == 0
    assert "user0" in users_on(cs1)
    move_user0(config, "cs2")
    cs2.faults(offline=True)
    _reconcile(config)  # held on cs1, cs2's create pending
    assert "user0" in users_on(cs1)

    # Before cs2 is back, user0 moves on to cs3, which is down in its turn.
    net = config / "net.yaml"
    head, mark, rest = net.read_text().partition("  - login_id: user0\n")
    net.write_text(head + mark + rest.replace("    host: cs2\n", "    host: cs3\n", 1))
    cs2.faults(offline=False)
    cs3.faults(offline=True)
    by = _reconcile(config)
    assert "user0" in users_on(cs1), "user0 left cs1 before cs3 had it"
    assert "user0" not in users_on(cs2), "cs2 got the create the config no longer wants"
    assert by["cs1"]["status"] != "Sync Completed", by["cs1"]
    assert _status(config)["in_sync"] is False

    cs3.faults(offline=False)
    by = _reconcile(config)
    assert {
        n for n, s in zip(("cs1", "cs2", "cs3"), three, strict=True) if "user0" in users_on(s)
    } == {"cs3"}
    status = _status(config)
    assert status["in_sync"] is True, status["elements"]


def test_a_move_that_renames_the_user_keeps_the_old_one_until_the_new_host_has_it(
    three: list[Sim], tmp_path: Path
) -> None:
    cs1, cs2, _ = three
    config = write_config(tmp_path / "config", three, users=3)
    assert cli("reconcile", str(config)).code == 0
    move_user0(config, "cs2")
    _rename_user0(config, "user9")
    cs2.faults(offline=True)
    by = _reconcile(config)
    assert "user0" in users_on(cs1), "DN 3000 is on no call server while cs2 is down"
    assert by["cs1"]["status"] != "Sync Completed", by["cs1"]
    held = cli("status", str(config), "--element", "cs1").out
    assert "delete of users/user0 held until cs2 has it as users/user9" in held, held
    assert _status(config)["in_sync"] is False

    cs2.faults(offline=False)
    _reconcile(config)
    assert users_on(cs2) >= {"user9"} and "user0" not in users_on(cs1)
    status = _status(config)
    assert status["in_sync"] is True, status["elements"]


def test_a_move_that_renames_the_user_completes_in_one_run_when_the_new_host_takes_it(
    three: list[Sim], tmp_path: Path
) -> None:
    cs1, cs2, cs3 = three
    config = write_config(tmp_path / "config", three, users=3)
    assert cli("reconcile", str(config)).code == 0
    move_user0(config, "cs2")
    _rename_user0(config, "user9")
    by = _reconcile(config)
    assert {n: by[n]["status"] for n in ("cs1", "cs2", "cs3")} == dict.fromkeys(
        ("cs1", "cs2", "cs3"), "Sync Completed"
    ), by
    assert "user9" in users_on(cs2) and "user0" not in users_on(cs1)
    # cs1 keeps the directory entry that sends DN 3000 to its new host.
    assert cs1.records()["remote_directory"]["3000"]["login_id"] == "user9"
    assert "user0" not in users_on(cs3)


def test_a_saved_move_applied_twice_leaves_the_user_on_the_new_host_only(
    sims: list[Sim], tmp_path: Path
) -> None:
    cs1, cs2 = sims
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0
    move_user0(config)
    plan = tmp_path / "plan.json"
    assert cli("plan", str(config), "--out", str(plan)).code == 0
    for _ in range(2):
        r = cli("apply", str(plan), "--config", str(config), "--yes")
        assert "user0" in users_on(cs2), r.out + r.err
        assert "user0" not in users_on(cs1), r.out + r.err
    status = _status(config)
    assert status["in_sync"] is True, status["elements"]


def test_a_saved_plan_that_renames_on_a_move_without_holding_it_back_is_refused(
    three: list[Sim], tmp_path: Path
) -> None:
    """Saved by a provgit that paired moves by record key: the same plan,
    signed with the network's key, without the mark. Applying it would delete
    user0 from cs1 at once while cs2 is down."""
    cs1, cs2, _ = three
    config = write_config(tmp_path / "config", three, users=3)
    assert cli("reconcile", str(config)).code == 0
    move_user0(config, "cs2")
    _rename_user0(config, "user9")
    saved = tmp_path / "plan.json"
    assert cli("plan", str(config), "--out", str(saved)).code == 0
    doc = json.loads(saved.read_text())
    doc.pop(signing.SIGNATURE)
    for e in doc["elements"]:
        e.pop("moves", None)
    key = network_key(None, config / ".provgit", create=False)
    assert key is not None
    saved.write_text(signing.signed_text(Plan.from_json(doc), key))
    cs2.faults(offline=True)
    r = cli("apply", str(saved), "--config", str(config), "--yes")
    assert r.code != 0
    assert "the delete of users/user0 moves it to cs2 as users/user9" in r.out + r.err
    assert "user0" in users_on(cs1)
