"""A number swap across replicas vs a one-user commit, 3 replicas (issue #19).

    .venv/bin/python benchmarks/bench_swaps_across.py [--users 100000] [--runs 3]

bench_replicas_commit.py's set-up (4 simulators filled with the config's
records, the config as a git repository, a throwaway PostgreSQL journal, 3
`provgit watch --repo` replicas). Two users of one people file, one on mivb01
and one on mivb02 (held by different replicas: the script says which), trade
hosts and numbers: each takes the other's host and DN, the cycle
api/swaps_across.py breaks by reading the other elements in full. Runs
alternate a one-user commit (a first name) and the swap (then the swap back),
same set-up, same load window. Per commit: latency = from the start of `git
commit` to the last holding replica's `sync_result` for it saying "Sync
Completed"; CPU (user + sys) of each replica over that interval; each
replica's peak RSS during it (VmHWM reset through /proc/PID/clear_refs before
the commit); the slowest /healthz answer and the replica's own loop-lag gauge
per replica; leases lost. Medians of --runs, load average (1 min) beside.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from bench_replicas_commit import (  # noqa: E402
    Probe,
    head,
    holds,
    lease_events,
    peak_rss_mb,
    spread,
    start_replicas,
)
from bench_watch import (  # noqa: E402
    ELEMENTS,
    Watcher,
    elements_yaml,
    git,
    populate,
    prepare,
    provide_pins,
    start_sim,
)

from journal import pg  # noqa: E402

USER = re.compile(r"(?m)^  - login_id: ")


def pick_pair(root: Path) -> tuple[Path, str, str]:
    """The first two users with one DN each of the first people file, put on
    mivb01 and mivb02 (before the network is filled: the generated files
    of 100,000 users keep each file on one of the two hosts)."""
    f = sorted((root / "people").glob("*.yaml"))[0]
    head_, *blocks = USER.split(f.read_text())
    picked = [i for i, blk in enumerate(blocks) if len(re.findall(r'dn: "', blk)) == 1][:2]
    if len(picked) < 2:
        raise SystemExit(f"no two users with one DN in {f.name}")
    for i, host in zip(picked, ("mivb01", "mivb02"), strict=True):
        blocks[i] = re.sub(r"(?m)^    host: \S+", f"    host: {host}", blocks[i], count=1)
    f.write_text("  - login_id: ".join([head_, *blocks]))
    a, b = (blocks[i].split("\n", 1)[0].strip() for i in picked)
    return f, a, b


def swap(f: Path, a: str, b: str) -> None:
    """`a` and `b` trade hosts and DNs (the cycle across the two hosts)."""
    head_, *blocks = USER.split(f.read_text())
    by_login = {blk.split("\n", 1)[0].strip(): i for i, blk in enumerate(blocks)}
    ia, ib = by_login[a], by_login[b]

    def fields(blk: str) -> tuple[str, str]:
        host = re.search(r"(?m)^    host: (\S+)", blk)
        dn = re.search(r'dn: "(\d+)"', blk)
        assert host and dn
        return host.group(1), dn.group(1)

    (ha, da), (hb, db) = fields(blocks[ia]), fields(blocks[ib])

    def put(blk: str, host: str, dn: str) -> str:
        blk = re.sub(r"(?m)^    host: \S+", f"    host: {host}", blk, count=1)
        return re.sub(r'dn: "\d+"', f'dn: "{dn}"', blk, count=1)

    blocks[ia], blocks[ib] = put(blocks[ia], hb, db), put(blocks[ib], ha, da)
    f.write_text("  - login_id: ".join([head_, *blocks]))


def rename_one(root: Path, n: int) -> Path:
    """The first user of one people file gets a new first name (bench_watch's one-user edit)."""
    files = sorted((root / "people").glob("*.yaml"))
    f = files[n % len(files)]
    f.write_text(re.sub(r"first_name: \S+", f"first_name: Swap{n}", f.read_text(), count=1))
    return f


def reset_peaks(pids: list[int]) -> None:
    for pid in pids:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux >= 4.0)


def cpu_of(w: Watcher) -> float:
    return w.cpu_seconds()


