"""A fleet process whose interpreter is held: how many of its leases move (issue #19).

    .venv/bin/python benchmarks/bench_fleet_hold.py [--lease 15] [--holds 3] [--networks 4]
    PYTHONPATH=/tmp/main-src .venv/bin/python benchmarks/bench_fleet_hold.py   # another tree

Setup: the fleet tests' (tests/watch/fleet_helpers.py): a throwaway PostgreSQL
cluster, `--networks` small networks of one call server and one MiCollab
(embedded elements in a shared directory), 2 `provgit fleet watch` replicas
with `leases: {seconds: LEASE}`. Each hold: SIGSTOP one replica's process alone
(a full garbage collection or a long C call holding its GIL stands for it; its
lease keeper, if any, runs on) for twice the lease time plus 5 s, then SIGCONT;
counted: its leases (network leases in the fleet's schema, element leases in
each network's schema) held by another replica or under another token at the
end of the hold. Then wait until the networks are 2 and 2 again, in sync.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from journal import pg  # noqa: E402
from provgit.journal.location import network_schema  # noqa: E402
from watch.fleet_helpers import logged_in_sync, make_fleet  # noqa: E402
from watch.replica_helpers import wait_for  # noqa: E402

FLEET_SCHEMA = "provgit_fleet"


def leases(url: str, schemas: list[str]) -> dict[tuple[str, str], tuple[str | None, int]]:
    import psycopg

    found: dict[tuple[str, str], tuple[str | None, int]] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for s in schemas:
            if conn.execute("SELECT to_regclass(%s)", (f"{s}.replica_leases",)).fetchone()[0]:
                for e, h, t in conn.execute(
                    f"SELECT element, holder, token FROM {s}.replica_leases"
                ):
                    found[(s, e)] = (h, int(t))
    return found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lease", type=float, default=15.0)
    ap.add_argument("--holds", type=int, default=3)
    ap.add_argument("--networks", type=int, default=4)
    args = ap.parse_args()
    import provgit

    print(f"provgit from {Path(provgit.__file__).parent}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-fleet-hold-"))
    with pg.running() as server:
        rig = make_fleet(tmp, args.networks, server.new_database(), pg.PASSWORD, args.lease)
        url = server.url(rig.url)
        names = rig.names()
        schemas = [FLEET_SCHEMA] + [network_schema(n) for n in sorted(names)]
        half = args.networks // 2
        shares = [half, args.networks - half]
        replicas = rig.start_together(2)
        try:
            moved_counts = []
            for n in range(args.holds):
                wait_for("in sync", lambda: logged_in_sync(replicas, names) == shares, 600)
                victim = replicas[n % 2]
                me = str(victim.wait_log("fleet_started")["replica"])
                before = {k: v for k, v in leases(url, schemas).items() if v[0] == me}
                load = os.getloadavg()[0]
                os.kill(victim.proc.pid, signal.SIGSTOP)
                time.sleep(2 * args.lease + 5)
                after = leases(url, schemas)
                os.kill(victim.proc.pid, signal.SIGCONT)
                moved = sum(after.get(k) != v for k, v in before.items())
                moved_counts.append(moved)
                print(
                    f"hold {n}: {moved} of {len(before)} leases moved "
                    f"({2 * args.lease + 5:g} s held, load {load:.1f})",
                    flush=True,
                )
            print(f"leases moved per hold: {moved_counts}")
        finally:
            for w in replicas:
                if w.proc.poll() is None:
                    os.kill(w.proc.pid, signal.SIGCONT)
                    w.stop()


if __name__ == "__main__":
    main()
