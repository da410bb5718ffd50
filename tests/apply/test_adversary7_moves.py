"""Adversary 7: moves paired by person, attacked. Two users swapping hosts and
directory numbers in one commit; a user removed while a new hire takes its
number elsewhere. Whatever the elements do, a user the config keeps is on some
call server after every run, and no element says Sync Completed while it does
not hold what the config wants. Real simulator processes on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .helpers import Sim, cli, users_on, write_config

pytestmark = pytest.mark.slow


def _reconcile(config: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    r = cli("reconcile", str(config), "--format", "json")
    return r.code, {e["element"]: e for e in json.loads(r.out)["elements"]}


def _status(config: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(cli("status", str(config), "--format", "json").out)
    return doc


def _user_block(net: str, login: str) -> tuple[int, int]:
    start = net.index(f"  - login_id: {login}\n")
    end = net.find("  - login_id: ", start + 1)
    return start, len(net) if end < 0 else end


def _edit_user(config: Path, login: str, **changes: str) -> None:
    """`login`'s block with each `old=new` text replaced once."""
    net = (config / "net.yaml").read_text()
    start, end = _user_block(net, login)
    block = net[start:end]
    for old, new in changes.values():
        assert old in block, (old, block)
        block = block.replace(old, new, 1)
    (config / "net.yaml").write_text(net[:start] + block + net[end:])


def _where(sims: list[Sim], login: str) -> set[str]:
    return {s.name for s in sims if login in users_on(s)}


def _swap(config: Path, hosts: bool) -> None:
    """user0 (cs1, DN 3000) and user1 (cs2, DN 3001) trade numbers, and hosts too."""
    h0 = {"h": ("host: cs1", "host: cs2")} if hosts else {}
    h1 = {"h": ("host: cs2", "host: cs1")} if hosts else {}
    _edit_user(config, "user0", d=('"3000"', '"3001"'), **h0)
    _edit_user(config, "user1", d=('"3001"', '"3000"'), **h1)


def _runs_stay_safe(config: Path, sims: list[Sim], runs: int) -> dict[str, Any]:
    """Reconcile `runs` times; after each, both users are on some call server
    and an element that says Sync Completed holds what the config wants there."""
    wanted = {s.name: set() for s in sims}
    net = (config / "net.yaml").read_text()
    for login in ("user0", "user1"):
        start, end = _user_block(net, login)
        host = net[start:end].split("host: ", 1)[1].split("\n", 1)[0]
        wanted[host].add(login)
    status: dict[str, Any] = {}
    for run in range(runs):
        _, by = _reconcile(config)
        status = _status(config)
        for login in ("user0", "user1"):
            assert _where(sims, login), f"{login} is on no call server after run {run}"
        for sim in sims:
            if by[sim.name]["status"] == "Sync Completed":
                assert wanted[sim.name] <= users_on(sim), (sim.name, by[sim.name])
        if status["in_sync"]:
            break
    return status


@pytest.mark.parametrize("hosts", [False, True], ids=["numbers", "numbers-and-hosts"])
def test_users_swapping_numbers_in_one_commit_end_with_each_others_numbers_never_nowhere_between(
    sims: list[Sim], tmp_path: Path, hosts: bool
) -> None:
    config = write_config(tmp_path / "config", sims, users=2)
    assert cli("reconcile", str(config)).code == 0
    _swap(config, hosts)
    status = _runs_stay_safe(config, sims, 3)
    assert status["in_sync"] is True, status["elements"]
    if hosts:
        assert _where(sims, "user0") == {"cs2"} and _where(sims, "user1") == {"cs1"}


def _add_email(config: Path, login: str, email: str) -> None:
    net = (config / "net.yaml").read_text()
    start, end = _user_block(net, login)
    block = net[start:end].replace("    role: Agent\n", f"    role: Agent\n    email: {email}\n", 1)
    (config / "net.yaml").write_text(net[:start] + block + net[end:])


