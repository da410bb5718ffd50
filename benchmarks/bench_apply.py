"""Apply throughput against simulators, and a reconcile with nothing to do.

    .venv/bin/python benchmarks/bench_apply.py [--users 10000] [--latency-ms 20]
        [--batch 25] [--in-flight 1,4] [--noop-users 100000] [--skip-noop]

1. Apply: 10,000 new users over 4 simulator elements (one MiCollab, three call
   servers; `provgit element serve` processes, http driver) with 20 ms injected
   latency per request. A user lands on the MiCollab, on its hosting call
   server, and as a remote directory entry on the two others: ~40,000 writes.
   The element-bound limit: an element answering each request in `latency`
   with at most `in-flight` requests open completes at most in-flight/latency
   requests per second, and apply must keep plan order (a wave of one
   collection and action waits for the one before). So the fastest any client
   could finish an element is sum over waves of ceil(batches/in-flight) x
   latency; the figure is that bound (slowest element) over the measured apply
   time. Floor 0.8.
2. Reconcile with nothing to do on 100,000 users (benchmarks/data/net100k,
   from benchmarks/generate.py), warm: `provgit reconcile` as a subprocess,
   median of 3. Floor <= 3 s.

Figures are printed and written to benchmarks/README-apply.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from _common import generated, populate  # noqa: E402

from provgit import aio  # noqa: E402
from provgit.api.network import connect  # noqa: E402
from provgit.api.planning import plan_network  # noqa: E402
from provgit.apply import ApplyOptions, apply_plan  # noqa: E402
from provgit.apply.waves import waves  # noqa: E402
from provgit.journal import Journal  # noqa: E402
from provgit.plan import PlanOptions  # noqa: E402
from provgit.source import read_directory  # noqa: E402
from provgit.validate import validate_source  # noqa: E402

PY = sys.executable


def start_sim(
    tmp: Path, name: str, kind: str, latency_ms: float
) -> tuple[subprocess.Popen[str], str]:
    db = tmp / f"{name}.sqlite"
    serve = [PY, "-m", "provgit", "element", "serve", "--name", name, "--type", kind]
    proc = subprocess.Popen(
        [*serve, "--port", "0", "--db", str(db), "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"simulator {name} did not start: {line!r}")
    return proc, line.removeprefix("listening on ")


def proc_cpu(pid: int) -> float:
    """CPU seconds a process has used so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def write_config(root: Path, urls: dict[str, str], users: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "provgit.yaml").write_text(
        "version: 1\nnetwork: bench-apply\n"
        "safety: {max_updates: {count: 1000000, percent: 100}}\n"
        f"apply: {{queue_cap: {users * 5 + 1000}}}\n"
    )
    lines = ["elements:"]
    for i, (name, url) in enumerate(urls.items()):
        kind = "micollab" if name == "mcl" else "mivb"
        cluster = ", cluster: east" if kind == "mivb" else ""
        lines.append(
            f"  - {{name: {name}, type: {kind}, ceid: {i + 1}{cluster}, driver: http, "
            f"connection: {{url: '{url}', timeout: 30, concurrency: 64}}}}"
        )
    lines += [
        "classes_of_service:",
        "  - {number: 1, comment: Default}",
        "templates:",
        "  - name: Basic",
        '    phones: [{label: Desk, device_type: "6920", primary: true}]',
        "    cos: {day: 1}",
        "roles:",
        "  - {name: Agent, template: Basic}",
        "users:",
    ]
    hosts = [n for n in urls if n != "mcl"]
    for n in range(users):
        lines.append(
            f"  - {{login_id: u{n:06d}, first_name: First{n}, last_name: Last{n}, role: Agent, "
            f"host: {hosts[n % len(hosts)]}, services: [{{dn: '{100000 + n}'}}]}}"
        )
    (root / "net.yaml").write_text("\n".join(lines) + "\n")


