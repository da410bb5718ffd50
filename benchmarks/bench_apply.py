"""Apply throughput against simulators, and a reconcile with nothing to do.

    .venv/bin/python benchmarks/bench_apply.py [--users 10000] [--latency-ms 20]
        [--settings defaults,serialised] [--runs 5] [--noop-users 100000] [--skip-noop]
        [--journals sqlite,postgresql]

`--journals sqlite,postgresql` runs each apply with the journal in the state
directory's SQLite file and on a throwaway PostgreSQL cluster (a new database
per run), interleaved, and prints PostgreSQL's writes/s over SQLite's per
round (issue 19: floor 0.9).

1. Apply: 10,000 new users over 4 simulator elements (one MiCollab, three call
   servers; `provgit element serve` processes, http driver) with 20 ms injected
   latency per request. A user lands on the MiCollab, on its hosting call
   server, and as a remote directory entry on the two others: ~40,000 writes.
   Two settings, each run --runs times, interleaved:
   - defaults: `apply.batch_size` / `apply.batches_in_flight` as provgit.yaml
     leaves them (ApplySettings' defaults, 200 writes a request, 4 in flight);
   - serialised: 25 writes a request, 1 in flight (each element takes its
     writes in strict plan order, one request at a time).
   Each run is a fresh child process (validate, plan, apply in-process), whose
   peak RSS (getrusage) and CPU seconds are reported with the simulators'.
   The latency bound: an element answering each request in `latency` with at
   most `in-flight` requests open finishes a wave of n requests no sooner than
   ceil(n/in-flight) x latency, and plan order makes each wave wait for the one
   before; the bound is that sum for the slowest element. With the element's
   own service time counted: the same sum with each element's mean time
   holding a request (its Server-Timing `total`, which is the latency or the
   work when the work takes longer), and no less than the CPU seconds that
   element's process spent (its work is serial). Fraction = bound / apply time.
2. Reconcile with nothing to do on 100,000 users (benchmarks/data/net100k,
   from benchmarks/generate.py), warm: `provgit reconcile` as a subprocess,
   median of --runs, with its CPU seconds and peak RSS (wait4()).

Figures are printed and written to benchmarks/README-apply.md.
"""

from __future__ import annotations

import argparse
import contextlib
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

from _common import RUNS, describe, generated, populate, provgit, run_cli  # noqa: E402

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
# (batch_size, batches_in_flight); None: provgit.yaml's default.
SETTINGS: dict[str, tuple[int | None, int | None]] = {
    "defaults": (None, None),
    "serialised": (25, 1),
}


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


def bounds(
    plan: Any, batch: int, in_flight: int, latency_s: float, held: dict[str, float]
) -> tuple[float, float, int]:
    """(latency bound, bound with each element's mean held time, requests)."""
    latency_bound = service_bound = 0.0
    requests = 0
    for e in plan.elements:
        t = ts = 0.0
        for wave in waves(e.operations):
            n = math.ceil(len(wave) / batch)
            requests += n
            t += math.ceil(n / in_flight) * latency_s
            ts += math.ceil(n / in_flight) * max(latency_s, held.get(e.element, latency_s))
        latency_bound = max(latency_bound, t)
        service_bound = max(service_bound, ts)
    return latency_bound, service_bound, requests


