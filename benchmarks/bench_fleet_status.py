"""A fleet replica's CPU per `/status.json` request, 20 networks (issue #19).

    .venv/bin/python benchmarks/bench_fleet_status.py [--networks 20] [--requests 20]

Setup: tests/watch/fleet_helpers.py's fleet (each network a git repository
of 2 users on two embedded elements), a throwaway PostgreSQL cluster
(tests/journal/pg.py), one `provgit fleet watch` replica holding every
network, left until each network is Sync Completed and quiet. Then
--requests requests one after the other, and --clients clients at once
making --each each. CPU = the replica's user + sys (/proc/PID/stat)
over the requests, divided by their number; wall = each request's own time.
--soak SECONDS: then --clients clients poll for that long (each request after
the last answer), the replica's RSS read every 10 s; every answer checked to
say each network in sync (the fleet is quiet: any other answer is a lie), the
answers served from memory (`fresh: false`) and the leases the replica lost
(its log) counted.
To measure the code before the kept documents, run it with PYTHONPATH set to
that code's `src` (the replica is started with this environment).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from journal import pg  # noqa: E402
from watch.fleet_helpers import fleet_status, make_fleet, settled  # noqa: E402
from watch.helpers import Watch  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_request(w: Watch) -> float | None:
    """Seconds, or None when no answer came within fleet_status's 120 s."""
    started = time.perf_counter()
    try:
        fleet_status(w, fresh=False)  # what a client gets, fresh or from memory
    except TimeoutError:
        return None
    return time.perf_counter() - started


def measure(w: Watch, requests: int, clients: int) -> dict[str, Any]:
    load = os.getloadavg()[0]
    before = cpu_seconds(w.proc.pid)
    if clients == 1:
        answers = [timed_request(w) for _ in range(requests)]
    else:
        with ThreadPoolExecutor(clients) as pool:
            answers = list(pool.map(lambda _: timed_request(w), range(requests * clients)))
    cpu = cpu_seconds(w.proc.pid) - before
    walls = [a for a in answers if a is not None] or [float("nan")]
    return {
        "clients": clients,
        "requests": len(answers),
        "timed_out": answers.count(None),
        "cpu_ms_per_request": round(1000 * cpu / len(answers), 1),
        "cpu_seconds": round(cpu, 2),
        "wall_median_s": round(statistics.median(walls), 3),
        "wall_max_s": round(max(walls), 3),
        "load_before": round(load, 1),
        "load_after": round(os.getloadavg()[0], 1),
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def soak(w: Watch, seconds: float, clients: int) -> dict[str, Any]:
    """`clients` polling /status.json for `seconds`: RSS over time, answers, lies."""
    end = time.monotonic() + seconds
    counts = {"answers": 0, "timed_out": 0, "not_in_sync": 0, "not_fresh": 0}
    walls: list[float] = []
    mark = w.mark()

    def client(_: int) -> None:
        while time.monotonic() < end:
            started = time.perf_counter()
            try:
                doc = fleet_status(w, fresh=False)
            except TimeoutError:
                counts["timed_out"] += 1
                continue
            walls.append(time.perf_counter() - started)
            counts["answers"] += 1
            if not all(n.get("in_sync") is True for n in doc["networks"]):
                counts["not_in_sync"] += 1
            if doc.get("fresh") is False:  # the last document built, from memory
                counts["not_fresh"] += 1

    load = os.getloadavg()[0]
    samples = [round(rss_mb(w.proc.pid), 1)]
    before = cpu_seconds(w.proc.pid)
    with ThreadPoolExecutor(clients) as pool:
        running = [pool.submit(client, i) for i in range(clients)]
        while not all(f.done() for f in running):
            time.sleep(10)  # a benchmark's sampling period
            samples.append(round(rss_mb(w.proc.pid), 1))
        for f in running:
            f.result()
    lost = [e for e in w.logs[mark:] if e.get("event") in ("lease_lost", "network_lease_lost")]
    return {
        "seconds": seconds,
        "clients": clients,
        **counts,
        "wall_median_s": round(statistics.median(walls), 3) if walls else None,
        "wall_max_s": round(max(walls), 3) if walls else None,
        # A lease round starved by status requests (the default executor) shows here.
        "leases_lost": len(lost),
        "cpu_seconds": round(cpu_seconds(w.proc.pid) - before, 1),
        "rss_mb_first_last_max": [samples[0], samples[-1], max(samples)],
        "rss_mb_samples": samples,
        "load_before": round(load, 1),
        "load_after": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", type=int, default=20)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--each", type=int, default=5, help="requests per concurrent client")
    ap.add_argument("--soak", type=float, default=0.0, help="then poll this many seconds")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, pg.running() as server:
        rig = make_fleet(Path(tmp), args.networks, server.new_database(), pg.PASSWORD, 15.0)
        rig.fetch_seconds = 5.0
        w = rig.start()
        try:
            started = time.monotonic()
            while settled([fleet_status(w)], rig.names()) is None:
                if time.monotonic() - started > 900:
                    raise SystemExit("the fleet did not settle in 900 s")
                time.sleep(2)  # a benchmark's poll, not a test's
            settle_s = time.monotonic() - started
            time.sleep(5)  # the networks' last journal writes after their runs
            built = fleet_status(w)["replica"].get("documents_built")
            out: dict[str, Any] = {
                "networks": args.networks,
                "settled_seconds": round(settle_s, 1),
                "code": os.environ.get("PYTHONPATH") or "this checkout",
                "sequential": measure(w, args.requests, 1),
            }
            print(json.dumps(out), file=sys.stderr, flush=True)  # kept if the rest fails
            out["concurrent"] = measure(w, args.each, args.clients)
            after = fleet_status(w)["replica"].get("documents_built")
            out["documents_built_during"] = None if built is None else after - built
            if args.soak:
                print(json.dumps(out), file=sys.stderr, flush=True)
                out["soak"] = soak(w, args.soak, args.clients)
            print(json.dumps(out, indent=1))
        finally:
            w.stop()


if __name__ == "__main__":
    main()