def bench_apply(users: int, latency_ms: float, batch: int, in_flight: int) -> dict[str, Any]:
    # As every provgit command runs (cli/__init__.py): no cyclic GC. With it,
    # a full collection over the plan's objects stalls every element ~150 ms.
    gc.disable()
    tmp = Path(tempfile.mkdtemp(prefix="bench-apply-"))
    procs = []
    try:
        urls: dict[str, str] = {}
        for name, kind in (("mcl", "micollab"), ("cs1", "mivb"), ("cs2", "mivb"), ("cs3", "mivb")):
            proc, url = start_sim(tmp, name, kind, latency_ms)
            procs.append(proc)
            urls[name] = url
        root = tmp / "config"
        write_config(root, urls, users)
        state_dir = root / ".provgit"
        source = read_directory(root)
        valid = validate_source(source, state_dir / "cache")
        assert valid.ok, valid.diagnostics[:3]
        run = aio.run(plan_network(valid.state, source, root, state_dir, PlanOptions()))
        plan = run.plan
        ops = sum(len(e.operations) for e in plan.elements)
        # The element-bound time: per element, waves in order, in-flight batches at once.
        bound = 0.0
        requests = 0
        for e in plan.elements:
            t = 0.0
            for wave in waves(e.operations):
                n = math.ceil(len(wave) / batch)
                requests += n
                t += math.ceil(n / in_flight) * latency_ms / 1000
            bound = max(bound, t)

        cpu: dict[str, float] = {}
        timing: dict[str, list[float]] = {"round_trip": [], "element": [], "element_busy": []}

        async def go() -> tuple[float, Any]:
            network = connect(valid.state, state_dir, root)
            journal = Journal.open(state_dir)
            try:
                sims_before = sum(proc_cpu(p.pid) for p in procs)
                cpu_before = self_cpu()
                started = time.perf_counter()
                result = await apply_plan(
                    plan,
                    network.drivers,
                    journal,
                    valid.state.settings,
                    state_dir,
                    ApplyOptions(
                        command="bench",
                        check_stale=True,
                        batch_size=batch,
                        batches_in_flight=in_flight,
                    ),
                )
                elapsed = time.perf_counter() - started
                cpu["provgit"] = self_cpu() - cpu_before
                cpu["simulators"] = sum(proc_cpu(p.pid) for p in procs) - sims_before
                for d in network.drivers.values():
                    st = getattr(d, "stats", None)
                    if st is not None and st.requests:
                        timing["round_trip"].append(st.round_trip_seconds / st.requests)
                        if st.timed_requests:
                            timing["element"].append(st.element_seconds / st.timed_requests)
                            timing["element_busy"].append(st.element_seconds)
                return elapsed, result
            finally:
                await network.close()
                journal.close()

        elapsed, result = aio.run(go())
        assert result.ok, result.to_json(full=False)
        return {
            "users": users,
            "elements": len(plan.elements),
            "operations": ops,
            "requests": requests,
            "latency_ms": latency_ms,
            "batch": batch,
            "in_flight": in_flight,
            "seconds": round(elapsed, 3),
            "ops_per_second": round(ops / elapsed),
            "element_bound_seconds": round(bound, 3),
            "fraction_of_limit": round(bound / elapsed, 3),
            # Per request, averaged over elements: as seen by provgit, and as
            # the element reported holding it (Server-Timing).
            "round_trip_ms": round(statistics.mean(timing["round_trip"]) * 1000, 2),
            "element_ms": round(statistics.mean(timing["element"]) * 1000, 2),
            # With one request in flight, the busiest element's own time is the
            # least any client could take: the bound measured, not assumed.
            "element_busy_seconds": round(max(timing["element_busy"]), 3),
            "cpu_seconds_provgit": round(cpu["provgit"], 2),
            "cpu_seconds_simulators": round(cpu["simulators"], 2),
            "cpus": os.cpu_count(),
        }
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def bench_noop(users: int, runs: int) -> dict[str, Any]:
    data = generated(users)
    tmp = Path(tempfile.mkdtemp(prefix="bench-noop-"))
    try:
        root = tmp / "config"
        shutil.copytree(data, root, ignore=shutil.ignore_patterns(".provgit"))
        state_dir = root / ".provgit"
        records = populate(root, state_dir)
        env = {**os.environ}
        first = subprocess.run(
            [PY, "-m", "provgit", "reconcile", str(root), "--format", "json"],
            capture_output=True,
            text=True,
            env=env,
        )
        doc = json.loads(first.stdout)
        assert doc["counts"]["ok"] == 0, doc["counts"]
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            r = subprocess.run(
                [PY, "-m", "provgit", "reconcile", str(root), "--format", "json"],
                capture_output=True,
                text=True,
                env=env,
            )
            times.append(time.perf_counter() - started)
            assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        return {
            "users": users,
            "records_on_elements": records,
            "runs": [round(t, 3) for t in times],
            "median_seconds": round(statistics.median(times), 3),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument(
        "--in-flight",
        default="1,4",
        help="requests in flight per element, comma-separated; the first is the headline",
    )
    ap.add_argument("--noop-users", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-noop", action="store_true")
    ap.add_argument("--no-write", action="store_true", help="Do not update README-apply.md.")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    applied = []
    for n in (int(x) for x in args.in_flight.split(",")):
        applied.append(bench_apply(args.users, args.latency_ms, args.batch, n))
        print(json.dumps({"apply": applied[-1]}, indent=1), flush=True)
    noop = None if args.skip_noop else bench_noop(args.noop_users, args.runs)
    if noop is not None:
        print(json.dumps({"reconcile_noop": noop}, indent=1), flush=True)
    if not args.no_write:
        write_readme(applied, noop, load)
    ok = applied[0]["fraction_of_limit"] >= 0.8 and (noop is None or noop["median_seconds"] <= 3)
    return 0 if ok else 1


NOTES = """## Reading the figures

- **The limit.** An element answering every request in the injected latency,
  with at most `in flight` requests open, finishes a wave of `n` batch requests
  no sooner than ceil(n / in flight) x latency, and plan order makes each wave
  wait for the one before. The limit is that sum for the slowest element; the
  fraction is limit / measured apply time, from the first lock taken to the
  last status written. `element busy` is the same bound measured instead of
  assumed: the busiest element's own time holding our requests, from the
  `Server-Timing: total` each simulator answer carries (the bound itself with
  1 in flight; with 4, requests overlap and it is 4x the bound).
- **The headline is 1 request in flight per element**: each element then takes
  requests in strict plan order, and the 20 ms of latency, not this machine's
  CPUs, set the limit. What provgit adds per request is the difference between
  `round trip` and `element` (~2 ms: its own work, aiohttp on both ends and the
  kernel's loopback).
- **4 in flight is bound by this machine, not by the elements.** The limit
  shrinks to a quarter, but provgit and the four simulators share 2 CPUs:
  their CPU seconds (columns) add up to more than 2 x the limit, so requests
  queue for a CPU (round trips of 25-29 ms for 20 ms of element time) and no
  client could reach 0.8 on this rig (measured 0.44 before this session's
  work, 0.57-0.61 after). On a machine where the elements run
  elsewhere, provgit's own CPU per write is the figure that matters.
- What made it fast: batches are prepared a few ahead of the ones in flight,
  not a wave at a time (preparing a 10,000-write wave up front held every
  element for 200-300 ms at each wave boundary); journal intents are
  group-committed (one fsync for every batch ready together) before a batch
  waits for its slot, outcomes committed without a fsync after it; staleness
  checks of all elements run at once; no cyclic GC during a run (as every
  provgit command runs); secrets are looked for with a plain loop and resolved
  only for records that hold one.
- The no-op reconcile is dominated by the plan stage (load, target, observe,
  diff), see benchmarks/README.md ("Plan"); the apply stage itself takes
  0.03-0.24 s when there is nothing to do.
"""


def write_readme(applied: list[dict[str, Any]], noop: dict[str, Any] | None, load: float) -> None:
    cpus = os.cpu_count()
    a0 = applied[0]
    lines = [
        "# Apply benchmarks",
        "",
        "Produced by `.venv/bin/python benchmarks/bench_apply.py` "
        f"({time.strftime('%Y-%m-%d')}, {cpus} CPU(s) shared by provgit and the simulators, "
        f"load average {load:.2f} at the start).",
        "",
        "## Apply: new users over 4 simulator elements (http driver)",
        "",
        f"{a0['users']:,} users -> {a0['operations']:,} writes on {a0['elements']} elements "
        f"(`provgit element serve` processes on 127.0.0.1), {a0['requests']:,} batch requests "
        f"of up to {a0['batch']} writes, {a0['latency_ms']:g} ms injected latency per request.",
        "",
        "| in flight per element | apply | writes/s | limit | **fraction** (floor 0.8) "
        "| element busy | round trip / element, per request | CPU s provgit / simulators |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for a in applied:
        lines.append(
            f"| {a['in_flight']} | {a['seconds']} s | {a['ops_per_second']:,} "
            f"| {a['element_bound_seconds']} s | **{a['fraction_of_limit']}** "
            f"| {a['element_busy_seconds']} s | {a['round_trip_ms']} / {a['element_ms']} ms "
            f"| {a['cpu_seconds_provgit']} / {a['cpu_seconds_simulators']} |"
        )
    lines.append("")
    if noop is not None:
        lines += [
            "## Reconcile with nothing to do, warm",
            "",
            f"- {noop['users']:,} users ({noop['records_on_elements']:,} records on the "
            "embedded elements of benchmarks/data/net100k)",
            f"- `provgit reconcile` (subprocess, whole CLI): runs {noop['runs']} s, "
            f"**median {noop['median_seconds']} s** (floor <= 3 s)",
            "",
        ]
    lines += NOTES.splitlines()
    (HERE / "README-apply.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
