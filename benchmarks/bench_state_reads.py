"""A/B of a no-op `provgit reconcile` (and `provgit status`) on a warm state:
every memo, observation-cache and cache file it reads back goes through the
bounded state-file reads (fsutil.read_state_file). Before and after
interleaved, each tree (chosen by PYTHONPATH) on its own copy of the same
state, warmed by one reconcile first (the validation caches are keyed by the
code's files: one state shared by two trees would miss every run).

    .venv/bin/python benchmarks/bench_state_reads.py BEFORE_SRC AFTER_SRC [--users 10000] [--runs 5]

The state is bench_status.py's (run it first with the same --users).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from _common import CliRun, describe, generated, provgit, run_cli  # noqa: E402
from bench_plan import set_secrets  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    root = generated(args.users)
    set_secrets(root)
    state = HERE / "out" / f"status-state-{args.users}"
    trees = {"before": args.before, "after": args.after}
    argvs: dict[str, list[tuple[str, list[str]]]] = {}
    for name, src in trees.items():
        own = state.with_name(f"{state.name}-{name}")
        shutil.rmtree(own, ignore_errors=True)
        shutil.copytree(state, own, symlinks=True)
        reconcile = provgit("reconcile", str(root), "--state-dir", str(own))
        status = provgit("status", str(root), "--state-dir", str(own), "--format", "json")
        env = {**os.environ, "PYTHONPATH": src}
        for _ in range(2):  # in sync, its caches warm for this tree
            subprocess.run(reconcile, check=True, capture_output=True, env=env)
        argvs[name] = [("reconcile", reconcile), ("status", status)]
    runs: dict[tuple[str, str], list[CliRun]] = {}
    for _ in range(args.runs):
        for name, src in trees.items():
            env = {**os.environ, "PYTHONPATH": src}
            for what, argv in argvs[name]:
                runs.setdefault((name, what), []).append(run_cli(argv, env=env, ok=(0, 4)))
    for (name, what), got in sorted(runs.items()):
        print(f"{what:9} {name:6} {describe(got)}")


if __name__ == "__main__":
    main()
