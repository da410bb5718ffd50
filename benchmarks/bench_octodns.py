"""provgit beside octoDNS on the same record counts (optional; issue 16).

    .venv/bin/python benchmarks/bench_octodns.py [--users 10000,50000,100000] [--runs 5]

octoDNS (pinned below) is installed into its own virtual environment,
benchmarks/.venv-octodns, made by this script on first use; provgit's
environment is not touched. Both tools run as CLI processes started by this
one script, alternated run by run, so both see the same machine load; each
process's wall time, CPU seconds and peak RSS (wait4()) are recorded with the
1-minute load.

For each network size, provgit's record count is the number of records the
generated network (benchmarks/generate.py) puts on its elements; octoDNS gets
a zone of exactly that many records (one name each, a mix of A, AAAA, CNAME
and TXT) in a YamlProvider source directory, planned against a YamlProvider
target directory (the same kind of setup on both sides: YAML in, a local
store out, no network):

- all creates: octoDNS `octodns-sync` (plan only) onto an empty target
  directory; provgit `provgit plan --format text` onto empty embedded
  elements, its state directory deleted first (no parse cache, no plan memo:
  a first rollout).
- 1 % changed: octoDNS with 1 % of the source records' values changed, the
  target holding the rest; provgit with 1 % of the users' first names changed
  in the config, the elements holding the rest (the config changed, so it is
  validated and projected again: the plan memo cannot be used).
- nothing changed: octoDNS with source equal to target; provgit `plan` with
  nothing changed (warm caches).

Between runs of the 1 % case the edit is undone (and provgit planned once,
untimed, so its memo is back to the unedited config): every run sees exactly
1 %. octoDNS has no cache to warm; it reads and parses both YAML files each
run (as shipped: PyYAML's pure-Python SafeLoader).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import RUNS, CliRun, generated, populate, provgit, run_cli  # noqa: E402
from bench_plan import set_secrets  # noqa: E402

OCTODNS = "octodns==1.22.0"
VENV = HERE / ".venv-octodns"
ZONE = "bench.example."
OUT = HERE / "out" / "octodns"


def octodns_sync() -> Path:
    """The octodns-sync of the benchmark's own venv (made and pinned on first use)."""
    exe = VENV / "bin" / "octodns-sync"
    marker = VENV / f".{OCTODNS}"
    if not marker.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        # Keep the venv out of git without touching the project's .gitignore.
        (VENV / ".gitignore").write_text("*\n")
        pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", OCTODNS]
        subprocess.run(pip, check=True)
        marker.write_text(OCTODNS + "\n")
    return exe


def zone_yaml(n: int, changed: int = 0) -> str:
    """n records, one name each; the first `changed` of every 100 have other values."""
    lines = ["---"]
    for i in range(n):
        alt = i % 100 < changed
        name = f"r{i:07d}"
        kind = i % 5
        if kind in (0, 1):
            value = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{(i + alt) & 255}"
            lines += [f"{name}:", "  type: A", f"  value: {value}"]
        elif kind == 2:
            value = f"2001:db8::{i:x}:{int(alt)}"
            lines += [f"{name}:", "  type: AAAA", f"  value: {value}"]
        elif kind == 3:
            target = f"host{i + alt}.{ZONE}"
            lines += [f"{name}:", "  type: CNAME", f"  value: {target}"]
        else:
            text = f"user {i} department Engineering location Ottawa role desk {int(alt)}"
            lines += [f"{name}:", "  type: TXT", f"  value: {text}"]
    return "\n".join(lines) + "\n"


def octodns_config(work: Path) -> Path:
    (work / "source").mkdir(parents=True, exist_ok=True)
    (work / "target").mkdir(parents=True, exist_ok=True)
    cfg = work / "config.yaml"
    cfg.write_text(
        "providers:\n"
        "  config:\n"
        "    class: octodns.provider.yaml.YamlProvider\n"
        f"    directory: {work / 'source'}\n"
        "  target:\n"
        "    class: octodns.provider.yaml.YamlProvider\n"
        f"    directory: {work / 'target'}\n"
        "zones:\n"
        f"  {ZONE}:\n"
        "    sources: [config]\n"
        "    targets: [target]\n"
    )
    return cfg


