"""A one-user commit on 100,000 users -> "Sync Completed" with 3 replicas (issue #19).

    .venv/bin/python benchmarks/bench_replicas_commit.py [--users 100000] [--runs 5]

Setup: bench_watch.py's (the generated network cut down to 4 simulators at
0 ms, filled with the config's records, so the replicas start in sync), the
config as a git repository, a throwaway PostgreSQL cluster
(tests/journal/pg.py), and 3 `provgit watch --repo` replicas sharing its
journal (the 4 elements spread 2/1/1 over them), `--fetch-seconds 0.2` (the
leader sees the commit through its ref watch; the others read the commit the
leader published in the journal at their fetch tick). Each run commits a one-user
change; latency = from the start of `git commit` to the last of the 3
replicas' `sync_result` lines for that commit saying "Sync Completed" (each
replica applies the elements it holds). CPU = user + sys of the 3 replicas
over the same interval; peak RSS = the largest replica's VmHWM. Medians of
--runs, load average (1 min) before each run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from bench_watch import (  # noqa: E402
    ELEMENTS,
    Watcher,
    change_one_user,
    elements_yaml,
    git,
    populate,
    prepare,
    provide_pins,
    start_sim,
)

from journal import pg  # noqa: E402

REPLICAS = 3
FETCH_SECONDS = 0.2


def head(root: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_replicas(root: Path, tmp: Path, url: str) -> list[Watcher]:
    os.environ["PROVGIT_JOURNAL_URL"] = url  # Watcher passes the environment on
    replicas = []
    for n in range(REPLICAS):
        # Only the leader follows the ref; the others read the commit it
        # published in the journal at each fetch tick.
        args = ["--repo", str(root), "--ref", "main", "--fetch-seconds", str(FETCH_SECONDS)]
        args += ["--ref-check-seconds", "3600", "--resync-seconds", "0"]
        args += ["--lease-seconds", "15", "--state-dir", str(tmp / f"replica{n}")]
        replicas.append(Watcher(args))
    return replicas


def holds(url: str) -> list[str]:
    import urllib.request

    with urllib.request.urlopen(url + "/healthz", timeout=120) as r:
        doc = json.loads(r.read())
    held: list[str] = doc.get("detail", doc)["replica"]["holds"]
    return held


def spread(replicas: list[Watcher]) -> None:
    """Until every replica holds an element and every element is held."""
    end = time.monotonic() + 900
    while time.monotonic() < end:
        held = []
        for w in replicas:
            held.append(status(w.url)["watch"]["replica"]["holds"])
        if all(held) and sum(len(h) for h in held) == len(ELEMENTS):
            print(f"leases: {held}", flush=True)
            return
        time.sleep(0.5)
    raise SystemExit("the elements did not spread over the replicas")


def status(url: str) -> Any:
    import urllib.request

    # A 100,000-user document took over 120 s at load 35-40 (2026-12-07).
    with urllib.request.urlopen(url + "/status.json", timeout=900) as r:
        return json.loads(r.read())


class Probe:
    """How late each replica's event loop answers: GET /healthz every 0.5 s
    (served on the loop, no database), the slowest answer per replica."""

    def __init__(self, replicas: list[Watcher]) -> None:
        self.urls = [w.url for w in replicas]
        self.worst = [0.0] * len(replicas)
        # The replica's own gauge of its loop's worst lag (a watcher that has one).
        self.loop_lag = [0.0] * len(replicas)
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._poll, args=(i,), daemon=True)
            for i in range(len(replicas))
        ]
        for t in self.threads:
            t.start()

    def _poll(self, i: int) -> None:
        import urllib.error
        import urllib.request

        while not self.stop.wait(0.5):
            t = time.perf_counter()
            try:
                with urllib.request.urlopen(self.urls[i] + "/healthz", timeout=600) as r:
                    body = r.read()
            except urllib.error.HTTPError as e:
                body = e.read()  # a 503 answered all the same
            except OSError:
                continue
            self.worst[i] = max(self.worst[i], time.perf_counter() - t)
            with contextlib.suppress(ValueError, TypeError):
                lag = json.loads(body).get("loop_lag_seconds")
                self.loop_lag[i] = max(self.loop_lag[i], float(lag))

    def close(self) -> list[float]:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=700)
        return [round(x, 3) for x in self.worst]


def keeper_pids(replicas: list[Watcher]) -> list[int]:
    """The replicas' lease keeper processes (none before loop11)."""
    pids = []
    for w in replicas:
        with w.cond:
            pids += [int(d["pid"]) for _, d in w.lines if d.get("event") == "lease_keeper_started"]
    return pids