def one_commit(
    root: Path, replicas: list[Watcher], change: Callable[[], Path], label: str
) -> dict[str, Any]:
    load = round(os.getloadavg()[0], 2)
    holding = [w for w in replicas if holds(w.url)]
    marks = [w.mark() for w in holding]
    lost0 = lease_events(replicas)
    reset_peaks([w.proc.pid for w in replicas])
    probe = Probe(replicas)
    c0 = [cpu_of(w) for w in replicas]
    t0 = time.perf_counter()
    f = change()
    git(root, "commit", "-q", "-m", label, "--", str(f.relative_to(root)))
    sha = head(root)
    ends = [
        w.wait("sync_result", m, timeout=1800, commit=sha, status="Sync Completed")[0]
        for w, m in zip(holding, marks, strict=True)
    ]
    cpu = [round(cpu_of(w) - c, 2) for w, c in zip(replicas, c0, strict=True)]
    rss = [round(peak_rss_mb(w.proc.pid)) for w in replicas]
    worst = probe.close()
    runs = [
        sum(1 for _, d in w.lines[m:] if d.get("event") == "run_finished")
        for w, m in zip(holding, marks, strict=True)
    ]
    r = {
        "what": label,
        "latency_s": round(max(ends) - t0, 3),
        "cpu_s": cpu,
        "cpu_total_s": round(sum(cpu), 2),
        "peak_rss_mb": rss,
        "healthz_worst_s": worst,
        "loop_lag_worst_s": [round(x, 3) for x in probe.loop_lag],
        "lease_lost": lease_events(replicas) - lost0,
        "runs_finished": runs,
        "load": load,
    }
    print(f"  {json.dumps(r)}", flush=True)
    time.sleep(1.0)
    return r


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float:
        return round(statistics.median(r[key] for r in rows), 3)

    per = list(zip(*(r["cpu_s"] for r in rows), strict=True))
    return {
        "latency_median_s": med("latency_s"),
        "cpu_total_median_s": med("cpu_total_s"),
        "cpu_median_per_replica_s": [round(statistics.median(c), 2) for c in per],
        "peak_rss_max_per_replica_mb": [
            max(c) for c in zip(*(r["peak_rss_mb"] for r in rows), strict=True)
        ],
        "loop_lag_worst_s": [
            max(c) for c in zip(*(r["loop_lag_worst_s"] for r in rows), strict=True)
        ],
        "healthz_worst_s": [
            max(c) for c in zip(*(r["healthz_worst_s"] for r in rows), strict=True)
        ],
        "lease_lost": sum(r["lease_lost"] for r in rows),
        "load": [r["load"] for r in rows],
    }


def measure(
    root: Path, replicas: list[Watcher], runs: int, pair: tuple[Path, str, str]
) -> dict[str, Any]:
    f, a, b = pair
    print(f"swapping {a} (mivb01) and {b} (mivb02) in {f.name}", flush=True)
    held = [holds(w.url) for w in replicas]
    for w, h in zip(replicas, held, strict=True):
        print(f"  replica {w.url} holds {h}", flush=True)
    if any({"mivb01", "mivb02"} <= set(h) for h in held):
        print("  NOTE: one replica holds both hosts: this swap is not across replicas", flush=True)
    one, swaps = [], []
    for n in range(runs):
        one.append(one_commit(root, replicas, lambda n=n: rename_one(root, n), "one"))
        swaps.append(one_commit(root, replicas, lambda: (swap(f, a, b), f)[1], "swap"))
    return {"one_user": summary(one), "swap": summary(swaps), "rows": one + swaps}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--log-dir", type=Path, help="write each replica's JSON log lines there")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-swaps-across-"))
    procs: list[subprocess.Popen[str]] = []
    replicas: list[Watcher] = []
    try:
        root, sims = tmp / "config", tmp / "sims"
        sims.mkdir()
        prepare(a.users, root, sims)
        pair = pick_pair(root)
        records = populate(root, tmp / "populate-state")
        urls = {}
        for name, kind in ELEMENTS:
            proc, url = start_sim(name, kind, sims / f"{name}.sqlite")
            procs.append(proc)
            urls[name] = url
        (root / "network" / "elements.yaml").write_text(elements_yaml(urls, sims))
        provide_pins(root)
        git(root, "init", "-q", "-b", "main")
        (root / ".gitignore").write_text(".provgit/\n")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "network")
        with pg.running() as server:
            url = server.url(server.new_database())
            t = time.perf_counter()
            replicas = start_replicas(root, tmp, url)
            for w in replicas:
                w.wait("run_finished", 0, timeout=1800)
            spread(replicas)
            print(f"3 replicas started in {time.perf_counter() - t:.1f} s", flush=True)
            result = {"users": a.users, "records": records, **measure(root, replicas, a.runs, pair)}
            if a.log_dir is not None:
                a.log_dir.mkdir(parents=True, exist_ok=True)
                for n, w in enumerate(replicas):
                    lines = [json.dumps({"t": t, **d}) for t, d in w.lines]
                    (a.log_dir / f"replica{n}.jsonl").write_text("\n".join(lines) + "\n")
            for w in replicas:
                w.stop()
            replicas = []
        print(json.dumps(result, indent=1))
        return 0
    finally:
        for w in replicas:
            w.stop()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
