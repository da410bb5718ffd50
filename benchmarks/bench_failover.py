"""Replica failover: SIGKILL of an element's holder mid-apply -> the first write
by its new holder (issue #19).

    .venv/bin/python benchmarks/bench_failover.py [--rounds 30] [--lease 15] [--users 200]
        [--signal kill|stop|stop-all] [--stall S]

Setup (the replica tests' own, tests/watch/replica_helpers.py): a throwaway
PostgreSQL cluster (tests/journal/pg.py), 4 simulators (3 call servers and a
MiCollab) answering in 20 ms, a git repository, 3 `provgit watch` replicas
sharing the journal with `--lease-seconds LEASE`; batches of 4 writes, one in
flight per element, so an apply of all users' new names takes a few seconds.

Each round: commit new first names for every user; once the chosen element
took a random 1-40 writes, SIGKILL the replica holding its lease (read from
the lease table) and start a new replica; the failover time is from the kill
to the first change on that element written under a higher fencing token
(polled every 10 ms from the simulator's /admin/fences). Then wait until every
element holds the commit and check that no record was written twice.

`--signal stop`: SIGSTOP of the replica's process alone (its lease keeper runs
on: a process whose interpreter is held, as by a long GC or a debugger); `stop-all`:
the replica and its keeper (a paused VM or container, a frozen cgroup, ^Z). The
stopped replica is killed once the new holder wrote. `--stall S`: the replicas'
`--lease-stall-seconds` (default: four lease times).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "src"))

from apply.helpers import start_sims  # noqa: E402
from journal import pg  # noqa: E402
from watch.helpers import Watch  # noqa: E402
from watch.replica_helpers import (  # noqa: E402
    Cluster,
    by_pid,
    fences,
    make_cluster,
    rewritten_unchanged,
    sim_changes,
    sim_revision,
    wait_for,
    written_twice,
)

SLOW_APPLY = "  batch_size: 4\n  batches_in_flight: 1\n"
# A start (simulator, replica) on a machine at load 30-45 can take over the
# test helpers' bound: the benchmark waits longer (it measures failover, not starts).
STARTS_WITHIN = 180.0
EXTRA: list[str] = []  # more arguments of each replica (--stall)


def lease_row(url: str, element: str) -> tuple[str, int]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT holder, token FROM replica_leases WHERE element = %s", (element,)
        ).fetchone()
    assert row is not None and row[0] is not None
    return str(row[0]), int(row[1])


def start(c: Cluster) -> Watch:
    """A new replica; on a loaded machine a start may miss the helpers' timeout: again."""
    for _ in range(3):
        try:
            return c.start(*EXTRA)
        except RuntimeError as e:
            print(f"replica start failed, again: {e}", flush=True)
    return c.start(*EXTRA)


def quiet(sims: list[Any]) -> None:
    """Until no element's revision moved for 2 s: a round's writes counted from
    its start are its own (the users' names land before the directory entries
    naming them, so `all_named` alone let the last ones count in the next round)."""
    last = None
    while True:
        now = {s.name: sim_revision(s) for s in sims}
        if now == last:
            return
        last = now
        time.sleep(2)


def halt(victim: Watch, how: str) -> list[int]:
    """Kill or stop the replica (and its keeper for `stop-all`); the pids stopped."""
    if how == "kill":
        victim.proc.kill()
        victim.proc.wait(timeout=30)
        return []
    pids = [victim.proc.pid]
    if how == "stop-all":
        pids += [int(d["pid"]) for d in victim.logs if d.get("event") == "lease_keeper_started"]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    return pids


def finish(victim: Watch, stopped: list[int]) -> None:
    """A stopped replica goes once its elements moved (its keeper exits with it)."""
    if stopped:
        victim.proc.kill()
        victim.proc.wait(timeout=30)
        for pid in stopped[1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # its pending death signal is delivered


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--lease", type=float, default=15.0)
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--signal", choices=("kill", "stop", "stop-all"), default="kill")
    ap.add_argument("--stall", type=float, default=None)
    args = ap.parse_args()
    import apply.helpers
    import watch.helpers

    apply.helpers.START_TIMEOUT = watch.helpers.START_TIMEOUT = STARTS_WITHIN  # type: ignore[misc]
    tmp = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    rng = random.Random(args.seed)
    times: list[float] = []
    twice = 0
    with pg.running() as server:
        url = server.url(server.new_database())
        specs = [("cs1", "mivb"), ("cs2", "mivb"), ("cs3", "mivb"), ("mcl", "micollab")]
        sims = start_sims(tmp, specs)
        for s in sims:
            s.admin("/admin/faults", {"latency_ms": 20})
        c = make_cluster(tmp, sims, url, args.lease, args.users, extra=SLOW_APPLY)
        if args.stall is not None:
            EXTRA[:] = ["--lease-stall-seconds", str(args.stall)]
        alive = [start(c) for _ in range(3)]
        try:
            wait_for("the first commit", lambda: c.all_named("Ann"), timeout=600)
            load = os.getloadavg()
            for n in range(args.rounds):
                name = f"R{n}x"
                quiet(sims)
                before = {s.name: sim_revision(s) for s in sims}
                target = rng.choice(sims)
                writes = rng.randint(1, 40)
                c.commit(name)
                wait_for(
                    "writes on the target",
                    lambda: sim_revision(target) - before[target.name] >= writes,  # noqa: B023
                    timeout=600,
                )
                holder, token = lease_row(url, target.name)
                victim = by_pid(alive, holder)
                stopped = halt(victim, args.signal)
                killed_at = time.monotonic()
                while True:
                    late = [
                        ch
                        for ch in fences(target)["changes"]
                        if ch["revision"] > before[target.name] and ch["token"] > token
                    ]
                    if late:
                        break
                    if time.monotonic() - killed_at > args.lease * 6 + 90:
                        raise SystemExit(f"round {n}: no write by a new holder")
                    time.sleep(0.01)
                took = time.monotonic() - killed_at
                times.append(took)
                finish(victim, stopped)
                alive.remove(victim)
                alive.append(start(c))
                wait_for("every element", lambda: c.all_named(name), timeout=600)  # noqa: B023
                for s in sims:
                    doubled = written_twice(s, before[s.name])
                    twice += len(doubled)
                    if doubled:  # which writes, under which fencing tokens
                        under = {ch["revision"]: ch["token"] for ch in fences(s)["changes"]}
                        which = [
                            (ch["revision"], under.get(ch["revision"]), ch["collection"], ch["key"])
                            for ch in sim_changes(s, before[s.name])
                            if (ch["collection"], ch["key"]) in doubled
                        ]
                        print(f"  {s.name} changed twice (revision, token, record): {which}")
                print(f"round {n}: {target.name} after {writes} writes: {took:.2f} s", flush=True)
            load_end = os.getloadavg()
            # Written again with the fields it had: over each element's whole history.
            unchanged = sum(len(rewritten_unchanged(s)) for s in sims)
        finally:
            for w in alive:
                w.stop()
            for s in sims:
                s.stop()
    floor = args.lease + 2
    over = sum(t > floor for t in times)
    print(
        f"{args.signal}, lease {args.lease:g} s, stall {args.stall or 4 * args.lease:g} s, "
        f"{len(times)} rounds: median {statistics.median(times):.2f} s, "
        f"max {max(times):.2f} s, min {min(times):.2f} s; over {floor:g} s: {over}; "
        f"records changed twice in a round: {twice}; rewritten unchanged: {unchanged}; "
        f"load {load[0]:.1f} at the start, {load_end[0]:.1f} at the end"
    )


if __name__ == "__main__":
    main()