def keepers_cpu(pids: list[int]) -> float:
    """User + system CPU of the keepers so far (/proc, Linux)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def lease_events(replicas: list[Watcher]) -> int:
    with_lost = 0
    for w in replicas:
        with w.cond:
            with_lost += sum(1 for _, d in w.lines if d.get("event") == "lease_lost")
    return with_lost


def measure(root: Path, replicas: list[Watcher], runs: int) -> dict[str, Any]:
    latencies, cpus, loads = [], [], []
    probe = Probe(replicas)
    keepers = keeper_pids(replicas)
    k0, started = keepers_cpu(keepers), time.perf_counter()
    for n in range(runs):
        loads.append(round(os.getloadavg()[0], 2))
        # Only a replica holding an element applies (and logs) the commit.
        holding = [w for w in replicas if holds(w.url)]
        marks = [w.mark() for w in holding]
        c0 = sum(w.cpu_seconds() for w in replicas)
        t0 = time.perf_counter()
        f = change_one_user(root, 200 + n)
        git(root, "commit", "-q", "-m", f"user {n}", "--", str(f.relative_to(root)))
        sha = head(root)
        ends = [
            w.wait("sync_result", m, commit=sha, status="Sync Completed")[0]
            for w, m in zip(holding, marks, strict=True)
        ]
        found = [w.wait("commit_found", m)[0] - t0 for w, m in zip(holding, marks, strict=True)]
        stages = [
            w.wait("run_finished", m)[1].get("stages") for w, m in zip(holding, marks, strict=True)
        ]
        cpu = sum(w.cpu_seconds() for w in replicas) - c0
        latencies.append(max(ends) - t0)
        cpus.append(round(cpu, 3))
        print(
            f"  run {n + 1}: {latencies[-1]:.3f} s, cpu {cpu:.2f} s; per replica: found "
            f"{[round(x, 2) for x in found]}, done {[round(x - t0, 2) for x in ends]}, "
            f"stages {stages}",
            flush=True,
        )
        time.sleep(0.5)
    worst = probe.close()
    keeper_cpu = keepers_cpu(keepers) - k0
    keeper_wall = time.perf_counter() - started
    print(f"  /healthz slowest answer per replica: {worst} s", flush=True)
    print(f"  event loop's worst lag per replica (its gauge): {probe.loop_lag} s", flush=True)
    return {
        "runs": [round(x, 3) for x in latencies],
        "median": round(statistics.median(latencies), 3),
        "cpu": cpus,
        "cpu_median": round(statistics.median(cpus), 3),
        "load": loads,
        "peak_rss_mb": round(max(peak_rss_mb(w.proc.pid) for w in replicas)),
        "healthz_worst_s": worst,
        "loop_lag_worst_s": [round(x, 3) for x in probe.loop_lag],
        "lease_lost": lease_events(replicas),
        "keepers": len(keepers),
        "keeper_cpu_s": round(keeper_cpu, 3),
        "keeper_wall_s": round(keeper_wall, 1),
        "keeper_peak_rss_mb": round(max((peak_rss_mb(p) for p in keepers), default=0.0)),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    procs: list[subprocess.Popen[str]] = []
    replicas: list[Watcher] = []
    try:
        root, sims = tmp / "config", tmp / "sims"
        sims.mkdir()
        prepare(a.users, root, sims)
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
            result = {"users": a.users, "records": records, **measure(root, replicas, a.runs)}
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