def _ann_as_user0_on_cs1(sims: list[Sim], tmp_path: Path) -> Path:
    """Two users reconciled onto cs1; user0 has Ann's email (who the person is)."""
    config = write_config(tmp_path / "config", sims, users=2)
    _add_email(config, "user0", "ann.person0@example.com")
    assert cli("reconcile", str(config)).code == 0
    assert _where(sims, "user0") == {"cs1"}
    return config


def _add_hire(config: Path, dn: str, email: str | None = None) -> None:
    """A new hire on cs1 with `dn` (and `email`)."""
    net = config / "net.yaml"
    net.write_text(
        net.read_text()
        + "  - login_id: hire\n    first_name: New\n    last_name: Hire\n    role: Agent\n"
        + (f"    email: {email}\n" if email else "")
        + f'    host: cs1\n    services:\n      - {{dn: "{dn}"}}\n'
    )


def _rename_move_renumber(config: Path) -> None:
    """user0 (on cs1, 3000) becomes user9 on cs2 with 3005: the same person by its email."""
    _edit_user(
        config,
        "user0",
        k=("login_id: user0", "login_id: user9"),
        h=("host: cs1", "host: cs2"),
        d=('"3000"', '"3005"'),
    )


@pytest.mark.parametrize("hire", [False, True], ids=["renumbered", "number-to-a-new-hire"])
def test_a_user_renamed_moved_and_renumbered_onto_a_host_that_is_down_stays_where_it_was(
    sims: list[Sim], tmp_path: Path, hire: bool
) -> None:
    _, cs2 = sims
    config = _ann_as_user0_on_cs1(sims, tmp_path)
    # user0 becomes user9 on cs2 with a number of its own (same person: the
    # email); with `hire`, a new hire on cs1 gets its old number 3000.
    _rename_move_renumber(config)
    if hire:
        _add_hire(config, "3000")
    cs2.faults(offline=True)
    _, by = _reconcile(config)
    assert _where(sims, "user0") | _where(sims, "user9"), (
        "user0 (now user9) is on no call server while cs2 is down: " + json.dumps(by["cs1"])
    )
    assert _status(config)["in_sync"] is False
    if hire:
        # cs1 refuses a DN user0 still holds: the hire's create waits with
        # user0's delete, not sent to be refused and held as an error.
        waits = [p["message"] for p in by["cs1"]["problems"] if p["key"] == "hire"]
        assert waits == ["Move pending: add of users/hire waits for the delete of users/user0"]
    cs2.faults(offline=False)
    for _ in range(3):
        _reconcile(config)
        if _status(config)["in_sync"]:
            break
    assert _where(sims, "user9") == {"cs2"} and not _where(sims, "user0")
    assert _where(sims, "hire") == ({"cs1"} if hire else set())
    assert _status(config)["in_sync"] is True


def test_a_move_taken_back_before_the_new_host_had_it_leaves_the_user_where_it_was_only(
    sims: list[Sim], tmp_path: Path
) -> None:
    _, cs2 = sims
    config = write_config(tmp_path / "config", sims, users=2)
    assert cli("reconcile", str(config)).code == 0
    _edit_user(config, "user0", h=("host: cs1", "host: cs2"))
    cs2.faults(offline=True)
    _, by = _reconcile(config)
    assert _where(sims, "user0") == {"cs1"}, "user0 left cs1 before cs2 had it"
    assert by["cs1"]["status"] != "Sync Completed", by["cs1"]
    # Taken back while cs2 is still down; then cs2 returns.
    _edit_user(config, "user0", h=("host: cs2", "host: cs1"))
    _, by = _reconcile(config)
    assert _where(sims, "user0") == {"cs1"}
    assert by["cs1"]["status"] == "Sync Completed", by["cs1"]
    cs2.faults(offline=False)
    _, by = _reconcile(config)
    assert _where(sims, "user0") == {"cs1"}, "cs2 got the create the config took back"
    assert {n: by[n]["status"] for n in ("cs1", "cs2")} == dict.fromkeys(
        ("cs1", "cs2"), "Sync Completed"
    ), by
    assert _status(config)["in_sync"] is True