def bench_apply(  # long: one run end to end, its figures gathered as it goes
    users: int, latency_ms: float, batch: int | None, in_flight: int | None
) -> dict[str, Any]:
    # As every provgit command runs (cli/__init__.py): no cyclic GC. With it,
    # a full collection over the plan's objects stalls every element ~150 ms.
    gc.disable()
    tmp = Path(tempfile.mkdtemp(prefix="bench-apply-"))
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        urls: dict[str, str] = {}
        for name, kind in (("mcl", "micollab"), ("cs1", "mivb"), ("cs2", "mivb"), ("cs3", "mivb")):
            procs[name], urls[name] = start_sim(tmp, name, kind, latency_ms)
        root = tmp / "config"
        write_config(root, urls, users)
        state_dir = root / ".provgit"
        source = read_directory(root)
        valid = validate_source(source, state_dir / "cache")
        assert valid.ok, valid.diagnostics[:3]
        run = aio.run(plan_network(valid.state, source, root, state_dir, PlanOptions()))
        plan = run.plan
        ops = sum(len(e.operations) for e in plan.elements)
        settings = valid.state.settings.apply
        size = batch or settings.batch_size
        k = in_flight or settings.batches_in_flight

        sim_cpu: dict[str, float] = {}
        held: dict[str, float] = {}
        timing: dict[str, list[float]] = {"round_trip": [], "element": [], "element_busy": []}
        cpu: dict[str, float] = {}

        async def go() -> tuple[float, Any]:
            network = connect(valid.state, state_dir, root)
            journal = Journal.open(state_dir)
            try:
                sims_before = {n: proc_cpu(p.pid) for n, p in procs.items()}
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
                for n, p in procs.items():
                    sim_cpu[n] = proc_cpu(p.pid) - sims_before[n]
                for n, d in network.drivers.items():
                    st = getattr(d, "stats", None)
                    if st is not None and st.requests:
                        timing["round_trip"].append(st.round_trip_seconds / st.requests)
                        if st.timed_requests:
                            held[n] = st.element_seconds / st.timed_requests
                            timing["element"].append(held[n])
                            timing["element_busy"].append(st.element_seconds)
                return elapsed, result
            finally:
                await network.close()
                journal.close()

        elapsed, result = aio.run(go())
        assert result.ok, result.to_json(full=False)
        latency_bound, service_bound, requests = bounds(plan, size, k, latency_ms / 1000, held)
        # An element's work is serial (one process, one SQLite connection):
        # it cannot finish before the CPU seconds it spent.
        service_bound = max(service_bound, max(sim_cpu.values()))
        return {
            "users": users,
            "elements": len(plan.elements),
            "operations": ops,
            "requests": requests,
            "latency_ms": latency_ms,
            "batch": size,
            "in_flight": k,
            "seconds": round(elapsed, 3),
            "writes_per_second": round(ops / elapsed),
            "latency_bound_seconds": round(latency_bound, 3),
            "bound_writes_per_second": round(ops / latency_bound),
            "fraction_of_latency_bound": round(latency_bound / elapsed, 3),
            "service_bound_seconds": round(service_bound, 3),
            "fraction_of_service_bound": round(service_bound / elapsed, 3),
            # Per request, averaged over elements: as seen by provgit, and as
            # the element reported holding it (Server-Timing).
            "round_trip_ms": round(statistics.mean(timing["round_trip"]) * 1000, 2),
            "element_ms": round(statistics.mean(timing["element"]) * 1000, 2),
            "element_busy_seconds": round(max(timing["element_busy"]), 3),
            "cpu_seconds_provgit": round(cpu["provgit"], 2),
            "cpu_seconds_simulators": round(sum(sim_cpu.values()), 2),
            "cpu_ms_per_write_provgit": round(cpu["provgit"] / ops * 1000, 4),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "cpus": os.cpu_count(),
        }
    finally:
        for p in procs.values():
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def apply_child(
    users: int, latency_ms: float, setting: str, journal_url: str | None = None
) -> dict[str, Any]:
    """One apply run in a fresh process (its own RSS and imports), with the load;
    its journal in the state directory, or at `journal_url` (PostgreSQL)."""
    argv = [PY, __file__, "--child", setting, "--users", str(users)]
    env = dict(os.environ)
    env.pop("PROVGIT_JOURNAL_URL", None)
    if journal_url is not None:
        env["PROVGIT_JOURNAL_URL"] = journal_url
    r = run_cli([*argv, "--latency-ms", str(latency_ms)], env=env)
    out: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    out["setting"] = setting if journal_url is None else f"{setting}, PostgreSQL journal"
    out["load"] = round(r.load, 2)
    return out


def journal_urls(journals: list[str], stack: contextlib.ExitStack) -> dict[str, Any]:
    """Per journal named in --journals, a function giving a new journal's URL
    (None: the SQLite file). PostgreSQL: a throwaway cluster on 127.0.0.1
    (tests/journal/pg.py, as the test suite starts it), a new database per run."""
    out: dict[str, Any] = {}
    for j in journals:
        if j == "sqlite":
            out[j] = lambda: None
        elif j == "postgresql":
            sys.path.insert(0, str(HERE.parent / "tests"))
            from journal import pg

            server = stack.enter_context(pg.running())
            out[j] = lambda s=server: s.url(s.new_database())
        else:
            raise SystemExit(f"--journals: {j!r} is neither sqlite nor postgresql")
    return out


