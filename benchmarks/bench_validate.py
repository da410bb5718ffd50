"""Time `provgit validate` (the real CLI, as a subprocess) on a generated network.

    .venv/bin/python benchmarks/bench_validate.py                 # 100,000 users
    .venv/bin/python benchmarks/bench_validate.py --profile --write-readme

Cold: the state directory (parse cache and stored verdict) is deleted before
each run. Warm (nothing changed): a second run with nothing changed; it checks
nothing, it answers from the stored verdict. One file edited: one user's first
name in one people file is changed (to a value no earlier run used, so every
run sees exactly one file new to the caches), which re-checks the configuration with the
other files from the parse cache. Each is run --runs times (default 5); the
median wall time, the median CPU seconds, the largest peak RSS and the load
are reported. Peak RSS comes from
wait4(), i.e. the largest resident set of the provgit process or any worker
process it started and reaped (workers are separate processes: the parent's
figure is what the floor is about, and workers stay well below it).

--profile adds where cold time goes, measured in-process in a fresh
interpreter: imports, reading the tree, parsing, building models, cross-record
rules, resolving locations.

--src DIR runs another checkout's `src/` (e.g. an older commit exported with
`git archive`) for before/after figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import RUNS, CliRun, provgit, run_cli  # noqa: E402
from generate import generate  # noqa: E402

# Issue 2's floors; "one file edited" is issue 16's (<= 0.7 s, goal 0.4 s).
FLOORS = {"cold_s": 6.0, "warm_s": 1.0, "edited_s": 0.7, "rss_mb": 1500.0}


def _env(src: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PROVGIT_STATE_DIR", None)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return env


def run_validate(data: Path, src: Path | None) -> CliRun:
    """One `provgit validate DATA` in a fresh process: wall, CPU, peak RSS."""
    return run_cli(provgit("validate", str(data)), env=_env(src), ok=(0, 1, 2))


def edit_one_file(data: Path) -> tuple[Path, str]:
    """Toggle one user's first name in the first people file; returns the
    file and its original text (for restoring)."""
    path = sorted((data / "people").glob("*.yaml"))[0]
    text = path.read_text()
    return path, text


def toggled(text: str, run: int) -> str:
    """One user's first name changed to a value no earlier run used, so the
    edited file is new to the per-file caches every time."""
    marker = "    first_name: "
    at = text.index(marker) + len(marker)
    end = text.index("\n", at)
    return text[:at] + f"E{run}" + text[at:end] + text[end:]


STAGES = r"""
import json, sys, time
t0 = time.perf_counter()
from provgit.source import read_directory
from provgit.load.loader import load_files
from provgit.model.build import build_state
from provgit.model.findings import resolve
from provgit.validate.rules import check_rules
t1 = time.perf_counter()
source = read_directory(sys.argv[1])
t2 = time.perf_counter()
loaded = load_files(source, None)
t3 = time.perf_counter()
state, findings = build_state(loaded.files, commit=source.commit, root=source.root)
t4 = time.perf_counter()
findings.extend(check_rules(state, source))
t5 = time.perf_counter()
diags = resolve(findings, state.sources)
t6 = time.perf_counter()
assert not diags and not loaded.diagnostics, (diags[:3], loaded.diagnostics[:3])
print(json.dumps({"import": t1 - t0, "read + hash": t2 - t1, "parse": t3 - t2,
                  "build models": t4 - t3, "rules": t5 - t4, "resolve": t6 - t5}))
