"""Time the element store's bulk write path against raw SQLite.

    .venv/bin/python benchmarks/bench_store_write.py [--users 10000] [--runs 3] [--gc]

Projects the network (benchmarks/generate.py) once, then writes every record
into fresh element stores (`ElementStore.write_batch`, batches of 5,000, the
same conditional writes, indexes and change-feed rows an apply makes) and, for
the floor, the same rows with a plain SQLite insert into a records table and a
change-feed table. Run with PYTHONPATH=<tree>/src to time another tree.
Both wall and CPU seconds (`time.process_time`, this process: the machine is
shared, compare CPU) are written. The cyclic GC is off while both write, as
every provgit process leaves it (`cli/__init__.py`: the embedded driver and
`element serve` run so): with it on, the collections walk the projected
network this process holds, a cost no provgit process has (`--gc`: on, as
this benchmark ran before 2026-12-07 11:30).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import orjson
from _common import generated

from provgit.api.network import desired_target
from provgit.drivers.base import WriteOp
from provgit.registry import COLLECTION_ORDER
from provgit.simulator.store import ElementStore
from provgit.source import read_directory
from provgit.validate import validate_source

HERE = Path(__file__).resolve().parent


def raw(path: Path, ops: list[WriteOp]) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE r (c TEXT, k TEXT, f TEXT, v INTEGER, PRIMARY KEY (c, k)) WITHOUT ROWID"
    )
    db.execute(
        "CREATE TABLE ch (v INTEGER PRIMARY KEY, c TEXT, k TEXT, op TEXT, f TEXT, rv INTEGER)"
    )
    for i in range(0, len(ops), 5000):
        db.execute("BEGIN IMMEDIATE")
        rows = [(o.collection, o.key, orjson.dumps(o.fields).decode()) for o in ops[i : i + 5000]]
        db.executemany("INSERT INTO r VALUES (?, ?, ?, 1)", rows)
        db.executemany("INSERT INTO ch (c, k, op, f, rv) VALUES (?, ?, 'put', ?, 1)", rows)
        db.execute("COMMIT")
    db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--gc", action="store_true", help="leave the cyclic GC on (as before)")
    args = ap.parse_args()
    root = generated(args.users)
    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
    source = read_directory(root)
    valid = validate_source(source, None)
    target = desired_target(valid.state, source.read_other, tmp / "state")
    work = {
        name: (
            valid.state.elements[name].type,
            [
                WriteOp("put", c, k, f, None)
                for c in COLLECTION_ORDER
                for k, f in target.records[name].get(c, {}).items()
            ],
        )
        for name in target.records
    }
    n = sum(len(ops) for _, ops in work.values())
    if not args.gc:
        gc.disable()  # as the CLI leaves it
        gc.freeze()
    store_s, raw_s, store_cpu, raw_cpu = [], [], [], []
    for run in range(args.runs):
        d = tmp / f"run{run}"
        d.mkdir()
        t, c = time.perf_counter(), time.process_time()
        for name, (etype, ops) in work.items():
            store = ElementStore(d / f"{name}.sqlite", element_type=etype)
            for i in range(0, len(ops), 5000):
                bad = [r for r in store.write_batch(ops[i : i + 5000]) if not r.ok]
                assert not bad, bad[0].error
            store.close()
        store_s.append(time.perf_counter() - t)
        store_cpu.append(time.process_time() - c)
        t, c = time.perf_counter(), time.process_time()
        for name, (_, ops) in work.items():
            raw(d / f"{name}.raw.sqlite", ops)
        raw_s.append(time.perf_counter() - t)
        raw_cpu.append(time.process_time() - c)
        shutil.rmtree(d)
    shutil.rmtree(tmp)
    s, r = statistics.median(store_s), statistics.median(raw_s)
    sc, rc = statistics.median(store_cpu), statistics.median(raw_cpu)
    print(
        f"{n:,} records: store {s:.2f}s ({_each(store_s)}), raw SQLite {r:.2f}s, "
        f"ratio {s / r:.1f}x; CPU store {sc:.2f}s ({_each(store_cpu)}), raw {rc:.2f}s "
        f"({_each(raw_cpu)}), ratio {sc / rc:.1f}x, load {os.getloadavg()[0]:.2f}, "
        f"GC {'on' if args.gc else 'off'}"
    )


def _each(figures: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in figures)


if __name__ == "__main__":
    main()