def bench_noop(users: int, runs: int) -> dict[str, Any]:
    data = generated(users)
    tmp = Path(tempfile.mkdtemp(prefix="bench-noop-"))
    try:
        root = tmp / "config"
        shutil.copytree(data, root, ignore=shutil.ignore_patterns(".provgit"))
        state_dir = root / ".provgit"
        records = populate(root, state_dir)
        argv = provgit("reconcile", str(root), "--format", "json")
        doc = json.loads(run_cli(argv).stdout)
        assert doc["counts"]["ok"] == 0, doc["counts"]
        got = [run_cli(argv) for _ in range(runs)]
        return {
            "users": users,
            "records_on_elements": records,
            "runs": [round(r.seconds, 3) for r in got],
            "median_seconds": round(statistics.median(r.seconds for r in got), 3),
            "median_cpu_seconds": round(statistics.median(r.cpu_seconds for r in got), 3),
            "peak_rss_mb": round(max(r.rss_mb for r in got)),
            "summary": describe(got),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The medians of one setting's runs (the run whose apply time is the median
    for the per-request figures), with the spread and the load range."""
    ordered = sorted(runs, key=lambda a: a["seconds"])
    row = dict(ordered[len(ordered) // 2])
    for key in (
        "seconds",
        "writes_per_second",
        "fraction_of_latency_bound",
        "service_bound_seconds",
        "fraction_of_service_bound",
        "cpu_seconds_provgit",
        "cpu_seconds_simulators",
        "cpu_ms_per_write_provgit",
    ):
        row[key] = statistics.median(a[key] for a in runs)
    row["peak_rss_mb"] = max(a["peak_rss_mb"] for a in runs)
    row["runs"] = [a["seconds"] for a in runs]
    row["loads"] = (min(a["load"] for a in runs), max(a["load"] for a in runs))
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated")
    ap.add_argument("--child", choices=list(SETTINGS), help=argparse.SUPPRESS)
    ap.add_argument("--noop-users", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=RUNS)
    ap.add_argument("--skip-noop", action="store_true")
    ap.add_argument(
        "--journals",
        default="sqlite",
        help="comma-separated: sqlite, postgresql (each run on each, interleaved)",
    )
    ap.add_argument("--no-write", action="store_true", help="Do not update README-apply.md.")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(bench_apply(args.users, args.latency_ms, *SETTINGS[args.child])))
        return 0
    names = args.settings.split(",")
    got: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with contextlib.ExitStack() as stack:
        urls = journal_urls(args.journals.split(","), stack)
        for i in range(args.runs):  # interleaved, so each setting sees the same load
            for n in names:
                for j, url in urls.items():
                    row = apply_child(args.users, args.latency_ms, n, url())
                    got.setdefault((n, j), []).append(row)
                    print(json.dumps({"run": i + 1, "apply": row}), flush=True)
    applied = [median_row(runs) for runs in got.values()]
    for n in names:
        if (n, "sqlite") in got and (n, "postgresql") in got:
            ratio = [
                pg_run["writes_per_second"] / lite["writes_per_second"]
                for lite, pg_run in zip(got[(n, "sqlite")], got[(n, "postgresql")], strict=True)
            ]
            # Per round (the two ran one after the other), then the median.
            print(
                json.dumps(
                    {
                        "setting": n,
                        "postgresql_over_sqlite_writes_per_second": [round(r, 3) for r in ratio],
                        "median": round(statistics.median(ratio), 3),
                    }
                ),
                flush=True,
            )
    print(json.dumps({"medians": applied}, indent=1), flush=True)
    noop = None if args.skip_noop else bench_noop(args.noop_users, args.runs)
    if noop is not None:
        print(json.dumps({"reconcile_noop": noop}, indent=1), flush=True)
    if not args.no_write:
        write_readme(applied, noop)
    return 0


NOTES = """## Reading the figures

- **Two settings.** `defaults` is what an admin gets: `apply.batch_size` and
  `apply.batches_in_flight` as provgit.yaml leaves them. `serialised` is 25
  writes a request and one request in flight per element (each element takes
  its writes in strict plan order); it was the headline before 2026-12 and is
  kept beside the defaults for comparison.
