"""Watch-mode latency: a one-user change on 100,000 users to "Sync Completed".

    .venv/bin/python benchmarks/bench_watch.py [--users 100000] [--runs 5]
        [--skip-file] [--skip-commit] [--webhook]

Setup: a network from benchmarks/generate.py (100,000 users) cut down to 4
elements, each a real simulator (`provgit element serve`, 0 ms latency):
micollab1, the resilient pair mivb01/mivb02 (every user is hosted there)
and ivr1. The elements are filled with the config's records before the
simulators start, so the watcher starts on a network in sync.

1. Saved file: a running `provgit watch DIR` (JSON logs); one user's first
   name is changed in its people file (2,000 users, rewritten as an editor
   does); latency = from the write to the watcher's `sync_result` log line
   saying "Sync Completed".
2. Commit: `provgit watch --repo DIR --ref main --fetch-seconds 0
   --ref-check-seconds 3600` on the same config as a git work tree; a
   one-user change is committed and nothing else: the watcher sees the
   commit through its ref watch (watch/refs.py), no webhook, no poll;
   latency = from the start of `git commit` to "Sync Completed". With
   --webhook, `POST /reconcile` is sent after the commit as well (the
   figure before the ref watch).

Medians of --runs, with the load average (1 min) before each run; per-stage
seconds of each run come from the watcher's `run_finished` line. Figures are
printed and written to benchmarks/README-watch.md (the measured section).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from _common import generated  # noqa: E402

from provgit.api.network import connect, desired_target  # noqa: E402
from provgit.drivers.base import WriteOp  # noqa: E402
from provgit.registry import COLLECTION_ORDER as ORDER  # noqa: E402
from provgit.source import read_directory  # noqa: E402
from provgit.validate import validate_source  # noqa: E402

PY = sys.executable
TOKEN = "bench-token"
ELEMENTS = [("micollab1", "micollab"), ("mivb01", "mivb"), ("mivb02", "mivb"), ("ivr1", "ivr")]


def elements_yaml(urls: dict[str, str] | None, sims: Path) -> str:
    """The 4 elements: embedded on the simulators' files (to fill them) or http."""
    extra = {
        "micollab1": "ceid: 1, admin_group: collab",
        "mivb01": "ceid: 10, cluster: cluster1, admin_group: region1, partner: mivb02",
        "mivb02": "ceid: 11, cluster: cluster1, admin_group: region1, partner: mivb01",
        "ivr1": "ceid: 900",
    }
    lines = ["elements:"]
    for name, kind in ELEMENTS:
        if urls is None:
            # The simulators' own files, outside the state directory: said so.
            conn = (
                "driver: embedded, connection: {allow_outside_state_dir: true, "
                f"path: '{sims / (name + '.sqlite')}'}}"
            )
        else:
            conn = (
                f"driver: http, connection: {{url: '{urls[name]}', timeout: 30, concurrency: 16}}"
            )
        lines.append(f"  - {{name: {name}, type: {kind}, {extra[name]}, {conn}}}")
    return "\n".join(lines) + "\n"


def prepare(users: int, root: Path, sims: Path) -> None:
    data = generated(users)
    shutil.copytree(data, root, ignore=shutil.ignore_patterns(".provgit"))
    # Every user on the pair mivb01/mivb02 (the generated network has 12 call servers).
    for f in (root / "people").glob("*.yaml"):
        text = f.read_text()
        text = re.sub(r"host: mivb(\d+)", lambda m: f"host: mivb0{1 + int(m.group(1)) % 2}", text)
        f.write_text(text)
    settings = (root / "provgit.yaml").read_text()
    settings += "\napply: {queue_cap: 2000000}\n" if "apply:" not in settings else ""
    (root / "provgit.yaml").write_text(settings)
    (root / "network" / "elements.yaml").write_text(elements_yaml(None, sims))
    # The elements' files are outside the state directory: this host says where
    # (here and in the watchers started after, which copy the environment).
    os.environ["PROVGIT_ELEMENT_FILES_DIR"] = str(sims)


def populate(root: Path, state_dir: Path) -> int:
    """Put every record the config projects onto the element files (as an apply would)."""
    source = read_directory(root)
    valid = validate_source(source, state_dir / "cache")
    assert valid.ok, [str(d.location) + " " + d.message for d in valid.diagnostics[:3]]
    target = desired_target(valid.state, source.read_other, state_dir)
    network = connect(valid.state, state_dir, root)

    async def write_all() -> int:
        n = 0
        for name, driver in network.drivers.items():
            records = target.records[name]
            colls = [c for c in ORDER if c in records] + [c for c in records if c not in ORDER]
            ops = [WriteOp("put", c, k, f, None) for c in colls for k, f in records[c].items()]
            for i in range(0, len(ops), 5000):
                bad = [r for r in await driver.write_batch(ops[i : i + 5000]) if not r.ok]
                assert not bad, bad[0].error
            n += len(ops)
        await network.close()
        return n

    return asyncio.run(write_all())


