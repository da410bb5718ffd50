"""Time `provgit validate` (the real CLI, as a subprocess) on a generated network.

    .venv/bin/python benchmarks/bench_validate.py                 # 100,000 users
    .venv/bin/python benchmarks/bench_validate.py --profile --write-readme

Cold: the state directory (parse cache and stored verdict) is deleted before
each run. Warm: a second run with nothing changed. One file edited: then the
largest users file changed by one character (a different one each run), so
only that file is new to the caches. Each is run --runs times;
the median wall time and the largest peak RSS are reported. Peak RSS comes from
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
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import generate  # noqa: E402

FLOORS = {"cold_s": 6.0, "warm_s": 1.0, "edited_s": 0.7, "rss_mb": 1500.0}


@dataclass(frozen=True)
class Run:
    seconds: float
    rss_mb: float
    exit_code: int
    summary: str
    cpu: float = 0.0  # user + system seconds of the CLI process (wait4), less noisy under load


def _env(src: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PROVGIT_STATE_DIR", None)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return env


def run_validate(data: Path, src: Path | None) -> Run:
    """One `provgit validate DATA` in a fresh process: wall time and peak RSS."""
    cmd = [sys.executable, "-m", "provgit", "validate", str(data)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env(src))
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = out.decode(errors="replace").strip().splitlines()
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, usage.ru_maxrss / 1024, proc.returncode, lines[-1] if lines else "", cpu)


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


def bench(data: Path, runs: int, src: Path | None) -> tuple[list[Run], list[Run], list[Run]]:
    """Cold, warm (nothing changed) and one file edited (one users file of
    ~2,000 users changed by one character before the run), `runs` of each."""
    state = data / ".provgit"
    cold: list[Run] = []
    warm: list[Run] = []
    edited: list[Run] = []
    victim = sorted(data.rglob("*.yaml"), key=lambda p: -p.stat().st_size)[0]
    original = victim.read_bytes()
    try:
        for i in range(runs):
            shutil.rmtree(state, ignore_errors=True)
            cold.append(run_validate(data, src))
            warm.append(run_validate(data, src))
            # A different edit each time, so no run finds its own file in the cache.
            victim.write_bytes(original.replace(b"first_name: ", b"first_name: E%d" % i, 1))
            edited.append(run_validate(data, src))
            victim.write_bytes(original)
            run_validate(data, src)  # back to the tree the next cold run starts from
    finally:
        victim.write_bytes(original)
    for r in cold + warm + edited:
        if r.exit_code != 0:
            raise SystemExit(f"provgit validate failed ({r.exit_code}): {r.summary}")
    return cold, warm, edited


def table(cold: list[Run], warm: list[Run], edited: list[Run]) -> str:
    def row(name: str, rs: list[Run], floor: float) -> str:
        med = statistics.median(r.seconds for r in rs)
        cpu = statistics.median(r.cpu for r in rs)
        runs = ", ".join(f"{r.seconds:.2f}" for r in rs)
        rss = max(r.rss_mb for r in rs)
        ok = "yes" if med <= floor and rss <= FLOORS["rss_mb"] else "NO"
        return (
            f"| {name} | {med:.2f} | {cpu:.2f} | {runs} | {rss:.0f} "
            f"| <= {floor:g} s, <= 1.5 GB | {ok} |"
        )

    return "\n".join(
        [
            "| run | median s | median CPU s | runs (s) | peak RSS MB | floor | within |",
            "| --- | ---: | ---: | --- | ---: | --- | --- |",
            row("cold (empty cache)", cold, FLOORS["cold_s"]),
            row("warm (nothing changed)", warm, FLOORS["warm_s"]),
            row("one users file edited", edited, FLOORS["edited_s"]),
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
    ap.add_argument("--runs", type=int, default=3)
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

    cold, warm, edited = bench(data, args.runs, args.src)
    report = [
        f"`provgit validate` on {args.users:,} users ({size / 1e6:.1f} MB of YAML in "
        f"{sum(1 for _ in data.rglob('*.yaml'))} files); {args.runs} runs each; "
        f"1-minute load {os.getloadavg()[0]:.1f} at the end.",
        "",
        table(cold, warm, edited),
    ]
    if args.profile:
        parts = []
        for _ in range(args.runs):
            parts.append(stages(data, args.src))
        report += ["", stage_table(parts)]
    text = "\n".join(report)
    print(text)
    print(f"\nlast output: {cold[-1].summary}", file=sys.stderr)
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
