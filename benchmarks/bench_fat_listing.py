"""A `reconcile` against an element whose listing sends few, fat, made-up
records (tests/support/fat_element.py: 1 MiB each, --sent-mib in all), before
and after the listing byte budget (observe/received.py): CPU seconds and peak
RSS of the CLI process, and what it said of the element.

    python benchmarks/bench_fat_listing.py --before-src /tmp/main-src --runs 3

One simulator (mivb) on 127.0.0.1 behind a fresh hostile proxy per run; a new
state directory per run (a full read). Runs alternate before, after.
`--before-src`: a `src` directory of the tree to compare with (e.g.
`git archive main src | tar -x`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CliRun, run_cli
from bench_feed import _line

HERE = Path(__file__).resolve().parent
FAT = HERE.parent / "tests" / "support" / "fat_element.py"
CONFIG = """\
elements:
  - {{name: mcl, type: micollab, ceid: 1}}
  - {{name: cs1, type: mivb, ceid: 10, cluster: east, driver: http, connection: {{url: '{url}'}}}}
classes_of_service:
  - {{number: 1, comment: Default}}
templates:
  - name: Basic
    phones: [{{label: Desk, device_type: "6920", primary: true}}]
    cos: {{day: 1}}
roles:
  - {{name: Agent, template: Basic}}
users:
  - {{login_id: u0, first_name: Ann, last_name: P, role: Agent, host: cs1,
      services: [{{dn: "3000"}}]}}
"""


def _started(argv: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("listening on "), line
    return proc, line.split()[-1]


def _run(tmp: Path, sim_url: str, sent_mib: int, src: Path | None) -> CliRun:
    proxy, url = _started([sys.executable, str(FAT), sim_url, str(sent_mib)])
    try:
        root = tmp / "config"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        (root / "provgit.yaml").write_text("version: 1\nnetwork: t\n")
        (root / "net.yaml").write_text(CONFIG.format(url=url))
        env = dict(os.environ)
        if src is not None:
            env["PYTHONPATH"] = str(src)
        argv = [sys.executable, "-m", "provgit", "reconcile", str(root), "--format", "json"]
        return run_cli(argv, env=env, ok=(0, 1, 2, 3, 4, 5, 6))
    finally:
        proxy.terminate()
        proxy.wait(timeout=60)


def _said(run: CliRun) -> str:
    try:
        by = {e["element"]: e for e in json.loads(run.stdout)["elements"]}
    except (ValueError, KeyError):
        return f"exit {run.exit_code}: {run.stderr.strip().splitlines()[-1:]}"
    cs1 = by.get("cs1", {})
    return f"exit {run.exit_code}, cs1 {cs1.get('status')}: {str(cs1.get('detail'))[:160]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sent-mib", type=int, default=1536)
    ap.add_argument("--before-src", type=Path, required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fat-listing-") as t:
        tmp = Path(t)
        db = tmp / "cs1.sqlite"
        serve = [sys.executable, "-m", "provgit", "element", "serve", "--name", "cs1"]
        sim, sim_url = _started([*serve, "--type", "mivb", "--port", "0", "--db", str(db)])
        try:
            runs: dict[str, list[CliRun]] = {"before": [], "after": []}
            for _ in range(args.runs):
                for name, src in (("before", args.before_src), ("after", None)):
                    run = _run(tmp, sim_url, args.sent_mib, src)
                    runs[name].append(run)
                    print(
                        f"{name}: {run.cpu_seconds:.2f} CPU s, {run.rss_mb:.0f} MB, "
                        f"load {run.load:.1f}; {_said(run)}",
                        flush=True,
                    )
            for name, got in runs.items():
                print(_line(name, got))
        finally:
            sim.terminate()
            sim.wait(timeout=60)


if __name__ == "__main__":
    main()
