"""A fleet process's leases do not depend on its interpreter getting the GIL
(issue #19, fleet12).

One `provgit fleet watch` process holds its networks' leases (the fleet's
schema) and, through each network's watcher, their element leases (each
network's schema). A full garbage collection or another long C call holding
its GIL past the lease time lost them all at once. It now has one lease keeper
process (watch/fleet_keeper.py) renewing every one of them while the fleet's
event loop moved within the stall bound (4 lease times).

A SIGSTOP of the fleet's process alone (not its keeper) stands for any hold of
the GIL. Real PostgreSQL, real `provgit fleet watch` processes, embedded
elements (fleet_helpers.py says why).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from journal import pg
from provgit.journal.location import network_schema
from provgit.simulator.store import ElementStore
from provgit.wire.protocol import FencedError, WriteOp

from .fleet_helpers import FleetRig, all_named, logged_in_sync, make_fleet
from .helpers import Watch
from .replica_helpers import keeper_seen, process_gone, wait_for

LEASE = 5.0
STALL = 4 * LEASE
NETWORKS = 4
SETTLE = 240.0
FLEET_SCHEMA = "provgit_fleet"


@pytest.fixture
def rig(
    tmp_path: Path, pg_server: pg.Server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FleetRig]:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    r = make_fleet(tmp_path, NETWORKS, pg_server.new_database(), pg.PASSWORD, LEASE)
    try:
        yield r
    finally:
        for w in r.replicas:
            if w.proc.poll() is None:
                os.kill(w.proc.pid, signal.SIGCONT)
                w.stop()


def _rows(url: str, schema: str) -> dict[str, tuple[str | None, int, float]]:
    """A schema's leases: name -> (holder, token, seconds left on the database's clock)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute("SELECT to_regclass(%s)", (f"{schema}.replica_leases",)).fetchone()
        if found is None or found[0] is None:
            return {}
        rows = conn.execute(
            f"SELECT element, holder, token, expires - extract(epoch from clock_timestamp()) "
            f"FROM {schema}.replica_leases"
        ).fetchall()
    return {e: (h, int(t), float(left)) for e, h, t, left in rows}


def _held(url: str, schemas: list[str], holder: str) -> dict[tuple[str, str], int]:
    """(schema, name) -> token of every lease `holder` holds in `schemas`."""
    return {(s, e): t for s in schemas for e, (h, t, _) in _rows(url, s).items() if h == holder}


def _held_through(
    url: str, schemas: list[str], me: str, mine: dict[tuple[str, str], int], stopped_at: float
) -> str | None:
    """`held` once each lease of `mine` is still `me`'s with its token and time
    left, twice the lease time after `stopped_at`; `moved` when one moved."""
    now = {(s, e): r for s in schemas for e, r in _rows(url, s).items()}
    for key, token in mine.items():
        holder, t, _ = now[key]
        if (holder, t) != (me, token):
            return "moved"
    if time.monotonic() - stopped_at > 2 * LEASE and all(now[k][2] > 0 for k in mine):
        return "held"
    return None


def _replica_id(w: Watch) -> str:
    return str(w.wait_log("fleet_started")["replica"])


