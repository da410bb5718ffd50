"""A `reconcile --full-read` (every element due a full read) with nothing
else to do, before and after the memo path learned full reads, beside a
no-op reconcile of the same tree.

    python benchmarks/bench_full_read.py --before-src /tmp/main-src --runs 2

Uses a copy of `bench_status.py`'s state (15 embedded elements, W100k) per
tree; `--before-src` is a `src` directory of the tree to compare with (e.g.
`git archive main src | tar -x`). Runs alternate before, after; CPU seconds
and peak RSS from wait4() of the CLI process (`_common.run_cli`), the
1-minute load beside each. `--root`: a copy of the generated network.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CliRun, generated
from bench_feed import _line, _reconcile
from bench_plan import set_secrets

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--before-src", type=Path, required=True)
    ap.add_argument("--state", type=Path, help="bench_status.py's state directory to copy")
    ap.add_argument("--root", type=Path, help="the generated network (default: generated)")
    ap.add_argument("--out", type=Path, default=HERE / "out", help="where the copies go")
    ap.add_argument("--after-src", type=Path, help="a frozen `src` of this tree (default: it)")
    ap.add_argument("--only", choices=("before", "after"), help="measure one tree")
    args = ap.parse_args()
    root = args.root or generated(args.users)
    set_secrets(root)
    source = args.state or HERE / "out" / f"status-state-{args.users}"
    if not (source / "journal.sqlite").exists():
        raise SystemExit(f"run bench_status.py first (no {source})")
    names = (args.only,) if args.only else ("before", "after")
    states: dict[str, Path] = {}
    for name in names:
        states[name] = args.out / f"fullread-{name}-{args.users}"
        shutil.rmtree(states[name], ignore_errors=True)
        shutil.copytree(source, states[name])
    # A tree edited while it is measured changes the code version the memo
    # depends on (a full plan): measure a frozen copy.
    srcs: dict[str, Path | None] = {"before": args.before_src, "after": args.after_src}
    # Warm up each copy (its first run may plan in full: the copied memo names
    # another config path, an element file gets its digest).
    for name in names:
        for _ in range(2):
            print(_line(f"warm-up, {name}", [_reconcile(root, states[name], srcs[name])]))
    runs: dict[str, list[CliRun]] = {n: [] for n in names}
    noop: list[CliRun] = []
    for _ in range(args.runs):
        for name in names:
            ran = _reconcile(root, states[name], srcs[name], "--full-read")
            if ran.exit_code != 0:
                raise SystemExit(f"{name}: exit {ran.exit_code}: {ran.stderr[-2000:]}")
            runs[name].append(ran)
            print(_line(f"reconcile --full-read, {name}", [ran]), flush=True)
        last = names[-1]
        noop.append(_reconcile(root, states[last], srcs[last]))
    for name in names:
        print(_line(f"reconcile --full-read, {name}", runs[name]))
    print(_line(f"no-op reconcile, {names[-1]}", noop))


if __name__ == "__main__":
    main()