- **The latency bound.** An element answering every request in the injected
  latency, with at most `in flight` requests open, finishes a wave of `n`
  requests no sooner than ceil(n / in flight) x latency, and plan order makes
  each wave wait for the one before. The bound is that sum for the slowest
  element; its writes/s is in brackets. At the defaults (200 writes a request,
  4 in flight) it is a few hundred milliseconds: far less than the time the
  elements themselves need to do the writes, so its fraction says little.
- **The bound with the element's own service time counted** replaces the
  latency by each element's mean time holding a request (its `Server-Timing:
  total`, which the simulator answers with: the latency, or the work when the
  work takes longer), and is never less than the CPU seconds that element's
  process spent (its work is serial: one process, one SQLite connection).
  This is the least any client could take against these elements; the
  fraction in bold is that bound over the measured apply time (from the first
  lock taken to the last status written). Floor 0.8 (issue 16).
- **CPU.** provgit and the four simulators share this machine's CPUs with
  each other and with other jobs; their CPU seconds are beside each row.
  provgit's CPU per write is the figure that carries to a machine where the
  elements run elsewhere. Peak RSS is the child process that validated,
  planned and applied (getrusage).
- What made it fast: batches are prepared a few ahead of the ones in flight,
  not a wave at a time (preparing a 10,000-write wave up front held every
  element for 200-300 ms at each wave boundary); journal intents are
  group-committed (one fsync for every batch ready together) before a batch
  waits for its slot, outcomes committed without a fsync after it; staleness
  checks of all elements run at once; no cyclic GC during a run (as every
  provgit command runs); secrets are looked for with a plain loop and resolved
  only for records that hold one.
- The no-op reconcile is dominated by the plan stage (load, target, observe,
  diff), see benchmarks/README.md ("Plan").
"""


def write_readme(applied: list[dict[str, Any]], noop: dict[str, Any] | None) -> None:
    cpus = os.cpu_count()
    a0 = applied[0]
    lines = [
        "# Apply benchmarks",
        "",
        "Produced by `.venv/bin/python benchmarks/bench_apply.py` "
        f"({time.strftime('%Y-%m-%d')}, {cpus} CPU(s) shared by provgit and the simulators "
        "and by the other jobs on the machine: the 1-minute load is beside each row).",
        "",
        "## Apply: new users over 4 simulator elements (http driver)",
        "",
        f"{a0['users']:,} users -> {a0['operations']:,} writes on {a0['elements']} elements "
        f"(`provgit element serve` processes on 127.0.0.1), {a0['latency_ms']:g} ms injected "
        f"latency per request. Medians of {len(a0['runs'])} runs per setting, interleaved.",
        "",
        "| setting | batch / in flight | requests | apply (runs) | writes/s | latency bound "
        "(writes/s) | fraction | bound with service time | **fraction** (floor 0.8) "
        "| round trip / element per request | CPU s provgit / simulators | provgit CPU "
        "per write | peak RSS | load |",
        "|---|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for a in applied:
        runs = ", ".join(f"{s:.2f}" for s in a["runs"])
        lines.append(
            f"| {a['setting']} | {a['batch']} / {a['in_flight']} | {a['requests']:,} "
            f"| {a['seconds']:.2f} s ({runs}) | {a['writes_per_second']:,.0f} "
            f"| {a['latency_bound_seconds']} s ({a['bound_writes_per_second']:,}) "
            f"| {a['fraction_of_latency_bound']:.3f} | {a['service_bound_seconds']:.2f} s "
            f"| **{a['fraction_of_service_bound']:.3f}** "
            f"| {a['round_trip_ms']} / {a['element_ms']} ms "
            f"| {a['cpu_seconds_provgit']:.2f} / {a['cpu_seconds_simulators']:.2f} "
            f"| {a['cpu_ms_per_write_provgit']:.3f} ms | {a['peak_rss_mb']} MB "
            f"| {a['loads'][0]:.1f}-{a['loads'][1]:.1f} |"
        )
    lines.append("")
    if noop is not None:
        lines += [
            "## Reconcile with nothing to do, warm",
            "",
            f"- {noop['users']:,} users ({noop['records_on_elements']:,} records on the "
            "embedded elements of benchmarks/data/net100k)",
            f"- `provgit reconcile` (subprocess, whole CLI): runs {noop['runs']} s; "
            f"**{noop['summary']}** (floor <= 3 s)",
            "",
        ]
    lines += NOTES.splitlines()
    (HERE / "README-apply.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
