#!/usr/bin/env python
"""Element benchmarks: http-driver full read and write throughput against a real
simulator process (`provgit element serve`) on 127.0.0.1.

  * full read of N records (default 100,000 users) through HttpDriver, paged
    by 5000; floor: <= 3 s.
  * write throughput of HttpDriver at concurrency C (default 32), one
    conditional create per request, against a simulator with 0 ms and with
    20 ms injected latency; floor at 20 ms: >= 80 % of C / latency
    (1280 writes/s for 32 / 20 ms).

Figures only, never assertions: the exit code is 0 unless something broke;
`--check` makes it 1 when a floor is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import RUNS

from provgit.drivers.base import DriverConfig, WriteOp
from provgit.drivers.http import HttpDriver
from provgit.simulator.store import ElementStore

TOKEN = "bench-token"
READ_FLOOR_S = 3.0
WRITE_FLOOR_SHARE = 0.8


def start(db: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PROVGIT_ELEMENT_TOKEN": TOKEN}
    argv = [sys.executable, "-m", "provgit", "element", "serve", "--name", "bench"]
    argv += ["--type", "mivb", "--port", "0", "--db", str(db), "--admin", *extra]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    line: list[str] = []
    t = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    t.start()
    t.join(30)
    if not line or not line[0].startswith("listening on "):
        proc.kill()
        raise SystemExit(f"simulator did not start: {line}")
    return proc, line[0].strip().removeprefix("listening on ")


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def user(i: int) -> dict[str, Any]:
    """A user record of realistic size (~300 bytes of JSON)."""
    return {
        "login_id": f"user{i:06d}",
        "first_name": "Firstname",
        "last_name": f"Lastname{i}",
        "directory_name": f"Lastname{i}, F"[:21],
        "department": "Engineering",
        "location": "Ottawa",
        "role": "Knowledge Worker",
        "services": [
            {
                "dn": str(1_000_000 + i),
                "device": "6940",
                "cos_day": "1",
                "cos_night1": "1",
                "cos_night2": "1",
                "cor_day": "1",
                "voicemail": True,
            },
        ],
        "_managed_by": "provgit",
    }


def seed(db: Path, n: int) -> None:
    store = ElementStore(db, name="bench", element_type="mivb", synchronous="NORMAL")
    store.write_batch([WriteOp("put", "cos", "1", {"comment": "default"})])
    for start_i in range(0, n, 20_000):
        ops = [
            WriteOp("put", "users", f"user{i:06d}", user(i))
            for i in range(start_i, min(n, start_i + 20_000))
        ]
        store.write_batch(ops)
    store.close()


def driver(url: str, concurrency: int = 32) -> HttpDriver:
    settings = {"url": url, "token": TOKEN, "timeout": 30, "concurrency": concurrency}
    return HttpDriver(DriverConfig("bench", "mivb", settings))


async def full_read(url: str, page: int) -> tuple[float, int]:
    d = driver(url)
    try:
        await d.info()  # open the pooled connection first; we time the read
        started = time.perf_counter()
        count, cursor = 0, None
        while True:
            p = await d.list_records("users", cursor, page)
            count += len(p.records)
            cursor = p.next_cursor
            if cursor is None:
                break
        return time.perf_counter() - started, count
    finally:
        await d.close()


async def writes(url: str, n: int, concurrency: int, tag: str) -> float:
    d = driver(url, concurrency)
    try:
        await d.info()
        started = time.perf_counter()
        results = await asyncio.gather(
            *(
                d.write(WriteOp("put", "locations", f"{tag}-{i:06d}", {"name": f"L{i}"}))
                for i in range(n)
            )
        )
        elapsed = time.perf_counter() - started
        assert all(r.ok for r in results)
        return n / elapsed
    finally:
        await d.close()


def admin(url: str, body: dict[str, Any]) -> None:
    import urllib.request

    req = urllib.request.Request(
        url + "/admin/faults", data=json.dumps(body).encode(), method="POST"
    )
    req.add_header("Authorization", f"Bearer {TOKEN}")
    urllib.request.urlopen(req, timeout=10).read()


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--records", type=int, default=100_000, help="records for the full read")
    ap.add_argument("--page", type=int, default=5000, help="listing page size")
    ap.add_argument(
        "--repeat", type=int, default=RUNS, help="runs of each measure (best and median shown)"
    )
    ap.add_argument("--writes", type=int, default=4000, help="writes per throughput run")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--latencies", default="0,20", help="injected latencies in ms, comma-separated")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--check", action="store_true", help="exit 1 if a floor is missed")
    args = ap.parse_args()

    figures: dict[str, Any] = {
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "date": time.strftime("%Y-%m-%d"),
        # Other work on the machine skews these figures; say how busy it was.
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
    }
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-elements-") as tmp:
        db = Path(tmp) / "read.sqlite"
        t = time.perf_counter()
        seed(db, args.records)
        figures["seed_s"] = round(time.perf_counter() - t, 2)
        proc, url = start(db)
        try:
            runs = [asyncio.run(full_read(url, args.page)) for _ in range(args.repeat)]
        finally:
            stop(proc)
        times = [r[0] for r in runs]
        assert all(r[1] == args.records for r in runs), runs
        figures["full_read"] = {
            "records": args.records,
            "page": args.page,
            "best_s": round(min(times), 3),
            "median_s": round(statistics.median(times), 3),
            "floor_s": READ_FLOOR_S,
        }
        ok &= statistics.median(times) <= READ_FLOOR_S

        proc, url = start(Path(tmp) / "write.sqlite")
        try:
            figures["writes"] = []
            for latency in (float(x) for x in args.latencies.split(",")):
                admin(url, {"latency_ms": latency})
                rates = [
                    asyncio.run(writes(url, args.writes, args.concurrency, f"l{latency:g}r{i}"))
                    for i in range(args.repeat)
                ]
                entry: dict[str, Any] = {
                    "latency_ms": latency,
                    "concurrency": args.concurrency,
                    "writes": args.writes,
                    "best_per_s": round(max(rates)),
                    "median_per_s": round(statistics.median(rates)),
                }
                if latency > 0:
                    ideal = args.concurrency / (latency / 1000)
                    entry["floor_per_s"] = round(WRITE_FLOOR_SHARE * ideal)
                    entry["share_of_ideal"] = round(statistics.median(rates) / ideal, 3)
                    ok &= statistics.median(rates) >= WRITE_FLOOR_SHARE * ideal
                figures["writes"].append(entry)
        finally:
            stop(proc)
    figures["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    figures["floors_hold"] = ok
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        r = figures["full_read"]
        print(
            f"machine: {figures['machine']}  date: {figures['date']}  load average: "
            f"{figures['loadavg_1m_at_start']} -> {figures['loadavg_1m_at_end']}"
        )
        print(
            f"full read {r['records']} records (page {r['page']}): best {r['best_s']} s, "
            f"median {r['median_s']} s (floor <= {r['floor_s']} s)"
        )
        for w in figures["writes"]:
            line = (
                f"writes @ {w['latency_ms']:g} ms latency, concurrency {w['concurrency']}: "
                f"median {w['median_per_s']}/s, best {w['best_per_s']}/s"
            )
            if "floor_per_s" in w:
                line += f" (floor >= {w['floor_per_s']}/s; {w['share_of_ideal']:.0%} of ideal)"
            print(line)
        print("floors hold" if ok else "FLOOR MISSED")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
