"""Time `provgit plan` after a change to a shared record (issue 16): the path
that used to miss the plan memo and plan the whole network.

    .venv/bin/python benchmarks/bench_shared.py [--users 100000] [--runs 5]
        [--source DIR] [--reuse] [--src DIR ...]

Steps: copy the generated network (or --source) to a work directory; put every
record it projects onto its 15 embedded elements (as an apply would; --reuse
keeps the elements and state of the last run); run `provgit plan` twice so the
memo and caches are warm; then, per kind, edit one record of that kind and
time `provgit plan` as a subprocess (the real CLI), --runs times (each run a
new value, so each is a real change): wall, CPU (user + system) and peak RSS
of the process, with the 1-minute load average when it started. Medians.

- template: the "Desk Phone" template's phone device type (every user of the
  template gets an update on MiCollab and its call servers);
- role: one role's description (the role's records; its users re-projected);
- cos: COS 10's comment (its record on each call server).

`--revert` undoes each timed edit with an untimed plan after it: each change
then meets a network in sync with the config (populated with the PINs set,
nothing applied since), and its plan holds only what it reaches. Without it
each run's updates stay planned and unapplied and the next plans carry them
(a role change after three template changes plans ~30,000 more updates).

Also times a full plan (PROVGIT_NO_MEMO=1) as the reference: what each of
these cost before. Floors (issue 16): <= 2.5 s and <= 800 MB at 100,000 users.

`--src DIR` (twice or more: an A/B) runs each tree's sources (PYTHONPATH)
with its own copy of the config and state (the code is in the memo's digest:
one state shared by two trees would re-plan in full at every switch), warmed
per tree, and the trees' runs interleaved (A, B, A, B: the same load), each
tree given the same edit. A plan refused for safety (exit 3: over
`safety.max_updates`) is computed in full all the same and counts.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from _common import generated, populate, run_cli  # noqa: E402
from bench_plan import set_secrets  # noqa: E402

EDITS = {
    # kind -> (file, pattern, replacement with {n})
    "template": (
        "roles-and-templates.yaml",
        r'(- name: Desk Phone\n(?:.*\n)*?\s+device_type: )"[^"]*"',
        r'\1"69{n:02d}"',
    ),
    "role": (
        "roles-and-templates.yaml",
        r"(- name: Finance Desk Phone\n)(\s+description: .*\n)?",
        r"\1    description: edit {n}\n",
    ),
    "cos": (
        "network/classes-of-service.yaml",
        r"(- number: 10\n\s+comment: )[^\n]*",
        r"\1Standard {n}",
    ),
}


def edit(root: Path, kind: str, n: int) -> None:
    rel, pattern, replacement = EDITS[kind]
    path = root / rel
    text = path.read_text()
    new, count = re.subn(pattern, replacement.format(n=n), text, count=1)
    assert count == 1 and new != text, f"{kind}: edit {n} changed nothing"
    path.write_text(new)


def timed_plan(root: Path, state_dir: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of one `provgit plan`,
    through `run_cli`'s small launcher: started from this process (grown by
    `set_secrets`), the CLI's peak RSS would be at least this process's (Linux
    keeps it across exec), so any figure below ~450 MB read as ~450 MB."""
    argv = [sys.executable, "-m", "provgit", "plan", str(root), "--state-dir", str(state_dir)]
    run = run_cli([*argv, "--format", "json", "--detailed-exitcode"], env, ok=(0, 2, 3))
    return run.seconds, run.cpu_seconds, run.rss_mb


@dataclass
class Tree:
    label: str
    root: Path
    state: Path
    env: dict[str, str]
    figures: dict[str, list[tuple[float, float, float, float]]] = field(default_factory=dict)

    def run(self, label: str, extra: dict[str, str] | None = None) -> None:
        load = os.getloadavg()[0]
        wall, cpu, peak = timed_plan(self.root, self.state, {**self.env, **(extra or {})})
        self.figures.setdefault(label, []).append((wall, cpu, peak, load))
        n = len(self.figures[label])
        print(f"  {self.label}: {label} run {n}: {wall:.2f} s wall, {cpu:.2f} s CPU, ", end="")
        print(f"{peak:.0f} MB, load {load:.1f}", flush=True)


def summary(tree: Tree, label: str) -> str:
    runs = tree.figures[label]
    walls, cpus, rss, loads = ([r[i] for r in runs] for i in range(4))
    return (
        f"{tree.label}: {label}: CPU median {statistics.median(cpus):.2f} s "
        f"({min(cpus):.2f}-{max(cpus):.2f}), peak RSS max {max(rss):.0f} MB, "
        f"wall median {statistics.median(walls):.2f} s, {len(runs)} runs, "
        f"load {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores"
    )


def trees(args: argparse.Namespace, root: Path, state: Path) -> list[Tree]:
    """One tree per --src (its own copy of config and state), or this one."""
    env = dict(os.environ)
    if not args.src:
        return [Tree("this tree", root, state, env)]
    out = []
    for i, src in enumerate(args.src):
        home = root.parent / f"tree-{i}"
        if not (args.reuse and home.exists()):
            shutil.rmtree(home, ignore_errors=True)
            shutil.copytree(root, home / "config")
            shutil.copytree(state, home / "state")
        tree_env = dict(env, PYTHONPATH=str(src.resolve()))
        out.append(Tree(str(src), home / "config", home / "state", tree_env))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--source", type=Path, help="a generated network to copy (not written)")
    ap.add_argument("--reuse", action="store_true", help="keep the elements of the last run")
    ap.add_argument("--no-reference", action="store_true", help="skip the full-plan runs")
    ap.add_argument("--src", type=Path, action="append", help="a tree's src (repeat: A/B)")
    ap.add_argument("--kinds", nargs="+", choices=list(EDITS), default=list(EDITS))
    ap.add_argument(
        "--start", type=int, default=0, help="the first edit's number (past a --reuse'd run's)"
    )
    ap.add_argument(
        "--revert",
        action="store_true",
        help="undo each timed edit (an untimed plan after it): each change meets an in-sync "
        "network, not the last runs' unapplied updates",
    )
    args = ap.parse_args()
    work = HERE / "out" / f"shared-{args.users}"
    root, state = work / "config", work / "state"
    if not (args.reuse and root.exists() and state.exists()):
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(args.source or generated(args.users), root)
        # The PINs first: populated without their values, the elements' 19,811
        # voicemail PINs differ from the config's, and every plan carried
        # those updates besides the change it times (before rollout10).
        set_secrets(root)
        t = time.perf_counter()
        n = populate(root, state)
        print(f"populated {n:,} records in {time.perf_counter() - t:.1f}s")
    set_secrets(root)
    each = trees(args, root, state)
    for tree in each:
        for label in ("warm-up: full plan, writes the memo", "warm-up: memo hit"):
            tree.run(label)
    seq = iter(range(args.start, 10_000))
    for kind in args.kinds:
        for _ in range(args.runs):
            n = next(seq)
            for tree in each:
                path = tree.root / EDITS[kind][0]
                was = path.read_bytes()
                edit(tree.root, kind, n)
                tree.run(f"{kind} change")
                if args.revert:
                    path.write_bytes(was)
                    timed_plan(tree.root, tree.state, tree.env)  # in sync again, not counted
    if not args.no_reference:
        for _ in range(args.runs):
            for tree in each:
                tree.run("full plan (reference)", {"PROVGIT_NO_MEMO": "1"})
    for label in [f"{k} change" for k in args.kinds] + ["full plan (reference)"]:
        for tree in each:
            if label in tree.figures:
                print(summary(tree, label))


if __name__ == "__main__":
    main()
