"""Time `provgit plan` on a large network: warm caches, 1 % drift, 15 embedded elements.

    .venv/bin/python benchmarks/bench_plan.py [--users 100000] [--runs 3]

Steps: generate the network (benchmarks/generate.py) unless present; put every
record it projects onto its embedded elements (as an apply would); run
`provgit plan` once so the parse and observation caches are warm; then edit 1 %
of the user records on the elements out of band (drift) and time `provgit plan`
as a subprocess (the real CLI), median of --runs. Also times each stage
in-process. Floor (issue 4): <= 3 s for 100,000 users.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from _common import generated, populate  # noqa: E402

from provgit.drivers.base import WriteOp  # noqa: E402
from provgit.simulator.store import ElementStore  # noqa: E402
from provgit.source import read_directory  # noqa: E402
from provgit.validate import validate_source  # noqa: E402


def set_secrets(root: Path) -> None:
    """Give every secret reference of the config a value, as a real deployment would."""
    valid = validate_source(read_directory(root), None)
    for user in valid.state.of("users").values():
        refs = [user.voicemail_pin, *(s.hot_desk_pin for s in user.services)]
        for ref in refs:
            if ref is not None and ref.env:
                os.environ[ref.env] = str(1000 + zlib.crc32(ref.env.encode()) % 9000)


def drift(state_dir: Path, fraction: float, seed: int = 7) -> int:
    rng = random.Random(seed)
    edited = 0
    for db in sorted((state_dir / "elements").glob("*.sqlite")):
        store = ElementStore(db)
        if store.element_type == "ivr":
            store.close()
            continue
        records = []
        cursor = None
        while True:
            page = store.list_records("users", cursor, 5000)
            records.extend(page.records)
            cursor = page.next_cursor
            if cursor is None or not page.records:
                break
        picked = rng.sample(records, int(len(records) * fraction))
        ops = [
            WriteOp("put", "users", r.key, {**r.fields, "first_name": "Drifted"}, r.revision)
            for r in picked
        ]
        for i in range(0, len(ops), 5000):
            store.write_batch(ops[i : i + 5000], force=True)
        edited += len(ops)
        store.close()
    return edited


def timed_plan(root: Path, state_dir: Path) -> tuple[float, int, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "provgit",
            "plan",
            str(root),
            "--state-dir",
            str(state_dir),
            "--format",
            "json",
            "--detailed-exitcode",
        ],
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - t
    rss = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    if r.returncode not in (0, 2):
        raise SystemExit(f"provgit plan failed ({r.returncode}): {r.stderr[-2000:]}")
    return elapsed, rss, r.stdout


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--drift", type=float, default=0.01)
    args = ap.parse_args()
    root = generated(args.users)
    set_secrets(root)
    state_dir = HERE / "out" / f"plan-state-{args.users}"
    shutil.rmtree(state_dir, ignore_errors=True)
    t = time.perf_counter()
    n = populate(root, state_dir)
    print(f"populated {n:,} records on the elements in {time.perf_counter() - t:.1f}s")
    first, _, _ = timed_plan(root, state_dir)  # warms parse + observation caches
    print(f"first plan (cold observation cache): {first:.2f}s")
    times = []
    rss = 0
    for i in range(args.runs):
        edited = drift(state_dir, args.drift, seed=i)
        elapsed, rss, out = timed_plan(root, state_dir)
        import json

        totals = json.loads(out)["totals"]
        times.append(elapsed)
        print(f"run {i + 1}: {edited:,} records drifted -> plan {elapsed:.2f}s {totals}")
    # Issue 5's figure: a reconcile with nothing to do, warm. The first run
    # corrects the drift the plan runs above left; the next ones have nothing to do.
    noop = []
    for i in range(args.runs + 1):
        t = time.perf_counter()
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "provgit",
                "reconcile",
                str(root),
                "--state-dir",
                str(state_dir),
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - t
        if r.returncode != 0:
            raise SystemExit(f"provgit reconcile failed ({r.returncode}): {r.stderr[-2000:]}")
        print(f"reconcile {i + 1}: {elapsed:.2f}s" + (" (corrects the drift)" if i == 0 else ""))
        if i:
            noop.append(elapsed)
    print(
        f"\nprovgit reconcile with nothing to do, {args.users:,} users, warm: "
        f"median {statistics.median(noop):.2f}s (floor 3 s)"
    )
    print(
        f"provgit plan, {args.users:,} users, {n:,} records over 15 elements, "
        f"{args.drift:.0%} drift, warm: median {statistics.median(times):.2f}s "
        f"(floor 3 s), peak RSS {rss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()
