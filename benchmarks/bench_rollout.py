"""Time the first rollout's plan: `provgit plan` onto empty embedded elements.

    .venv/bin/python benchmarks/bench_rollout.py [--users 50000] [--runs 3] [--src DIR]

Every user is a create (about 3 records a user). The network comes from
benchmarks/generate.py; the elements are the embedded ones, empty. One
untimed plan first fills the parse cache; before each timed run the plan memo
is deleted, so each run computes the whole plan (what an admin's first plan
does, minus the cold parse). Times the real CLI in a fresh process, text and
JSON (signed, as `--out` writes it), stdout to a file; peak RSS from wait4().
`--formats reconcile` times `provgit reconcile` end to end instead: observe,
plan, apply to the empty embedded elements, journal and status report, each
run on a state directory holding only the parse cache (its elements empty).
`--trace` writes each run's RSS twice a second beside its last progress line.
`--src` runs another tree's sources; given twice or more, the trees' runs
are interleaved (before, after, before, ...) so they share the machine's load.
Each line also gives the main thread's CPU (the event loop's: threads and the
forked memo writer do not add to it), which on a loaded machine says more of
what a quiet one's wall clock would be than the wall clock does.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

from _common import generated  # noqa: E402


def _sample(pid: int, err: Path, t0: float) -> tuple[float, float, int, str] | None:
    """(wall s, CPU s of the process itself, RSS MB, last progress line) now."""
    try:
        rss = int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0])
        ticks = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[11:13]
    except (OSError, IndexError):
        return None
    lines = err.read_bytes().splitlines()
    line = lines[-1].decode(errors="replace")[-60:] if lines else ""
    cpu = sum(int(x) for x in ticks) / os.sysconf("SC_CLK_TCK")
    return round(time.perf_counter() - t0, 1), round(cpu, 1), rss // 1024, line


def _main_thread_cpu(pid: int) -> float | None:
    """CPU seconds of the process's main thread (the event loop) so far."""
    try:
        ticks = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()[11:13]
    except (OSError, IndexError):
        return None
    return sum(int(x) for x in ticks) / os.sysconf("SC_CLK_TCK")


# The main thread's CPU seconds of the last `timed` run (sampled every 0.2 s
# until it exits): the event loop's share, which threads and forked children
# do not add to; on a loaded machine, a floor for the wall clock a quiet one gives.
LAST_MAIN_CPU = [0.0]


def timed(
    cmd: list[str], env: dict[str, str], out: Path, trace: Path | None = None
) -> tuple[float, float, int, float]:
    """(seconds, peak RSS MB, exit code, CPU seconds) of one CLI run. `trace`:
    also write the process's RSS twice a second beside its last progress line
    (JSON), which says in which phase the peak is."""
    t = time.perf_counter()
    err_path = out.with_suffix(".err")
    samples = []
    with out.open("wb") as f, err_path.open("wb") as e:
        p = subprocess.Popen(cmd, env=env, stdout=f, stderr=e)
        # Not p.poll(): it reaps the child, and wait4() then has no usage to give.
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        last = time.perf_counter()
        while pid == 0:
            LAST_MAIN_CPU[0] = _main_thread_cpu(p.pid) or LAST_MAIN_CPU[0]
            if trace is not None and time.perf_counter() - last >= 0.5:
                last = time.perf_counter()
                if (got := _sample(p.pid, err_path, t)) is not None:
                    samples.append(got)
            time.sleep(0.2)
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
    elapsed = time.perf_counter() - t
    if trace is not None:
        trace.write_text(json.dumps(samples))
    err = err_path.read_text(errors="replace")
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode not in (0, 2):
        raise SystemExit(f"provgit {cmd[3]} failed ({p.returncode}): {err[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, p.returncode, usage.ru_utime + usage.ru_stime


def reconcile(root: Path, state_dir: Path) -> list[str]:
    """argv of a reconcile onto empty elements: a state directory holding only
    the parse cache of `state_dir` (filled by the untimed plan). The config is
    a copy whose `apply.queue_cap` admits every create at once (the default,
    60,000, refuses a first rollout of this size: "apply in parts")."""
    config = state_dir.with_name(state_dir.name + "-config")
    if not config.exists():
        shutil.copytree(root, config)
        with (config / "provgit.yaml").open("a") as f:
            f.write("apply:\n  queue_cap: 1000000\n")
    fresh = state_dir.with_name(state_dir.name + "-reconcile")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    shutil.copytree(state_dir / "cache", fresh / "cache")
    return [sys.executable, "-m", "provgit", "reconcile", str(config), "--state-dir", str(fresh)]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--src", type=Path, action="append")
    ap.add_argument("--formats", default="text,json")
    ap.add_argument(
        "--trace", action="store_true", help="RSS over time of each run: out/rollout-trace-*.json"
    )
    ap.add_argument(
        "--keep-cache",
        action="store_true",
        help="reuse the parse cache an earlier run left (skips the untimed plan)",
    )
    args = ap.parse_args()
    root = generated(args.users)
    sys.path.insert(0, str(HERE))
    from bench_plan import set_secrets

    set_secrets(root)
    srcs = args.src or [HERE.parent / "src"]
    envs = [dict(os.environ, PYTHONPATH=str(src.resolve())) for src in srcs]
    state_dir = HERE / "out" / f"rollout-state-{args.users}"
    out = HERE / "out" / "rollout-plan.out"
    out.parent.mkdir(parents=True, exist_ok=True)
    base = [sys.executable, "-m", "provgit", "plan", str(root), "--state-dir", str(state_dir)]
    if not (args.keep_cache and (state_dir / "cache").exists()):
        shutil.rmtree(state_dir, ignore_errors=True)
        timed([*base, "--format", "text"], envs[0], out)  # fills the parse cache
    print(f"{args.users:,} users, load {os.getloadavg()[0]:.2f}")
    for fmt in args.formats.split(","):
        runs: list[list[tuple[float, float, int, float]]] = [[] for _ in srcs]
        mains: list[list[float]] = [[] for _ in srcs]
        sizes = [0] * len(srcs)
        for _ in range(args.runs):
            for i, env in enumerate(envs):
                trace = HERE / "out" / f"rollout-trace-{fmt}-{i}-{_}.json" if args.trace else None
                LAST_MAIN_CPU[0] = 0.0
                if fmt == "reconcile":
                    runs[i].append(timed(reconcile(root, state_dir), env, out, trace))
                else:
                    shutil.rmtree(state_dir / "memo", ignore_errors=True)
                    runs[i].append(timed([*base, "--format", fmt], env, out, trace))
                mains[i].append(LAST_MAIN_CPU[0])
                sizes[i] = out.stat().st_size
        for src, got, size, main_cpu in zip(srcs, runs, sizes, mains, strict=True):
            secs = [r[0] for r in got]
            print(
                f"{fmt} {src}: median {statistics.median(secs):.2f}s "
                f"({', '.join(f'{s:.2f}' for s in secs)}), "
                f"CPU median {statistics.median(r[3] for r in got):.2f}s, "
                f"main thread CPU median {statistics.median(main_cpu):.2f}s, "
                f"peak RSS {max(r[1] for r in got):.0f} MB, output {size / 1e6:.1f} MB, "
                f"load {os.getloadavg()[0]:.2f}"
            )


if __name__ == "__main__":
    main()
