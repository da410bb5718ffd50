"""What verifying the change feed costs: a no-op reconcile (content digest
compared, no full read due) before and after, and a `reconcile --full-read`.

    python benchmarks/bench_feed.py --before-src /tmp/main-src --runs 5

Uses a copy of `bench_status.py`'s state (15 embedded elements, W100k) per
tree, so neither run writes into the other's; `--before-src` is a `src`
directory of the tree to compare with (e.g. `git archive main src | tar -x`).
Runs alternate before, after; CPU seconds and peak RSS from wait4() of the
CLI process (`_common.run_cli`), the 1-minute load beside each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CliRun, generated, run_cli
from bench_plan import set_secrets

HERE = Path(__file__).resolve().parent


def _reconcile(root: Path, state: Path, src: Path | None, *extra: str) -> CliRun:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    argv = [sys.executable, "-m", "provgit", "reconcile", str(root), "--state-dir", str(state)]
    return run_cli([*argv, *extra], env=env)


def _line(name: str, runs: list[CliRun]) -> str:
    cpu = statistics.median(r.cpu_seconds for r in runs)
    wall = statistics.median(r.seconds for r in runs)
    rss = max(r.rss_mb for r in runs)
    loads = [r.load for r in runs]
    return (
        f"{name}: CPU median {cpu:.3f} s ({min(r.cpu_seconds for r in runs):.3f}-"
        f"{max(r.cpu_seconds for r in runs):.3f}), wall {wall:.2f} s, peak RSS {rss:.0f} MB, "
        f"load {min(loads):.1f}-{max(loads):.1f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--before-src", type=Path, required=True)
    ap.add_argument("--state", type=Path, help="bench_status.py's state directory to copy")
    ap.add_argument("--root", type=Path, help="the generated network (default: generated)")
    args = ap.parse_args()
    root = args.root or generated(args.users)
    set_secrets(root)
    source = args.state or HERE / "out" / f"status-state-{args.users}"
    if not (source / "journal.sqlite").exists():
        raise SystemExit(f"run bench_status.py first (no {source})")
    states = {}
    for name in ("before", "after"):
        states[name] = HERE / "out" / f"feed-{name}-{args.users}"
        shutil.rmtree(states[name], ignore_errors=True)
        shutil.copytree(source, states[name])
    srcs: dict[str, Path | None] = {"before": args.before_src, "after": None}
    # Warm up: the first "after" run reads every element in full (no full
    # read time kept yet) and gives the element files their digest.
    for name in ("before", "after"):
        for _ in range(2):
            _reconcile(root, states[name], srcs[name])
    runs: dict[str, list[CliRun]] = {"before": [], "after": []}
    for _ in range(args.runs):
        for name in ("before", "after"):
            runs[name].append(_reconcile(root, states[name], srcs[name]))
    for name in ("before", "after"):
        print(_line(f"no-op reconcile, {name}", runs[name]))
    full = [_reconcile(root, states["after"], None, "--full-read") for _ in range(2)]
    print(_line("reconcile --full-read (every element read in full, verified)", full))


if __name__ == "__main__":
    main()