"""


def stages(data: Path, src: Path | None) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", STAGES, str(data)],
        check=True,
        capture_output=True,
        text=True,
        env=_env(src),
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def bench(data: Path, runs: int, src: Path | None) -> dict[str, list[CliRun]]:
    state = data / ".provgit"
    out: dict[str, list[CliRun]] = {"cold": [], "warm": [], "edited": []}
    path, original = edit_one_file(data)
    try:
        for i in range(runs):
            shutil.rmtree(state, ignore_errors=True)
            out["cold"].append(run_validate(data, src))
            out["warm"].append(run_validate(data, src))
            path.write_text(toggled(original, i))
            out["edited"].append(run_validate(data, src))
    finally:
        path.write_text(original)
    for r in out["cold"] + out["warm"] + out["edited"]:
        if r.exit_code != 0:
            raise SystemExit(f"provgit validate failed ({r.exit_code}): {r.stdout[-2000:]}")
    return out


def table(runs: dict[str, list[CliRun]]) -> str:
    def row(name: str, rs: list[CliRun], floor: float) -> str:
        med = statistics.median(r.seconds for r in rs)
        cpu = statistics.median(r.cpu_seconds for r in rs)
        secs = ", ".join(f"{r.seconds:.2f}" for r in rs)
        rss = max(r.rss_mb for r in rs)
        load = f"{min(r.load for r in rs):.1f}-{max(r.load for r in rs):.1f}"
        ok = "yes" if med <= floor and rss <= FLOORS["rss_mb"] else "NO"
        return (
            f"| {name} | {med:.2f} | {cpu:.2f} | {secs} | {rss:.0f} | {load} "
            f"| <= {floor:g} s, <= 1.5 GB | {ok} |"
        )

    return "\n".join(
        [
            "| run | median s | median CPU s | runs (s) | peak RSS MB | load | floor | within |",
            "| --- | ---: | ---: | --- | ---: | --- | --- | --- |",
            row("cold (empty cache)", runs["cold"], FLOORS["cold_s"]),
            row("warm (nothing changed: the stored verdict)", runs["warm"], FLOORS["warm_s"]),
            row("one file edited (re-checked)", runs["edited"], FLOORS["edited_s"]),
        ]
    )


def stage_table(parts: list[dict[str, float]]) -> str:
    lines = ["| stage (cold, in-process) | median s |", "| --- | ---: |"]
    for name in parts[0]:
        lines.append(f"| {name} | {statistics.median(p[name] for p in parts):.2f} |")
    total = statistics.median(sum(p.values()) for p in parts)
    lines.append(f"| total | {total:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--data", type=Path, default=None, help="default: benchmarks/data/netN")
    ap.add_argument("--runs", type=int, default=RUNS)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="break cold time down by stage")
    ap.add_argument("--src", type=Path, default=None, help="run this src/ tree instead")
    ap.add_argument("--write-readme", action="store_true", help="update benchmarks/README.md")
    args = ap.parse_args(argv)

    data = args.data or HERE / "data" / f"net{args.users // 1000}k"
    if not (data / "provgit.yaml").exists():
        print(f"generating {args.users:,} users into {data} ...", file=sys.stderr)
        generate(args.users, data, args.seed)
    size = sum(f.stat().st_size for f in data.rglob("*.yaml"))

    runs = bench(data, args.runs, args.src)
    report = [
        f"`provgit validate` on {args.users:,} users ({size / 1e6:.1f} MB of YAML in "
        f"{sum(1 for _ in data.rglob('*.yaml'))} files); {args.runs} runs each.",
        "",
        table(runs),
    ]
    if args.profile:
        parts = []
        for _ in range(args.runs):
            parts.append(stages(data, args.src))
        report += ["", stage_table(parts)]
    text = "\n".join(report)
    print(text)
    print(f"\nlast output: {runs['edited'][-1].stdout.strip()[-300:]}", file=sys.stderr)
    if args.write_readme:
        write_readme(text, args)
    return 0


def write_readme(results: str, args: argparse.Namespace) -> None:
    """Replace the generated block of the "Validate" section in benchmarks/README.md."""
    readme = HERE / "README.md"
    cores = os.cpu_count()
    head = (
        f"Measured {dt.date.today().isoformat()} on {cores} cores "
        f"({platform.machine()}, Python {platform.python_version()}, {platform.system()}).\n\n"
    )
    block = f"<!-- bench_validate:start -->\n{head}{results}\n<!-- bench_validate:end -->"
    text = readme.read_text() if readme.exists() else "# Benchmarks\n"
    start, end = "<!-- bench_validate:start -->", "<!-- bench_validate:end -->"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n## Validate\n\n" + block + "\n"
    readme.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