def _nets_of(w: Watch) -> set[str]:
    mine: set[str] = set()
    for line in list(w.logs):
        if line.get("event") == "network_started":
            mine.add(str(line["network"]))
        elif line.get("event") in ("network_stopped", "network_failed"):
            mine.discard(str(line["network"]))
    return mine


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_fleet_whose_interpreter_is_held_keeps_every_lease_until_the_stall_bound(
    rig: FleetRig, pg_server: pg.Server
) -> None:
    url = pg_server.url(rig.url)
    names = rig.names()
    a, b = rig.start_together(2)
    wait_for("2 networks each, in sync", lambda: logged_in_sync([a, b], names) == [2, 2], SETTLE)
    me = _replica_id(a)
    schemas = [FLEET_SCHEMA] + [network_schema(n) for n in sorted(names)]
    a_nets = _nets_of(a)
    mine = _held(url, schemas, me)
    # Its networks' leases and each of those networks' element leases.
    assert {k[0] for k in mine} == {FLEET_SCHEMA} | {network_schema(n) for n in a_nets}, mine
    # 1. Held for twice the lease time (a long collection): no lease moves.
    mark = a.mark()
    os.kill(a.proc.pid, signal.SIGSTOP)
    stopped_at = time.monotonic()
    held = wait_for(
        "A's leases renewed past twice the lease time, or moved",
        lambda: _held_through(url, schemas, me, mine, stopped_at),
        timeout=120,
    )
    os.kill(a.proc.pid, signal.SIGCONT)
    resumed_at = time.monotonic()
    assert held == "held", "a lease of the held fleet process moved"
    started = a.wait_log("lease_keeper_started")
    directory, keeper = Path(started["directory"]), int(started["pid"])
    assert _held(url, schemas, me) == mine
    lost = [
        x
        for x in a.logs[mark:]
        if x.get("event") in ("lease_lost", "writes_stopped", "network_lease_lost")
        or x.get("event") == "network_stopped"
    ]
    assert not lost, lost
    net = next(n for n in rig.nets if n.name in a_nets)
    net.commit("Bea")
    wait_for("a commit to A's network lands", lambda: all_named(net, "Bea"), SETTLE)
    assert _nets_of(a) == a_nets
    # 2. Stuck for good: the keeper stops after the stall bound, the leases move.
    seen = wait_for(
        "the keeper hears that A's loop moves again",
        lambda: (s := keeper_seen(directory)) > resumed_at and s,
    )
    tokens = _held(url, schemas, me)
    os.kill(a.proc.pid, signal.SIGSTOP)
    moved = wait_for(
        "B holds A's networks",
        lambda: (
            all(_rows(url, FLEET_SCHEMA)[f"network:{n}"][0] not in (None, me) for n in a_nets)
            or None
        ),
        timeout=STALL + 180,
    )
    moved_at = time.monotonic()
    mark = a.mark()
    os.kill(a.proc.pid, signal.SIGCONT)
    # Held until the stall bound (counted from when the loop last moved), not for good.
    assert moved and moved_at > seen + STALL, (moved_at, seen)
    wait_for(
        "A stops the networks it lost",
        lambda: all(n not in _nets_of(a) for n in a_nets),
        timeout=120,
    )
    wait_for("B runs all 4, in sync", lambda: logged_in_sync([a, b], names) == [0, 4], SETTLE)
    net.commit("Cid")
    wait_for("a commit to a network taken over lands", lambda: all_named(net, "Cid"), SETTLE)
    # The element refuses a write with the token of the lease A lost.
    element = net.element.stem
    old = tokens[(network_schema(net.name), element)]
    store = ElementStore(net.element)
    try:
        with pytest.raises(FencedError):
            store.write(
                WriteOp("put", "cos", "98", {"number": 98, "comment": "stale"}),
                fence=(element, old),
            )
    finally:
        store.close()
    # 3. Killed: its keeper goes with it, and so do the leases (lease time).
    wait_for("the networks spread again", lambda: logged_in_sync([a, b], names) == [2, 2], SETTLE)
    theirs = _nets_of(a)
    a.proc.kill()
    a.proc.wait(30)
    wait_for("the keeper exits with its fleet process", lambda: process_gone(keeper), timeout=30)
    assert not directory.exists()  # what it published goes with it
    wait_for(
        "B holds A's networks",
        lambda: (
            all(_rows(url, FLEET_SCHEMA)[f"network:{n}"][0] not in (None, me) for n in theirs)
            or None
        ),
        timeout=LEASE + 60,
    )


def test_one_keeper_renews_a_fleets_leases_in_every_schema_and_never_lists_a_network_left(
    pg_server: pg.Server,
) -> None:
    # In this process: leases on a network (the fleet's schema) and on that
    # network's element (its own schema), renewed by the keeper alone.
    import io

    from provgit.journal import leases as lease_ops
    from provgit.journal.leases import LeaseStore
    from provgit.watch.lease_keeper import LeaseKeeper
    from provgit.watch.logs import Log

    url = pg_server.url(pg_server.new_database())
    lease, me, net = 2.0, "host:1:abcd", network_schema("net-01")
    fleet, network = LeaseStore(url, None, 5.0, FLEET_SCHEMA), LeaseStore(url, None, 5.0, net)
    keeper = LeaseKeeper(me, url, None, FLEET_SCHEMA, lease, 0.5, Log("json", io.StringIO()))
    try:
        t_net = fleet.call(lease_ops.claim, "network:net-01", me, lease)
        t_cs1 = network.call(lease_ops.claim, "cs1", me, lease)
        network.call(lease_ops.heartbeat, me, "host", 1, None)
        claimed_at = time.monotonic()
        keeper.start()

        def tell() -> None:
            tokens = {"network:net-01": t_net}
            keeper.tell(time.monotonic(), tokens, None, {net: {"cs1": t_cs1}})

        def past(when: float) -> bool:
            tell()
            time.sleep(0.1)
            return time.monotonic() > when

        wait_for("three lease times", lambda: past(claimed_at + 3 * lease))
        assert _rows(url, FLEET_SCHEMA)["network:net-01"][:2] == (me, t_net)
        assert _rows(url, FLEET_SCHEMA)["network:net-01"][2] > 0
        assert _rows(url, net)["cs1"][:2] == (me, t_cs1) and _rows(url, net)["cs1"][2] > 0
        assert keeper.renewed(net)["cs1"][0] == t_cs1
        assert keeper.renewed()["network:net-01"][0] == t_net
        # The network's watcher stops (its leases and its place in the list go)
        # while the keeper is still told of them: nothing is renewed or listed again.
        network.call(lease_ops.leave, me, ["cs1"])
        left_at = time.monotonic()
        wait_for("two lease times more", lambda: past(left_at + 2 * lease))
        assert _rows(url, net)["cs1"][0] is None
        assert network.call(lease_ops.live_replicas, 60.0) == []
        assert "cs1" not in keeper.renewed(net)
    finally:
        keeper.close()
        fleet.close()
        network.close()
