"""Time `provgit plan` after a change to a shared record (issue 16): the path
that used to miss the plan memo and plan the whole network.

    .venv/bin/python benchmarks/bench_shared.py [--users 100000] [--runs 5]
        [--source DIR] [--reuse]

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

Also times a full plan (PROVGIT_NO_MEMO=1) as the reference: what each of
these cost before. Floors (issue 16): <= 2.5 s and <= 800 MB at 100,000 users.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from _common import generated, populate  # noqa: E402
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
    """Wall seconds, CPU seconds and peak RSS (MB) of one `provgit plan`."""
    argv = [sys.executable, "-m", "provgit", "plan", str(root), "--state-dir", str(state_dir)]
    t = time.perf_counter()
    proc = subprocess.Popen(
        [*argv, "--format", "json", "--detailed-exitcode"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    if code not in (0, 2):
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"provgit plan failed ({code}): {err[-2000:]}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def measure(
    label: str,
    runs: int,
    step: Callable[[int], None],
    root: Path,
    state: Path,
    env: dict[str, str],
) -> None:
    walls: list[float] = []
    cpus: list[float] = []
    rss: list[float] = []
    loads: list[float] = []
    for i in range(runs):
        step(i)
        loads.append(os.getloadavg()[0])
        wall, cpu, peak = timed_plan(root, state, env)
        walls.append(wall)
        cpus.append(cpu)
        rss.append(peak)
        print(f"  {label} run {i + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU, {peak:.0f} MB")
    print(
        f"{label}: median {statistics.median(walls):.2f} s wall, "
        f"{statistics.median(cpus):.2f} s CPU, peak RSS {statistics.median(rss):.0f} MB "
        f"(max {max(rss):.0f}); load {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--source", type=Path, help="a generated network to copy (not written)")
    ap.add_argument("--reuse", action="store_true", help="keep the elements of the last run")
    ap.add_argument("--no-reference", action="store_true", help="skip the full-plan runs")
    args = ap.parse_args()
    work = HERE / "out" / f"shared-{args.users}"
    root, state = work / "config", work / "state"
    if not (args.reuse and root.exists() and state.exists()):
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(args.source or generated(args.users), root)
        t = time.perf_counter()
        n = populate(root, state)
        print(f"populated {n:,} records in {time.perf_counter() - t:.1f}s")
    set_secrets(root)
    env = dict(os.environ)
    for label in ("full plan, writes the memo", "memo hit"):  # caches warm
        load = os.getloadavg()[0]
        wall, cpu, peak = timed_plan(root, state, env)
        print(f"warm-up, {label}: {wall:.2f} s wall, {cpu:.2f} s CPU, {peak:.0f} MB", end="")
        print(f", load {load:.1f}")
    seq = iter(range(10_000))
    for kind in EDITS:

        def step(_run: int, kind: str = kind) -> None:
            edit(root, kind, next(seq))

        measure(f"{kind} change", args.runs, step, root, state, env)
    if not args.no_reference:
        full_env = {**env, "PROVGIT_NO_MEMO": "1"}
        measure("full plan (reference)", args.runs, lambda _i: None, root, state, full_env)


if __name__ == "__main__":
    main()
