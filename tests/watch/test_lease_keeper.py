"""A replica's leases do not depend on its interpreter getting the GIL (issue
#19, loop11).

At load 32-45 a full garbage collection of a 100k-user heap held a replica's
GIL for 20-36 s: its renewal thread could not run and 23 leases were lost in
bench_replicas_commit.py. Each replica now has a lease keeper, a small process
of its own (journal/lease_keeper.py) that renews what the replica holds while
the replica's event loop moved within the stall bound (4 lease times).

A SIGSTOP of the replica's process alone (not its keeper) stands for any hold
of the GIL, whatever its cause: nothing of the interpreter runs. Real
PostgreSQL, real simulators, real `provgit watch` processes.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from apply.helpers import Sim
from journal import pg

from .helpers import Watch
from .replica_helpers import fenced_put, lease_rows, make_cluster, wait_for

LEASE = 5.0
STALL = 4 * LEASE


def _expiries(url: str, holder: str) -> dict[str, float]:
    """The leases `holder` holds: element -> seconds left on the database's clock."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT element, expires - extract(epoch from clock_timestamp()) "
            "FROM replica_leases WHERE holder = %s",
            (holder,),
        ).fetchall()
    return {e: float(left) for e, left in rows}


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def _keeper_seen(directory: Path) -> float:
    """When the replica's event loop last moved, as its keeper renewed under it."""
    return float(json.loads((directory / "held.json").read_text())["seen"])


