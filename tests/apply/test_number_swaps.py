"""Users trading directory numbers in one commit (plan/swaps.py): a swap, a
rotation of three, a host going down in the middle of the run, a saved plan.
After every run each user is on some call server, and an element that says
Sync Completed holds exactly the users, with the numbers, the config puts
there; the swap ends within three runs once every element is up. Real
simulator processes on 127.0.0.1, the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from support import fault_at

from .helpers import Sim, cli, users_on, write_config

pytestmark = pytest.mark.slow

# One write per call, one element at a time: "the Nth write" is one record.
SERIAL = "  batch_size: 1\n  batches_in_flight: 1\n  element_concurrency: 1\n"


def _wanted(config: Path) -> dict[str, dict[str, str]]:
    """Call server -> login -> the DN the config gives it there."""
    net = YAML(typ="safe").load((config / "net.yaml").read_text())
    out: dict[str, dict[str, str]] = {}
    for u in net["users"]:
        out.setdefault(u["host"], {})[u["login_id"]] = str(u["services"][0]["dn"])
    return out


def _held(sim: Sim) -> dict[str, str]:
    """Login -> DN of every user `sim` holds."""
    users = sim.records().get("users", {})
    return {k: str(f["services"][0]["dn"]) for k, f in users.items()}


def _status(config: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(cli("status", str(config), "--format", "json").out)
    return doc


def _assert_safe(config: Path, sims: list[Sim], by: dict[str, dict[str, Any]]) -> None:
    """Every user is on some call server; a Sync Completed call server holds
    exactly what the config wants there."""
    wanted = _wanted(config)
    for login in {k for users in wanted.values() for k in users}:
        assert any(login in users_on(s) for s in sims), f"{login} is on no call server: {by}"
    for sim in sims:
        if by[sim.name]["status"] == "Sync Completed":
            assert _held(sim) == wanted.get(sim.name, {}), (sim.name, by[sim.name])


def _reconcile(config: Path) -> dict[str, dict[str, Any]]:
    r = cli("reconcile", str(config), "--format", "json")
    return {e["element"]: e for e in json.loads(r.out)["elements"]}


def _converge(config: Path, sims: list[Sim], runs: int = 3) -> None:
    for _ in range(runs):
        _assert_safe(config, sims, _reconcile(config))
        if _status(config)["in_sync"]:
            break
    status = _status(config)
    assert status["in_sync"] is True, status["elements"]
    wanted = _wanted(config)
    assert {s.name: _held(s) for s in sims} == {s.name: wanted.get(s.name, {}) for s in sims}


def _set_users(config: Path, users: dict[str, tuple[str, str]]) -> None:
    """Each login's host and DN, as `login: (host, dn)`."""
    net = config / "net.yaml"
    lines = net.read_text().split("\n")
    login = None
    for i, line in enumerate(lines):
        if line.startswith("  - login_id: "):
            login = line.removeprefix("  - login_id: ")
        elif login in users and line.startswith("    host: "):
            lines[i] = f"    host: {users[login][0]}"
        elif login in users and line.startswith('      - {dn: "'):
            rest = line.split('"', 2)[2]
            lines[i] = f'      - {{dn: "{users[login][1]}"{rest}'
    net.write_text("\n".join(lines))


def test_three_users_rotating_their_numbers_end_with_them(sims: list[Sim], tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0
    # user0 (cs1) 3000 -> 3001, user1 (cs2) 3001 -> 3002, user2 (cs1) 3002 -> 3000.
    _set_users(
        config, {"user0": ("cs1", "3001"), "user1": ("cs2", "3002"), "user2": ("cs1", "3000")}
    )
    _converge(config, sims)


def test_a_swap_planned_in_full_is_broken_again_by_the_run_from_its_memo(
    sims: list[Sim], tmp_path: Path
) -> None:
    """A plan in full keeps in its memo the writes as they were before the
    swap was broken: the run planned from that memo breaks it again, mark and
    all. (It kept the step without its mark: the spare went out as an
    ordinary write, or the final number was refused.)"""
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0
    _set_users(config, {"user0": ("cs1", "3002"), "user2": ("cs1", "3000")})
    shown = cli("plan", str(config), "--full-read")
    assert "swap: temporary spare DN 9989 for 3002" in shown.out, shown.out + shown.err
    by = _reconcile(config)
    _assert_safe(config, sims, by)
    assert by["cs1"]["status"].startswith("Move pending: users/user0 is on spare DN 9989"), by
    _converge(config, sims)


@pytest.mark.parametrize(
    ("down", "point"), [("cs1", "3"), ("cs1", "4"), ("cs2", "6"), ("cs2", "7")]
)
def test_a_swap_across_hosts_with_a_host_going_down_mid_run_keeps_every_user_somewhere(
    sims: list[Sim], tmp_path: Path, down: str, point: str
) -> None:
    config = write_config(tmp_path / "config", sims, users=2, extra_settings=SERIAL)
    assert cli("reconcile", str(config)).code == 0
    _set_users(config, {"user0": ("cs2", "3001"), "user1": ("cs1", "3000")})
    sim = next(s for s in sims if s.name == down)
    argv = fault_at.command(
        point, sim.url, {"offline": True}, "reconcile", str(config), "--format", "json"
    )
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=dict(os.environ))
    by = {e["element"]: e for e in json.loads(p.stdout)["elements"]}
    _assert_safe(config, sims, by)
    assert by[down]["status"] != "Sync Completed", by[down]
    assert _status(config)["in_sync"] is False
    sim.faults(offline=False)
    _converge(config, sims)


def test_a_saved_swap_plan_shows_its_spare_step_applies_once_and_is_refused_when_stale(
    sims: list[Sim], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config", sims, users=2)
    assert cli("reconcile", str(config)).code == 0
    _set_users(config, {"user0": ("cs2", "3001"), "user1": ("cs1", "3000")})
    saved = tmp_path / "plan.json"
    shown = cli("plan", str(config), "--out", str(saved))
    assert shown.code == 0, shown.out + shown.err
    assert "swap: temporary spare DN 9989 for 3001; deleted here once cs2 has it" in shown.out
    doc = json.loads(saved.read_text())
    marks = {e["element"]: e.get("swaps") for e in doc["elements"]}
    assert marks["cs1"] == [
        {"collection": "users", "key": "user0", "spares": [["3001", "9989"]], "home": "cs2"}
    ]
    r = cli("apply", str(saved), "--config", str(config), "--yes", "--format", "json")
    by = {e["element"]: e for e in json.loads(r.out)["elements"]}
    _assert_safe(config, sims, by)
    assert by["cs1"]["status"].startswith("Move pending: users/user0 is on spare DN 9989"), by
    # The elements moved since: the same plan again is stale, and changes nothing.
    before = {s.name: _held(s) for s in sims}
    again = cli("apply", str(saved), "--config", str(config), "--yes")
    assert again.code != 0
    assert "changed by another user; run plan again" in again.out, again.out + again.err
    assert {s.name: _held(s) for s in sims} == before
    _converge(config, sims, runs=2)
