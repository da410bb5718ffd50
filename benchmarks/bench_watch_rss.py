"""The watcher's memory at 100,000 users: peak and steady RSS, and the
one-user change it keeps that memory for.

    .venv/bin/python benchmarks/bench_watch_rss.py [--users 100000] [--runs 3]

Setup: bench_status.py's network (15 embedded elements in sync with the
config, every PIN variable set; run bench_status.py once first to make
benchmarks/out/status-state-USERS). The state dir is copied, the config too
(a one-user change edits it), and `provgit watch CONFIG --resync-seconds 0`
starts on them.

Figures (from /proc/PID/status of the watcher):
- VmHWM (peak) when the config is loaded and when the first run (observe,
  plan, apply, report) has finished: the first run's peak;
- VmRSS 2 s after the first run, and "steady": after the idle full
  collection (timers.py DEEP_GC_IDLE_SECONDS) had its chance;
- --runs one-user changes (a first name in a people file) to "Sync
  Completed": latency, the watcher's CPU seconds, and VmRSS/VmHWM after.

The floor (#16): peak RSS <= 1 GB for every command at 100,000 users.
Figures are printed and written to benchmarks/README-watch.md (the
bench_watch_rss section), with the load average beside them.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from _common import generated  # noqa: E402
from bench_plan import set_secrets  # noqa: E402
from bench_watch import Watcher, change_one_user, measure  # noqa: E402

from provgit.watch.timers import DEEP_GC_IDLE_SECONDS  # noqa: E402

FLOOR_MB = 1000


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid` in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) // 1024
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-readme", action="store_true", help="print only (a baseline run)")
    args = ap.parse_args()
    source_state = HERE / "out" / f"status-state-{args.users}"
    if not (source_state / "journal.sqlite").exists():
        raise SystemExit(f"no {source_state}: run benchmarks/bench_status.py first")
    root = generated(args.users)
    set_secrets(root)  # into os.environ: the watcher inherits them
    with tempfile.TemporaryDirectory(prefix="bench-watch-rss-") as tmp:
        config, state = Path(tmp) / "config", Path(tmp) / "state"
        shutil.copytree(root, config)
        shutil.copytree(source_state, state)
        load0 = round(os.getloadavg()[0], 2)
        w = Watcher([str(config), "--state-dir", str(state), "--resync-seconds", "0"])
        try:
            result = run(w, config, args.runs)
        finally:
            w.stop()
    result.update(users=args.users, load_start=load0)
    print(result)
    if not args.no_readme:
        write_readme(result)
    return 0


def run(w: Watcher, config: Path, runs: int) -> dict[str, Any]:
    pid = w.proc.pid
    t0 = time.perf_counter()
    at, _ = w.wait("config_loaded", 0)
    loaded = memory(pid)
    at, finished = w.wait("run_finished", 0, timeout=1800)
    first = {"seconds": round(at - t0, 1), "stages": finished.get("stages", {}), **memory(pid)}
    first["cpu"] = round(w.cpu_seconds(), 1)
    first["load"] = round(os.getloadavg()[0], 2)
    time.sleep(2)
    after = memory(pid)
    # Nothing asked for a run since: the idle full collection runs meanwhile.
    time.sleep(DEEP_GC_IDLE_SECONDS + 5)
    steady = memory(pid)
    changes = measure(w, runs, lambda n: change_one_user(config, n), "one-user change")
    return {
        "config_loaded": loaded,
        "first_run": first,
        "after_first": after,
        "steady": steady,
        "changes": changes,
        "after_changes": memory(pid),
    }


def write_readme(r: dict[str, Any]) -> None:
    path = HERE / "README-watch.md"
    first, c = r["first_run"], r["changes"]
    peak = max(first["VmHWM"], r["after_changes"]["VmHWM"])
    ok = "yes" if peak <= FLOOR_MB else "NO"
    lines = [
        "<!-- bench_watch_rss:start -->",
        f"Measured {time.strftime('%Y-%m-%d')} by bench_watch_rss.py, {os.cpu_count()} CPU(s), "
        f"{r['users']:,} users on 15 embedded elements (bench_status.py's network), "
        f"load (1 min) {r['load_start']} at start, {first['load']} after the first run.",
        "",
        "| watcher, 100k | MB | floor | within |",
        "| --- | ---: | --- | --- |",
        f"| peak (VmHWM) at config loaded | {r['config_loaded']['VmHWM']} | | |",
        f"| peak (VmHWM) after the first run | {first['VmHWM']} | <= {FLOOR_MB} | {ok} |",
        f"| resident 2 s after the first run | {r['after_first']['VmRSS']} | | |",
        f"| resident after the idle collection (steady) | {r['steady']['VmRSS']} | | |",
        f"| resident after {len(c['runs'])} one-user changes | {r['after_changes']['VmRSS']} | | |",
        "",
        f"First run: {first['seconds']} s to its end, {first['cpu']} CPU s, "
        f"stages {first['stages']}.",
        f"One-user change to Sync Completed: median {c['median']} s (runs {c['runs']}), "
        f"watcher CPU {c['cpu']} s, load {c['load']}.",
        "<!-- bench_watch_rss:end -->",
    ]
    block = "\n".join(lines)
    text = path.read_text()
    if "<!-- bench_watch_rss:start -->" in text:
        text = re.sub(
            r"<!-- bench_watch_rss:start -->.*<!-- bench_watch_rss:end -->",
            lambda _: block,
            text,
            flags=re.S,
        )
    else:
        text = text.rstrip("\n") + "\n\n## Memory (bench_watch_rss.py)\n\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