def _held_through(url: str, me: str, mine: set[str], stopped_at: float) -> str | None:
    """`held` once every lease of `me` was renewed past twice the lease time
    after `stopped_at` (while the process is stopped); `moved` when one moved."""
    left = _expiries(url, me)
    if set(left) != mine:
        return "moved"
    since = time.monotonic() - stopped_at
    if since > 2 * LEASE and all(s > 0 for s in left.values()):
        return "held"
    return None


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_replica_whose_interpreter_is_held_keeps_its_leases_until_the_stall_bound(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server, watches: list[Watch]
) -> None:
    url = pg_server.url(pg_server.new_database())
    c = make_cluster(tmp_path, four_sims, url, LEASE, users=6)
    a, b = c.start(), c.start()
    watches += [a, b]
    wait_for("the elements spread over two replicas", lambda: c.spread(a, [a, b]))
    wait_for("every element has the first commit", lambda: c.all_named("Ann"))
    me = a.status()["watch"]["replica"]["id"]
    before = lease_rows(url)
    mine = {e for e, (holder, _) in before.items() if holder == me}
    assert mine, before
    try:
        # 1. Held for twice the lease time (a long collection): nothing moves.
        mark = a.mark()
        os.kill(a.proc.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        held = wait_for(
            "A's leases renewed past twice the lease time, or moved",
            lambda: _held_through(url, me, mine, stopped_at),
            timeout=120,
        )
        os.kill(a.proc.pid, signal.SIGCONT)
        resumed_at = time.monotonic()
        assert held == "held", "a lease of the held replica moved"
        started = a.wait_log("lease_keeper_started")
        directory = Path(started["directory"])
        assert lease_rows(url) == before
        wait_for("A answers again", lambda: a.status()["watch"]["replica"]["healthy"])
        assert set(a.status()["watch"]["replica"]["holds"]) == mine - {"@leader"}
        lost = [x for x in a.logs[mark:] if x.get("event") in ("lease_lost", "writes_stopped")]
        assert not lost, lost
        c.commit("Bea")
        wait_for("every element named Bea", lambda: c.all_named("Bea"))
        # 2. Stuck for good: the keeper stops after the stall bound, the leases move.
        tokens = {e: t for e, (_, t) in lease_rows(url).items() if e in mine}
        seen = wait_for(
            "the keeper hears that A's loop moves again",
            lambda: (s := _keeper_seen(directory)) > resumed_at and s,
        )
        os.kill(a.proc.pid, signal.SIGSTOP)
        moved = wait_for(
            "B holds A's elements",
            lambda: all(lease_rows(url)[e][0] not in (None, me) for e in mine) or None,
            timeout=STALL + 120,
        )
        moved_at = time.monotonic()
        mark = a.mark()
        os.kill(a.proc.pid, signal.SIGCONT)
        # Held until the stall bound (counted from when the loop last moved), not for good.
        assert moved and moved_at > seen + STALL, (moved_at, seen)
        wait_for(
            "A knows it lost them",
            lambda: any(x.get("event") in ("lease_lost", "writes_stopped") for x in a.logs[mark:]),
            timeout=60,
        )
        c.commit("Cid")
        wait_for("every element named Cid", lambda: c.all_named("Cid"))
        sims = {s.name: s for s in four_sims}
        for e in sorted(e for e in mine if e.startswith("cs")):  # mcl has no `cos`
            # The element refuses a write with the token of the lease A lost.
            code, body = fenced_put(sims[e], f"{e}/{tokens[e]}", "98")
            assert (code, body.get("code")) == (409, "fenced"), (code, body)
        wait_for("the elements spread again", lambda: c.spread(b, [a, b]))
        # 3. Killed: its keeper goes with it, and so do the leases (lease time).
        keeper = int(started["pid"])
        theirs = {e for e, (h, _) in lease_rows(url).items() if h == me}
        a.proc.kill()
        a.proc.wait(30)
        watches.remove(a)
        wait_for("the keeper exits with its replica", lambda: _gone(keeper), timeout=30)
        assert not directory.exists()  # what it published goes with it
        wait_for(
            "B holds A's elements",
            lambda: all(lease_rows(url)[e][0] not in (None, me) for e in theirs) or None,
            timeout=LEASE + 60,
        )
    finally:
        _resume(a)


def _resume(w: Any) -> None:
    if w.proc.poll() is None:
        os.kill(w.proc.pid, signal.SIGCONT)


def test_the_keeper_renews_while_the_renewal_thread_cannot_and_the_stricter_view_wins(
    pg_server: pg.Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In one process: the renewal thread claims cs1, then its rounds stop (as
    # when the interpreter cannot run them) while the event loop still moves.
    import asyncio
    import io

    from provgit.watch.logs import Log
    from provgit.watch.loop_lag import LoopLag
    from provgit.watch.replicas import Replica

    url = pg_server.url(pg_server.new_database())
    lease = 2.0
    replica = Replica(url, None, lease, Log("json", io.StringIO()), lambda _: None, keeper=True)
    replica.elements = frozenset({"cs1"})
    lag = LoopLag()  # not run: the test says when the loop moved

    async def until(what: str, check: Any, bound: float = 60.0) -> None:
        end = time.monotonic() + bound
        while not check():
            assert time.monotonic() < end, f"not within {bound} s: {what}"
            lag.seen = time.monotonic() if beating else lag.seen
            await asyncio.sleep(0.05)

    beating = True

    async def scenario() -> None:
        nonlocal beating
        stop = asyncio.Event()
        task = asyncio.create_task(replica.run(stop, lag))
        await until("cs1 claimed", lambda: replica.writable() == ["cs1"])
        token = replica.held["cs1"].token
        rounds = replica._step_now
        monkeypatch.setattr(replica, "_step_now", lambda: None)  # the thread's rounds stop
        claimed_until = replica.held["cs1"].valid_until
        # Past three lease times: still held, by the keeper's renewals alone.
        await until("three lease times", lambda: time.monotonic() > claimed_until + 3 * lease)
        assert replica.fence("cs1") == f"cs1/{token}"
        assert lease_rows(url)["cs1"] == (replica.id, token)
        # Cut off, as its own rounds say: the stricter view wins, no write.
        replica.connected = False
        assert replica.valid("cs1") is None
        replica.connected = True
        # The loop stops moving: after the stall bound the keeper renews no more.
        beating = False
        stalled_at = lag.seen
        await until(
            "the keeper's last renewal runs out",
            lambda: replica.valid("cs1") is None,
            bound=replica.stall_seconds + 30,
        )
        assert time.monotonic() > stalled_at + replica.stall_seconds
        # And in the database: the keeper stopped renewing, the lease runs out.
        await until(
            "the lease expires", lambda: _expiries(url, replica.id).get("cs1", -1.0) < 0, bound=30
        )
        monkeypatch.setattr(replica, "_step_now", rounds)
        stop.set()
        await task
        await replica.stop()

    asyncio.run(scenario())
    assert replica.keeper is not None and replica.keeper.process is None  # closed with `run`
