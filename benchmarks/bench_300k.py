"""Every command at 300,000 users (issue 16: peak RSS <= 1.5 GB for every
command at 300k; a shared-record change <= 5 s and <= 1.5 GB).

    .venv/bin/python benchmarks/bench_300k.py --source /work/benchdata/net300k
        [--work DIR] [--runs 3] [--results FILE] [--steps validate,rollout,...]

The generated network (benchmarks/generate.py --users 300000; --source is
read, never written) is copied to --work, with its voicemail PIN references
`{env: VM_PIN_X}` rewritten to one key file outside the copy
(`{file: WORK/keys/pins.keys, key: VM_PIN_X}`): ~60,000 environment variables
do not fit a process launch (issue 16), a key file is what the issue asks for
at this size. Then, each a real CLI process through `_common.run_cli` (wall,
CPU seconds user + system, peak RSS from wait4(), the 1-minute load):

- validate: cold (state directory deleted), warm (nothing changed), one file
  edited (one user's first name in one people file, a new value each run);
- rollout: the first plan onto the empty embedded elements, text (the plan
  memo deleted before each run; the parse cache warm);
- then every record is put on the 15 embedded elements (as an apply would,
  in this process: `_common.populate`), one full plan (memo written: that
  figure is recorded as "full plan, populated"), one reconcile (in sync; the
  journal exists, as after any apply);
- status (`--format json`), no-op reconcile;
- template change: `plan` after the "Desk Phone" template's device type
  changed (bench_shared.py's edit; `--format json --detailed-exitcode`, a
  plan over `safety.max_updates` exits 3 and counts).

Each figure is appended as a JSON line to --results as soon as it is measured
(a run stopped for time keeps what it has).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import CliRun, populate, provgit, run_cli  # noqa: E402
from bench_shared import edit  # noqa: E402
from bench_validate import edit_one_file, toggled  # noqa: E402

STEPS = ("validate", "rollout", "populate", "status", "noop", "template")


def pin_for(name: str) -> str:
    """bench_plan.set_secrets' value for a variable name (never one repeated digit)."""
    pin = str(1000 + zlib.crc32(name.encode()) % 9000)
    return pin if len(set(pin)) > 1 else str(int(pin) + 1)


def copy_with_key_file(source: Path, work: Path) -> Path:
    """The network copied to WORK/config, its PIN references into one key file."""
    root, keys = work / "config", work / "keys" / "pins.keys"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(source, root)
    keys.parent.mkdir(parents=True)
    names: list[str] = []
    pattern = re.compile(r"\{env: (VM_PIN_[A-Za-z0-9_]+)\}")
    for f in sorted(root.rglob("*.yaml")):
        text = f.read_text()
        found = pattern.findall(text)
        if found:
            names += found
            f.write_text(pattern.sub(lambda m: f"{{file: {keys}, key: {m[1]}}}", text))
    keys.write_text("".join(f"{n}={pin_for(n)}\n" for n in names))
    keys.chmod(0o600)
    print(f"copied {source} to {root}; {len(names):,} PIN references into {keys}", flush=True)
    return root


class Bench:
    def __init__(self, root: Path, state: Path, results: Path) -> None:
        self.root, self.state, self.results = root, state, results

    def run(self, label: str, *args: str, ok: tuple[int, ...] = (0,)) -> CliRun:
        r = run_cli(provgit(*args), ok=ok)
        line = {
            "what": label,
            "wall_s": round(r.seconds, 2),
            "cpu_s": round(r.cpu_seconds, 2),
            "rss_mb": round(r.rss_mb),
            "load": round(r.load, 1),
            "exit": r.exit_code,
            "at": time.strftime("%H:%M:%S", time.gmtime()),
        }
        print(json.dumps(line), flush=True)
        with self.results.open("a") as f:
            f.write(json.dumps(line) + "\n")
        return r

    def plan(self, label: str, *extra: str, ok: tuple[int, ...] = (0, 2)) -> CliRun:
        return self.run(
            label, "plan", str(self.root), "--state-dir", str(self.state), *extra, ok=ok
        )

    def validate(self, runs: int) -> None:
        vstate = ["--state-dir", str(self.state)]
        path, original = edit_one_file(self.root)
        try:
            for i in range(runs):
                shutil.rmtree(self.state / "cache", ignore_errors=True)
                self.run("validate cold", "validate", str(self.root), *vstate)
                self.run("validate warm", "validate", str(self.root), *vstate)
                path.write_text(toggled(original, i))
                self.run("validate one file edited", "validate", str(self.root), *vstate)
        finally:
            path.write_text(original)

    def rollout(self, runs: int) -> None:
        for _ in range(runs):
            shutil.rmtree(self.state / "memo", ignore_errors=True)
            self.plan("first rollout plan, text", "--format", "text")

    def populate(self) -> None:
        t = time.perf_counter()
        n = populate(self.root, self.state)
        print(f"populated {n:,} records in {time.perf_counter() - t:.0f} s", flush=True)
        shutil.rmtree(self.state / "memo", ignore_errors=True)
        self.plan("full plan, populated (memo written)", "--format", "text")
        self.run(
            "reconcile (in sync, first)",
            "reconcile",
            str(self.root),
            "--state-dir",
            str(self.state),
        )

    def status(self, runs: int) -> None:
        for _ in range(runs):
            self.run(
                "status",
                "status",
                str(self.root),
                "--state-dir",
                str(self.state),
                "--format",
                "json",
                ok=(0, 4),
            )

    def noop(self, runs: int) -> None:
        for _ in range(runs):
            self.run("no-op reconcile", "reconcile", str(self.root), "--state-dir", str(self.state))

    def template(self, runs: int) -> None:
        for n in range(runs):
            edit(self.root, "template", 50 + n)
            self.plan(
                "plan after a template change",
                "--format",
                "json",
                "--detailed-exitcode",
                ok=(0, 2, 3),
            )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--source", type=Path, default=Path("/work/benchdata/net300k"))
    ap.add_argument("--work", type=Path, default=HERE / "out" / "w300k")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--results", type=Path, default=HERE / "out" / "w300k.jsonl")
    ap.add_argument("--steps", default=",".join(STEPS))
    args = ap.parse_args()
    steps = args.steps.split(",")
    if "validate" in steps or not (args.work / "config").exists():
        root = copy_with_key_file(args.source, args.work)
    else:
        root = args.work / "config"
    bench = Bench(root, args.work / "state", args.results)
    for step in steps:
        if step == "populate":
            bench.populate()
        elif step in ("validate", "rollout", "status", "noop", "template"):
            getattr(bench, step)(args.runs)
        else:
            raise SystemExit(f"unknown step {step}: one of {', '.join(STEPS)}")


if __name__ == "__main__":
    main()