def start_sim(name: str, kind: str, db: Path) -> tuple[subprocess.Popen[str], str]:
    serve = [PY, "-m", "provgit", "element", "serve", "--name", name, "--type", kind]
    proc = subprocess.Popen(
        [*serve, "--port", "0", "--db", str(db)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"simulator {name} did not start: {line!r}")
    return proc, line.removeprefix("listening on ")


class Watcher:
    def __init__(self, args: list[str]) -> None:
        env = {**os.environ, "PROVGIT_WATCH_TOKEN": TOKEN}
        env.pop("PROVGIT_STATE_DIR", None)
        self.proc = subprocess.Popen(
            [PY, "-m", "provgit", "watch", "--port", "0", "--log-format", "json", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        try:
            self.url = json.loads(line)["url"]  # --log-format json: a JSON "listening" line
        except (ValueError, KeyError):
            raise SystemExit(f"watch did not start: {line!r}") from None
        self.lines: list[tuple[float, dict[str, Any]]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            try:
                doc = json.loads(raw)
            except ValueError:
                continue
            with self.cond:
                self.lines.append((time.perf_counter(), doc))
                self.cond.notify_all()

    def cpu_seconds(self) -> float:
        """User + system CPU of the watcher process so far (/proc, Linux)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def mark(self) -> int:
        with self.cond:
            return len(self.lines)

    def wait(
        self, event: str, after: int, timeout: float = 600, **match: Any
    ) -> tuple[float, dict[str, Any]]:
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for at, doc in self.lines[after:]:
                    if doc.get("event") == event and all(doc.get(k) == v for k, v in match.items()):
                        return at, doc
                left = end - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise SystemExit(f"no {event} {match}: {[d for _, d in self.lines[-8:]]}")
                self.cond.wait(min(left, 0.5))

    def post(self, path: str) -> None:
        request = urllib.request.Request(
            self.url + path,
            data=b"{}",
            method="POST",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        urllib.request.urlopen(request, timeout=10).read()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def provide_pins(root: Path) -> None:
    """Set the voicemail PINs of the users the runs rename (the first of each
    people file): a changed user's record is written whole, PIN included, and
    an unset reference would be a distribution error, not a sync."""
    for f in (root / "people").glob("*.yaml"):
        found = re.search(r"login_id: (\S+)", f.read_text())
        if found:
            os.environ[f"VM_PIN_{found.group(1).upper()}"] = "4711"


def change_one_user(root: Path, n: int) -> Path:
    """Rename the first user of one people file (what an admin's one-line edit does)."""
    f = sorted((root / "people").glob("*.yaml"))[n % 7]
    text = f.read_text()
    text = re.sub(r"first_name: \S+", f"first_name: Bench{n}", text, count=1)
    f.write_text(text)
    return f


def measure(
    w: Watcher, runs: int, change: Any, label: str, seen: str | None = None
) -> dict[str, Any]:
    """Medians of `runs` changes; with `seen`, also the time to the watcher's
    `seen` log line (when the run read the change: what watching adds)."""
    latencies, stages, loads, noticed, cpu = [], [], [], [], []
    for n in range(runs):
        loads.append(round(os.getloadavg()[0], 2))
        mark = w.mark()
        c0 = w.cpu_seconds()
        t0 = time.perf_counter()
        change(n)
        at, _ = w.wait("sync_result", mark, status="Sync Completed")
        _, finished = w.wait("run_finished", mark)
        cpu.append(round(w.cpu_seconds() - c0, 3))
        if seen is not None:
            noticed.append(round(w.wait(seen, mark)[0] - t0, 3))
        latencies.append(at - t0)
        stages.append(finished.get("stages", {}))
        print(
            f"  {label} run {n + 1}: {at - t0:.3f} s  seen {noticed[-1:]}  "
            f"cpu {cpu[-1]} s  stages {finished.get('stages')}",
            flush=True,
        )
        time.sleep(0.3)
    med = {k: round(statistics.median(s.get(k, 0.0) for s in stages), 3) for k in stages[0]}
    out = {
        "runs": [round(x, 3) for x in latencies],
        "median": round(statistics.median(latencies), 3),
        "stages": med,
        "load": loads,
        # The watcher's own CPU (user + sys, every thread) from the change to its run's end.
        "cpu": cpu,
        "cpu_median": round(statistics.median(cpu), 3),
    }
    if noticed:
        out["seen"] = noticed
        out["seen_median"] = statistics.median(noticed)
    return out


def git(root: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "b@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "b@example.invalid",
    }
    subprocess.run(["git", "-C", str(root), *args], check=True, env=env, capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--skip-commit", action="store_true")
    ap.add_argument("--skip-file", action="store_true")
    ap.add_argument("--webhook", action="store_true", help="also POST /reconcile per commit")
    ap.add_argument("--no-readme", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-watch-"))
    procs: list[subprocess.Popen[str]] = []
    try:
        root, sims = tmp / "config", tmp / "sims"
        sims.mkdir()
        prepare(a.users, root, sims)
        t = time.perf_counter()
        records = populate(root, tmp / "populate-state")
        print(f"filled 4 elements with {records:,} records in {time.perf_counter() - t:.1f} s")
        urls = {}
        for name, kind in ELEMENTS:
            proc, url = start_sim(name, kind, sims / f"{name}.sqlite")
            procs.append(proc)
            urls[name] = url
        (root / "network" / "elements.yaml").write_text(elements_yaml(urls, sims))
        provide_pins(root)
        results: dict[str, Any] = {"users": a.users, "records": records}

        if not a.skip_file:
            w = Watcher([str(root), "--resync-seconds", "0", "--debounce-ms", "20"])
            _, first = w.wait("run_finished", 0)
            print(f"watch started; first run {first['seconds']} s ({first.get('stages')})")
            results["first_run"] = {"seconds": first["seconds"], "stages": first.get("stages")}
            results["file"] = measure(w, a.runs, lambda n: change_one_user(root, n), "file")
            w.stop()

        if not a.skip_commit:
            git(root, "init", "-q", "-b", "main")
            (root / ".gitignore").write_text(".provgit/\n")
            git(root, "add", "-A")
            git(root, "commit", "-q", "-m", "network")
            state = tmp / "git-state"
            w = Watcher(
                [
                    "--repo",
                    str(root),
                    "--ref",
                    "main",
                    "--fetch-seconds",
                    "0",
                    "--ref-check-seconds",
                    "3600",
                    "--resync-seconds",
                    "0",
                    "--state-dir",
                    str(state),
                ]
            )
            _, first = w.wait("run_finished", 0)
            print(f"watch --repo started; first run {first['seconds']} s")

            def commit(n: int) -> None:
                f = change_one_user(root, 100 + n)
                git(root, "commit", "-q", "-m", f"user {n}", "--", str(f.relative_to(root)))
                if a.webhook:
                    w.post("/reconcile")

            key = "webhook" if a.webhook else "commit"
            results[key] = measure(w, a.runs, commit, "commit", seen="commit_found")
            w.stop()
        print(json.dumps(results, indent=1))
        if not a.no_readme:
            write_readme(results)
        return 0
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


LABELS = (
    ("file", "saved file -> Sync Completed"),
    ("commit", "commit (ref watched, no webhook, no poll) -> Sync Completed"),
    ("webhook", "commit + webhook -> Sync Completed"),
)


def write_readme(r: dict[str, Any]) -> None:
    path = HERE / "README-watch.md"
    lines = [
        "<!-- bench_watch:start -->",
        f"Measured {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU(s), "
        f"{r['users']:,} users, {r['records']:,} records on 4 simulators (0 ms latency).",
        "",
        "| change | median s | runs (s) | load (1 min) per run | floor | within |",
        "| --- | ---: | --- | --- | --- | --- |",
    ]
    for key, label in LABELS:
        if key in r:
            m = r[key]
            ok = "yes" if m["median"] <= 1.0 else "NO"
            runs, load = ", ".join(map(str, m["runs"])), ", ".join(map(str, m["load"]))
            lines.append(f"| {label} | {m['median']} | {runs} | {load} | <= 1 s | {ok} |")
    keys = [k for k, _ in LABELS if k in r]
    lines += ["", "| stage (median s) | " + " | ".join(keys) + " |"]
    lines.append("| --- |" + " ---: |" * len(keys))
    for s in sorted({s for k in keys for s in r[k]["stages"]}):
        lines.append(f"| {s} | " + " | ".join(str(r[k]["stages"].get(s, 0)) for k in keys) + " |")
    lines.append("<!-- bench_watch:end -->")
    block = "\n".join(lines)
    text = path.read_text() if path.exists() else "# Watch benchmark\n\n" + block + "\n"
    if "<!-- bench_watch:start -->" in text:
        text = re.sub(
            r"<!-- bench_watch:start -->.*<!-- bench_watch:end -->",
            lambda _: block,
            text,
            flags=re.S,
        )
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
