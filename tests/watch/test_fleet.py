"""Fleets (issue #19): 20 small networks over 3 `provgit fleet watch` replicas on
real PostgreSQL (tests/journal/pg.py), real simulators and real processes."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from journal import pg

from .fleet_helpers import FleetRig, all_named, make_fleet, settled, spread
from .helpers import Watch
from .replica_helpers import wait_for

LEASE = 3.0
NETWORKS = 20


@pytest.fixture(scope="module")
def pg_server() -> Iterator[pg.Server]:
    why = pg.missing()
    if why is not None:
        pytest.fail(f"PostgreSQL is needed for the fleet tests: {why}")
    with pg.running() as server:
        yield server


@pytest.fixture
def rig(
    tmp_path: Path, pg_server: pg.Server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FleetRig]:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    url = pg_server.new_database()
    r = make_fleet(tmp_path, NETWORKS, url, pg.PASSWORD, LEASE)
    try:
        yield r
    finally:
        problems = {w.proc.pid: _unclean(w) for w in r.replicas}
        assert not {p: v for p, v in problems.items() if v}, problems


def _unclean(w: Watch) -> list[str]:
    problems = []
    if w.proc.poll() is None:
        code = w.stop()
        if code != 0:
            problems.append(f"exit {code}")
    elif w.proc.returncode not in (0, -signal.SIGKILL):
        problems.append(f"exit {w.proc.returncode}")
    for line in w.logs:
        if line.get("event") in ("run_crashed", "network_failed") or "Traceback" in str(line):
            problems.append(str(line))
    return problems


def _docs(replicas: list[Watch]) -> list[dict[str, object]]:
    return [w.status() for w in replicas if w.proc.poll() is None]


@pytest.mark.slow
def test_fleet_networks_spread_over_replicas_move_on_sigterm_and_spread_back(
    rig: FleetRig,
) -> None:
    names = rig.names()
    replicas = [rig.start(), rig.start(), rig.start()]

    # Every network in sync, 6-7 on each replica.
    held = wait_for(
        "20 networks in sync, 6-7 per replica",
        lambda: (h := settled(_docs(replicas), names)) and spread(h) == [6, 7, 7] and h,
        timeout=90,
    )
    # Any replica's document says who holds each network: the same answer.
    for doc in _docs(replicas):
        assert {n["name"]: n["holder"] for n in doc["networks"]} == held  # type: ignore[index]

    # SIGTERM one: its networks move to the other two, handed over at once.
    leaving = replicas[0]
    leaving_id = leaving.status()["replica"]["id"]  # type: ignore[index]
    assert leaving.stop() == 0
    rest = replicas[1:]
    held = wait_for(
        "the stopped replica's networks run on the other two",
        lambda: (h := settled(_docs(rest), names)) and spread(h) == [10, 10] and h,
        timeout=LEASE * 10,
    )
    assert leaving_id not in held.values()

    # Started again (its state directory kept): the load spreads back.
    back = rig.start(slot=1)
    now = [back, *rest]
    held = wait_for(
        "the networks spread back over three replicas",
        lambda: (h := settled(_docs(now), names)) and spread(h) == [6, 7, 7] and h,
        timeout=90,
    )

    # A commit to one network lands after the moves, on its current holder.
    net = rig.nets[3]
    net.commit("Bob")
    wait_for("the commit applied", lambda: all_named(net, "Bob"), timeout=60)
    wait_for("everything in sync again", lambda: settled(_docs(now), names), timeout=60)
    # Nothing was written twice across the moves: a taken-over network finds its
    # elements in sync and leaves them be.
    for n in rig.nets:
        assert n.rewritten_unchanged() == [], n.name
