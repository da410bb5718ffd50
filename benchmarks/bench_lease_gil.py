"""A replica whose interpreter holds the GIL for twice its lease time (issue #19, loop11).

    .venv/bin/python benchmarks/bench_lease_gil.py [--lease 5] [--hold 10] [--runs 3]
    PYTHONPATH=<other tree>/src .venv/bin/python benchmarks/bench_lease_gil.py ...

A full garbage collection of a 100,000-user heap held a replica's GIL 20-36 s
at load 32-45 (benchmarks/README.md, loop10); any long C call does the same.
Here a child process runs a `Replica` (watch/replicas.py) holding 4 elements
and then holds its GIL for `--hold` seconds in one C call (libc `sleep`
through `ctypes.PyDLL`, which keeps the GIL: deterministic, no CPU). This
process plays a rival replica meanwhile: it claims every lease of the child
that expired (as another replica's round would). Leases lost = the elements
it took. Also: whether the child may write to each element the moment the
hold ends (`valid`), the keeper's CPU over the run and its peak RSS. The
child imports `provgit` from PYTHONPATH: point it at another tree for an A/B.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from journal import pg  # noqa: E402

ELEMENTS = ["e1", "e2", "e3", "e4"]

CHILD = r"""
import asyncio, ctypes, io, json, sys, time
from provgit.watch.logs import Log
from provgit.watch.replicas import Replica

url, lease, hold = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
elements = json.loads(sys.argv[4])
out = io.StringIO()
try:
    replica = Replica(url, None, lease, Log("json", out), lambda _: None, keeper=True)
except TypeError:  # a tree without the keeper
    replica = Replica(url, None, lease, Log("json", out), lambda _: None)
replica.elements = frozenset(elements)

def say(**kw):
    print(json.dumps(kw), flush=True)

async def main():
    stop = asyncio.Event()
    task = asyncio.create_task(replica.run(stop))
    while replica.writable() != sorted(elements):
        await asyncio.sleep(0.05)
    await asyncio.sleep(2 * replica.tick)  # the keeper is told what is held
    keeper = getattr(replica, "keeper", None)
    say(event="hold", id=replica.id, keeper=keeper.pid if keeper else None)
    t0 = time.monotonic()
    ctypes.PyDLL(None).sleep(int(hold))  # one C call that keeps the GIL
    held = time.monotonic() - t0
    valid = sorted(e for e in elements if replica.valid(e) is not None)
    say(event="held", wall=held, valid_after=valid)
    await asyncio.sleep(3 * replica.tick)  # its own rounds run again
    lost = [json.loads(x) for x in out.getvalue().splitlines()]
    lost = sorted(x["element"] for x in lost if x["event"] == "lease_lost")
    say(event="done", lost=lost, holds=replica.writable())
    stop.set()
    await task
    await replica.stop()

asyncio.run(main())
"""


def cpu_rss(pid: int) -> tuple[float, float]:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0, 0.0
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = next((int(x.split()[1]) / 1024 for x in status if x.startswith("VmHWM:")), 0.0)
    return cpu, rss


def one_run(server: pg.Server, lease: float, hold: float) -> dict[str, Any]:
    import psycopg

    url = server.url(server.new_database())
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(lease), str(hold), json.dumps(ELEMENTS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    taken: list[str] = []
    keeper_cpu, keeper_rss = 0.0, 0.0
    result: dict[str, Any] = {"load": round(os.getloadavg()[0], 1)}
    with psycopg.connect(url, autocommit=True) as db:
        started = json.loads(child.stdout.readline())
        keeper = started["keeper"]
        held = None
        os.set_blocking(child.stdout.fileno(), False)
        while held is None:
            # The rival's round: claim what expired (as lease_ops.claim).
            rows = db.execute(
                "UPDATE replica_leases SET holder = 'rival', token = token + 1, "
                "expires = extract(epoch from clock_timestamp()) + %s "
                "WHERE holder = %s AND expires < extract(epoch from clock_timestamp()) "
                "RETURNING element",
                (lease, started["id"]),
            ).fetchall()
            taken += [r[0] for r in rows]
            if keeper:
                keeper_cpu, keeper_rss = cpu_rss(keeper)
            line = child.stdout.readline()
            if line:
                held = json.loads(line)
            else:
                time.sleep(0.1)  # the rival's pace
        os.set_blocking(child.stdout.fileno(), True)
        done = json.loads(child.stdout.readline())
    child.wait(60)
    result.update(
        hold_s=round(held["wall"], 2),
        valid_after=len(held["valid_after"]),
        leases_lost=len(taken),
        lost_logged=len(done["lost"]),
        keeper_cpu_s=round(keeper_cpu, 3),
        keeper_peak_rss_mb=round(keeper_rss, 1),
    )
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lease", type=float, default=5.0)
    ap.add_argument("--hold", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with pg.running() as server:
        results = [one_run(server, args.lease, args.hold) for _ in range(args.runs)]
    for r in results:
        print(json.dumps(r), flush=True)
    lost = [r["leases_lost"] for r in results]
    print(json.dumps({"leases_lost_median": statistics.median(lost), "runs": len(results)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
