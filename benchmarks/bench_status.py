"""Time `provgit status` on a large network: 100,000 users over 15 elements, warm.

    .venv/bin/python benchmarks/bench_status.py [--users 100000] [--runs 5]

Steps: generate the network (benchmarks/generate.py) unless present; put every
record it projects onto its embedded elements (as an apply would); run
`provgit plan` once (reads every element: the observation cache, the stored
target and the plan memo are then warm) and `provgit reconcile` (in sync);
time `provgit status --format json`
as a subprocess (the real CLI), median of --runs; then edit 1 % of the user
records out of band, plan again, and time status once more (the derivation
then names every drifted record). Floor (issue 12): <= 1 s warm.

`status` contacts no element: it derives every (resource, element) state from
the stored target, the last observation (or the plan memo, when newer) and
the journal (`provgit.report.derive`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from _common import RUNS, CliRun, describe, generated, populate, provgit, run_cli  # noqa: E402
from bench_plan import drift, set_secrets, timed_plan  # noqa: E402


def status_run(root: Path, state_dir: Path) -> CliRun:
    argv = provgit("status", str(root), "--state-dir", str(state_dir), "--format", "json")
    return run_cli(argv, ok=(0, 4))


def timed_status(root: Path, state_dir: Path) -> tuple[float, dict[str, object]]:
    r = status_run(root, state_dir)
    doc: dict[str, object] = json.loads(r.stdout)
    return r.seconds, doc


def in_process(state_dir: Path) -> dict[str, float]:
    """The stages of one status, timed in this process (the summary path)."""
    from provgit.incremental.disk import PlanMemo
    from provgit.incremental.store import TargetStore
    from provgit.report import derive as dv

    out: dict[str, float] = {}
    t = time.perf_counter()
    memo = PlanMemo(state_dir)
    store = TargetStore(memo.target_path)
    meta = memo.load_meta()
    assert meta is not None
    types = {n: str(e.type) for n, e in meta.elements.items()}
    journal = state_dir / "journal.sqlite"
    facts = dv.element_facts(types, state_dir, dv.element_rows(journal), None, store.digest())
    out["observations"] = time.perf_counter() - t
    t = time.perf_counter()
    jf = dv.journal_facts(journal, {n: f.revision for n, f in facts.items()})
    out["journal"] = time.perf_counter() - t
    t = time.perf_counter()
    derived = dv.derive_fast(store, facts, jf)
    out["derive"] = time.perf_counter() - t
    out["summary_path"] = float(derived is not None)
    return out


def _target_records(state_dir: Path) -> list[dict[str, object]]:
    from provgit.incremental.disk import PlanMemo
    from provgit.incremental.store import TargetStore

    target = TargetStore(PlanMemo(state_dir).target_path).load()
    assert target is not None
    return [recs for colls in target.records.values() for recs in colls.values()]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=RUNS)
    ap.add_argument("--fresh", action="store_true", help="populate and plan again")
    args = ap.parse_args()
    root = generated(args.users)
    set_secrets(root)
    state_dir = HERE / "out" / f"status-state-{args.users}"
    if args.fresh or not (state_dir / "journal.sqlite").exists():
        shutil.rmtree(state_dir, ignore_errors=True)
        t = time.perf_counter()
        n = populate(root, state_dir)
        print(f"populated {n:,} records on the elements in {time.perf_counter() - t:.1f}s")
        first, _, _ = timed_plan(root, state_dir)
        print(f"first plan (reads every element): {first:.2f}s")
        # A reconcile with nothing to do: the journal exists, as after any apply.
        subprocess.run(
            [
                sys.executable,
                "-m",
                "provgit",
                "reconcile",
                str(root),
                "--state-dir",
                str(state_dir),
            ],
            check=True,
            capture_output=True,
        )
    # In sync first: a reconcile corrects what earlier runs of this script drifted.
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "provgit", "reconcile", str(root), "--state-dir", str(state_dir)],
        check=True,
        capture_output=True,
    )
    print(f"reconcile: {time.perf_counter() - t:.2f}s")
    runs = [status_run(root, state_dir) for _ in range(args.runs)]
    for i, r in enumerate(runs):
        print(f"status {i + 1}: {describe([r])}")
    doc: dict[str, object] = json.loads(runs[-1].stdout)
    counts = doc["counts"]
    print(f"  counts: {counts}")
    n = sum(len(recs) for recs in _target_records(state_dir))
    print(f"  stages in process: { {k: round(v, 3) for k, v in in_process(state_dir).items()} }")
    edited = drift(state_dir, 0.01)
    planned, _, _ = timed_plan(root, state_dir)
    drifted = status_run(root, state_dir)
    doc = json.loads(drifted.stdout)
    print(
        f"after {edited:,} out-of-band edits and a plan ({planned:.2f}s): status "
        f"{describe([drifted])}, {doc['counts']}"
    )
    print(
        f"\nprovgit status, {args.users:,} users, {n:,} records over 15 elements, warm: "
        f"{describe(runs)} (floor 1 s)"
    )


if __name__ == "__main__":
    main()
