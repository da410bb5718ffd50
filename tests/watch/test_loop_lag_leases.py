"""Nothing on a replica's event loop delays its lease renewals, and nothing
waits on the database there for long (issue #19, loop10).

At load ~20 a replica of `bench_replicas_commit.py` lost its leases
mid-commit: the renewals were started from the event loop, so any step
holding the loop (a journal statement waiting on a lock, a long derivation)
delayed them past the margin. The renewals now run in a thread of their own
(replicas.py), which renews only while the loop still moves (loop_lag.py): a
loop held up by a journal statement waiting on a lock keeps its leases, one
stuck for good (four lease times) lets them go. Real PostgreSQL, real simulators, real
`provgit watch` processes; the stuck-loop case on a real lease table.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from apply.helpers import Sim
from journal import pg
from provgit.watch.logs import Log
from provgit.watch.replicas import Replica

from .helpers import Watch
from .replica_helpers import lease_rows, make_cluster, wait_for

LEASE = 5.0
# How long the lock may last at most (the test ends it sooner on its events).
LOCK_BOUND = 90.0


def _answers(w: Watch, path: str, within: float) -> bool:
    """Whether `path` is answered (any HTTP status) within `within` seconds."""
    try:
        with urllib.request.urlopen(w.url + path, timeout=within) as r:
            r.read()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def _expiries(conn: Any, holder: str) -> dict[str, float]:
    """The leases `holder` holds, as (element: seconds left on the database's clock)."""
    rows = conn.execute(
        "SELECT element, expires - extract(epoch from clock_timestamp()) "
        "FROM replica_leases WHERE holder = %s",
        (holder,),
    ).fetchall()
    return {e: float(left) for e, left in rows}


def _waiters(conn: Any, table: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE relation = %s::regclass AND NOT granted", (table,)
    ).fetchone()
    return int(row[0])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_replica_keeps_its_leases_while_a_journal_table_holds_its_event_loop(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server, watches: list[Watch]
) -> None:
    import psycopg

    url = pg_server.url(pg_server.new_database())
    c = make_cluster(tmp_path, four_sims, url, LEASE, users=10)
    replicas = [c.start() for _ in range(2)]
    watches += replicas
    wait_for("the elements spread over two replicas", lambda: c.spread(replicas[0], replicas))
    wait_for("every element has the first commit", lambda: c.all_named("Ann"))
    # The replica that is not the leader reads the commit the leader published
    # (the journal's `meta`) on its event loop at every fetch tick (0.3 s).
    follower = wait_for(
        "a follower",
        lambda: next((w for w in replicas if not w.status()["watch"]["replica"]["leader"]), None),
    )
    me = follower.status()["watch"]["replica"]["id"]
    before = lease_rows(url)
    mine = {e for e, (holder, _) in before.items() if holder == me}
    assert mine, before
    marks = [len(w.logs) for w in replicas]
    with (
        psycopg.connect(url, autocommit=True) as watcher_side,
        psycopg.connect(url, autocommit=False) as locker,
    ):
        # As a migration's ALTER or a VACUUM FULL would.
        locker.execute("LOCK TABLE meta IN ACCESS EXCLUSIVE MODE")
        wait_for("a replica's statement waits for the lock", lambda: _waiters(watcher_side, "meta"))
        started = time.monotonic()
        # Renewed through the block: each lease of the follower runs on to
        # past twice the lease time after the block began (before: its
        # renewals waited for the loop, which waited for the lock).
        wanted = LEASE * 2
        while time.monotonic() - started < LOCK_BOUND:
            left = _expiries(watcher_side, me)
            renewed = set(left) == mine and all(
                s > wanted - (time.monotonic() - started) for s in left.values()
            )
            if renewed and time.monotonic() - started > wanted:
                break
            time.sleep(0.1)  # a poll's pace, bounded by LOCK_BOUND
        locker.rollback()
    # The follower's loop answers again once the lock went ...
    assert _answers(follower, "/healthz", LOCK_BOUND / 3)
    # No lease moved: the same holders with the same tokens, nothing lost or stopped.
    assert lease_rows(url) == before
    for w, mark in zip(replicas, marks, strict=True):
        lost = [x for x in w.logs[mark:] if x.get("event") in ("lease_lost", "writes_stopped")]
        assert not lost, lost
    # The loop's lag is in /metrics: the lock waits its statements made are in it.
    lag = follower.get("/metrics")[1].split("provgit_event_loop_lag_seconds ")[-1]
    assert float(lag.split()[0]) > 0.0


def _log() -> tuple[Log, io.StringIO]:
    out = io.StringIO()
    return Log("json", out), out


def test_a_replica_whose_event_loop_is_stuck_lets_its_leases_go(pg_server: pg.Server) -> None:
    # The renewal thread renews only while the loop still wakes its probe: a
    # replica stuck for good hands its elements to the others (the lease runs
    # out), one that moves again claims them back with new tokens.
    from provgit.watch.loop_lag import LoopLag

    url = pg_server.url(pg_server.new_database())
    log, out = _log()
    replica = Replica(url, None, 2.0, log, lambda _: None, replica_id="stuck:1:0")
    replica.elements = frozenset({"cs1"})
    lag = LoopLag()  # not run: the loop never wakes it (seen stays where it is)

    async def scenario() -> tuple[int, int]:
        stop = asyncio.Event()
        task = asyncio.create_task(replica.run(stop, lag))

        async def until(what: str, check: Any, bound: float = 60.0) -> None:
            end = time.monotonic() + bound
            while not check():
                assert time.monotonic() < end, f"not within {bound} s: {what}"
                await asyncio.sleep(0.05)

        lag.seen = time.monotonic()
        await until("cs1 claimed", lambda: replica.writable() == ["cs1"])
        first = replica.held["cs1"].token
        # The loop stops waking the probe: after stall_seconds, no renewal.
        await until("the leases lapse", lambda: '"writes_stopped"' in out.getvalue())
        assert replica.writable() == [] and replica.held == {}
        assert replica.stall_seconds == pytest.approx(8.0)
        # It moves again: claimed anew (a new token: the old lease expired).
        await until("cs1 claimed again", lambda: _beat(lag) and replica.writable() == ["cs1"])
        again = replica.held["cs1"].token
        stop.set()
        await task
        await replica.stop()
        return first, again

    first, again = asyncio.run(scenario())
    assert again > first
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert "loop_stalled" in events and "writes_stopped" in events
    assert events.index("loop_stalled") < events.index("loop_moves_again")
    assert lease_rows(url)["cs1"] == (None, again)  # handed back at stop


def _beat(lag: Any) -> bool:
    lag.seen = time.monotonic()
    return True


def test_the_loop_lag_is_the_worst_of_the_window_and_of_the_wait_going_on() -> None:
    from provgit.watch.loop_lag import LoopLag

    lag = LoopLag(interval=0.25, window=60.0)
    lag.seen = 100.0
    lag.observe(100.0, 0.5)
    lag.observe(110.0, 2.0)
    lag.observe(120.0, 0.1)
    lag.seen = 120.0
    assert lag.worst(now=120.1) == 2.0
    lag.seen = 168.9
    assert lag.worst(now=169.0) == 2.0  # 110 is still within the minute
    lag.seen = 169.0
    # 110 is out of it; the loop has not woken the probe since 169: that wait.
    assert lag.worst(now=175.0) == pytest.approx(175.0 - 169.0 - 0.25)
    lag.seen = 180.0
    lag.observe(180.0, 0.0)
    assert lag.worst(now=180.1) == 0.0  # the minute before 180.1 lagged nowhere