def edit_users(root: Path) -> tuple[int, dict[Path, str]]:
    """Change the last letter of the first name of one user in every 100 (the
    length stays, so no derived name grows past an element's limit); returns
    how many, and each file's text before, for restoring."""
    edited = 0
    before: dict[Path, str] = {}
    for path in sorted((root / "people").glob("*.yaml")):
        before[path] = text = path.read_text()
        lines = text.split("\n")
        seen = 0
        for i, line in enumerate(lines):
            if line.startswith("    first_name: "):
                if seen % 100 == 0:
                    lines[i] = line[:-1] + ("x" if line[-1] != "x" else "y")
                    edited += 1
                seen += 1
        path.write_text("\n".join(lines))
    return edited, before


def cell(runs: list[CliRun]) -> str:
    secs = statistics.median(r.seconds for r in runs)
    cpu = statistics.median(r.cpu_seconds for r in runs)
    rss = max(r.rss_mb for r in runs)
    return f"{secs:.2f} s (CPU {cpu:.2f} s), {rss:.0f} MB"


def measure(users: int, runs: int, sync: Path) -> list[str]:  # long: three cases, two tools
    work = OUT / f"net{users // 1000}k"
    shutil.rmtree(work, ignore_errors=True)
    root = work / "config"
    shutil.copytree(generated(users), root, ignore=shutil.ignore_patterns(".provgit"))
    set_secrets(root)
    state = work / "state"
    records = populate(root, state)
    cfg = octodns_config(work / "octodns")
    source = work / "octodns" / "source" / f"{ZONE}yaml"
    target = work / "octodns" / "target" / f"{ZONE}yaml"
    source.write_text(zone_yaml(records))
    octo = [str(sync), "--config-file", str(cfg)]
    plan_argv = provgit("plan", str(root), "--state-dir", str(state), "--format", "text")
    plan = [*plan_argv, "--detailed-exitcode"]
    empty = work / "empty-state"
    first = [*provgit("plan", str(root), "--state-dir", str(empty), "--format", "text")]
    got: dict[str, list[CliRun]] = {}

    def add(key: str, run: CliRun) -> None:
        got.setdefault(key, []).append(run)

    print(f"{users:,} users, {records:,} records", flush=True)
    run_cli(plan, ok=(0, 2))  # warms the caches of the populated state
    for _ in range(runs):  # all creates
        target.unlink(missing_ok=True)
        add("octodns creates", run_cli(octo))
        shutil.rmtree(empty, ignore_errors=True)
        add("provgit creates", run_cli([*first, "--detailed-exitcode"], ok=(2,)))
    run_cli([*octo, "--doit"])  # the target now holds every record
    for _ in range(runs):  # nothing changed
        add("octodns no-op", run_cli(octo))
        add("provgit no-op", run_cli(plan))
    source.write_text(zone_yaml(records, changed=1))
    for _ in range(runs):  # 1 % changed
        add("octodns 1 %", run_cli(octo))
        edited, before = edit_users(root)
        add("provgit 1 %", run_cli(plan, ok=(2,)))
        for path, text in before.items():
            path.write_text(text)
        run_cli(plan)  # untimed: the memo is the unedited config again
    loads = [r.load for rs in got.values() for r in rs]
    print(f"  provgit 1 %: {edited:,} users edited; load {min(loads):.1f}-{max(loads):.1f}")
    rows = []
    for case, label in (
        ("creates", "all creates"),
        ("1 %", "1 % changed"),
        ("no-op", "nothing changed"),
    ):
        o, p = got[f"octodns {case}"], got[f"provgit {case}"]
        ratio = statistics.median(r.seconds for r in p) / statistics.median(r.seconds for r in o)
        cpu_ratio = statistics.median(r.cpu_seconds for r in p) / statistics.median(
            r.cpu_seconds for r in o
        )
        rows.append(
            f"| {records:,} ({users // 1000}k users) | {label} | {cell(o)} | {cell(p)} "
            f"| {ratio:.2f} / {cpu_ratio:.2f} | {min(loads):.1f}-{max(loads):.1f} |"
        )
        print(rows[-1], flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--users", default="10000,50000,100000", help="network sizes, comma-separated")
    ap.add_argument("--runs", type=int, default=RUNS)
    args = ap.parse_args()
    sync = octodns_sync()
    print(f"{OCTODNS} in {VENV}; medians of {args.runs}; load {os.getloadavg()[0]:.1f}")
    rows = [
        "| records | case | octoDNS: wall (CPU), peak RSS | provgit: wall (CPU), peak RSS "
        "| provgit / octoDNS, wall / CPU | load |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for users in (int(u) for u in args.users.split(",")):
        rows += measure(users, args.runs, sync)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
