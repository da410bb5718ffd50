"""Watch-mode soak: the watcher's memory over thousands of applied commits.

    .venv/bin/python benchmarks/bench_soak.py [--users 1000] [--commits 2000]
        [--every 100] [--clients 2] [--tracemalloc] [--no-readme]

Setup: the generated network (benchmarks/generate.py) of --users users, cut
down to 4 simulator elements as in bench_watch.py (`provgit element serve`,
filled first so the watcher starts in sync), kept in a git work tree. The
watcher runs in this process, as `provgit watch --repo DIR --fetch-seconds 0
--resync-seconds 0` runs it (the cyclic GC off, as the CLI leaves it; the
status server listening on 127.0.0.1), so its memory can be read here: RSS
from /proc/self/status, and with --tracemalloc, snapshots compared to show
where memory grew. The commits are made here too (a one-user change each, seen
by the ref watch, no webhook); each is waited for until the watcher says it is
applied (`applied_commit`, and the run finished) before the next. --clients
threads fetch /status.json and /metrics once a second meanwhile, as
dashboards do.

RSS is recorded after the first commit and every --every commits; the
figure the issue asks for is RSS after all commits against RSS after the
first 100. tracemalloc slows the watcher by 2-3x: it is a separate run, for
the growth sites, not for the curve.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
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
import tracemalloc
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from bench_watch import (  # noqa: E402
    ELEMENTS,
    elements_yaml,
    git,
    populate,
    prepare,
    provide_pins,
    start_sim,
)

from provgit.watch.logs import Log  # noqa: E402
from provgit.watch.loop import Watcher, WatchOptions  # noqa: E402

# How long one commit may take to be applied before the soak gives up.
COMMIT_TIMEOUT = 600.0


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def poll_status(url: str, stop: threading.Event) -> None:
    """A dashboard: the status document and the metrics, once a second."""
    while not stop.wait(1.0):
        for path in ("/status.json", "/metrics"):
            try:
                with urllib.request.urlopen(url + path, timeout=30) as r:
                    r.read()
            except OSError:
                pass


class Soak:
    def __init__(self, args: argparse.Namespace, root: Path, state: Path) -> None:
        self.a = args
        self.root = root
        options = WatchOptions(
            config=root,
            state_dir=state,
            repo=str(root),
            fetch_seconds=0,
            resync_seconds=0,
            ref_check_seconds=3600,
            port=0,
        )
        # The log goes to a buffer emptied after each commit: what a log
        # collector would read, not kept here.
        self.log_buffer = io.StringIO()
        self.watcher = Watcher(options, Log("json", stream=self.log_buffer))
        self.url = ""
        self.curve: list[dict[str, Any]] = []
        self.seconds: list[float] = []
        self.sites: list[str] = []

    async def applied(self, commit: str) -> None:
        """Wait until `commit` is applied and the run that applied it finished."""
        w = self.watcher
        end = time.monotonic() + COMMIT_TIMEOUT
        while not (
            w.config.applied_commit == commit
            and w.live.running is None
            and (w.live.last_run or {}).get("commit") == commit
        ):
            if time.monotonic() > end:
                raise SystemExit(f"commit {commit[:12]} not applied in {COMMIT_TIMEOUT} s")
            if w.stopping:  # SIGINT/SIGTERM reach the watcher's handlers: stop here too
                raise SystemExit(f"watcher stopped before commit {commit[:12]} was applied")
            await asyncio.sleep(0.002)

    async def commit(self, n: int) -> str:
        def make() -> str:
            f = change_one_user(self.root, n)
            git(self.root, "commit", "-q", "-m", f"user {n}", "--", str(f.relative_to(self.root)))
            out = subprocess.run(
                ["git", "-C", str(self.root), "rev-parse", "HEAD"], capture_output=True, text=True
            )
            return out.stdout.strip()

        return await asyncio.to_thread(make)

    def record(self, n: int) -> None:
        point = {
            "commits": n,
            "rss_mb": round(rss_mb(), 1),
            "frozen": gc.get_freeze_count(),
            "gc_objects": len(gc.get_objects()),
            "load": round(os.getloadavg()[0], 2),
        }
        self.curve.append(point)
        print(
            f"  {n:>6} commits: RSS {point['rss_mb']:.1f} MB, frozen {point['frozen']:,}, "
            f"tracked {point['gc_objects']:,}, load {point['load']}",
            flush=True,
        )

    def census_growth(self, before: Counter[str], after: Counter[str]) -> None:
        grown = Counter(after)
        grown.subtract(before)
        print(f"objects by type, growth since commit {self.a.every}:")
        for name, count in grown.most_common(15):
            print(f"  {count:+,} {name} ({after[name]:,})")
        # Who holds the newest objects of the type that grew most.
        name = grown.most_common(1)[0][0]
        newest = [o for o in gc.get_objects() if _type_name(o) == name][-3:]
        for o in newest:
            holders = [_type_name(r) for r in gc.get_referrers(o) if r is not newest]
            print(f"  a {name} held by {holders[:6]}: {repr(o)[:160]}")

    async def main(self) -> None:
        ready = asyncio.Event()

        def on_ready(url: str) -> None:
            self.url = url
            ready.set()

        task = asyncio.create_task(self.watcher.run(on_ready))
        await ready.wait()
        head = await asyncio.to_thread(
            lambda: subprocess.run(
                ["git", "-C", str(self.root), "rev-parse", "HEAD"], capture_output=True, text=True
            ).stdout.strip()
        )
        await self.applied(head)
        stop = threading.Event()
        clients = [
            threading.Thread(target=poll_status, args=(self.url, stop), daemon=True)
            for _ in range(self.a.clients)
        ]
        for c in clients:
            c.start()
        base: tracemalloc.Snapshot | None = None
        census: Counter[str] = Counter()
        try:
            for n in range(1, self.a.commits + 1):
                t0 = time.perf_counter()
                await self.applied(await self.commit(n))
                self.seconds.append(time.perf_counter() - t0)
                if self.a.show_log:
                    print(self.log_buffer.getvalue(), end="")
                self.log_buffer.seek(0)
                self.log_buffer.truncate()
                if n == 1 or n % self.a.every == 0 or n == self.a.commits:
                    self.record(n)
                if self.a.tracemalloc and n == self.a.every:
                    base = tracemalloc.take_snapshot()
                if self.a.census and n == self.a.every:
                    census = object_census()
                if self.a.census and n == self.a.commits:
                    self.census_growth(census, object_census())
        finally:
            stop.set()
            self.watcher.stop()
            await task
        if base is not None:
            top = tracemalloc.take_snapshot().compare_to(base, "traceback")[:12]
            for stat in top:
                where = " <- ".join(
                    f"{Path(f.filename).name}:{f.lineno}" for f in stat.traceback[-4:][::-1]
                )
                self.sites.append(
                    f"{stat.size_diff / 1024:+.0f} KiB, {stat.count_diff:+} blocks: {where}"
                )
            print("tracemalloc growth since commit", self.a.every, *self.sites, sep="\n  ")


def change_one_user(root: Path, n: int) -> Path:
    """Rename the first user of one people file (whose PIN provide_pins set)."""
    files = sorted((root / "people").glob("*.yaml"))
    f = files[n % len(files)]
    f.write_text(re.sub(r"first_name: \S+", f"first_name: Soak{n}", f.read_text(), count=1))
    return f


def _type_name(o: object) -> str:
    t = type(o)
    return f"{t.__module__}.{t.__qualname__}"


def object_census() -> Counter[str]:
    """Live objects by type, frozen ones included (a diagnostic: it unfreezes,
    collects and freezes again, as the watcher's own full collection does)."""
    gc.unfreeze()
    gc.collect()
    found = Counter(_type_name(o) for o in gc.get_objects())
    gc.freeze()
    return found


def setup(args: argparse.Namespace, tmp: Path) -> tuple[Path, list[subprocess.Popen[str]]]:
    root, sims = tmp / "config", tmp / "sims"
    sims.mkdir()
    prepare(args.users, root, sims)
    records = populate(root, tmp / "populate-state")
    print(f"filled 4 elements with {records:,} records", flush=True)
    procs, urls = [], {}
    for name, kind in ELEMENTS:
        proc, url = start_sim(name, kind, sims / f"{name}.sqlite")
        procs.append(proc)
        urls[name] = url
    (root / "network" / "elements.yaml").write_text(elements_yaml(urls, sims))
    provide_pins(root)
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text(".provgit/\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "network")
    return root, procs


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--commits", type=int, default=2000)
    ap.add_argument("--every", type=int, default=100, help="record RSS every N commits")
    ap.add_argument("--clients", type=int, default=2, help="threads polling the status server")
    ap.add_argument("--tracemalloc", action="store_true", help="show where memory grew")
    ap.add_argument("--census", action="store_true", help="live objects by type: what grew")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--show-log", action="store_true", help="print the watcher's log lines")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    procs: list[subprocess.Popen[str]] = []
    try:
        root, procs = setup(a, tmp)
        if a.tracemalloc:
            tracemalloc.start(6)
        gc.disable()  # as the CLI leaves it (cli/__init__.py); the watcher collects itself
        soak = Soak(a, root, tmp / "state")
        started = time.perf_counter()
        asyncio.run(soak.main())
        elapsed = time.perf_counter() - started
        print(
            f"{a.commits} commits in {elapsed:.0f} s, "
            f"median {statistics.median(soak.seconds):.3f} s per commit"
        )
        if not a.no_readme and not a.tracemalloc and not a.census:
            write_readme(a, soak, elapsed)
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


def write_readme(a: argparse.Namespace, soak: Soak, elapsed: float) -> None:
    curve = soak.curve
    at100 = next((p["rss_mb"] for p in curve if p["commits"] == a.every), curve[0]["rss_mb"])
    last = curve[-1]
    growth = (last["rss_mb"] - at100) / at100 * 100
    lines = [
        "<!-- bench_soak:start -->",
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} CPU(s), "
        f"{a.users:,} users on 4 simulators, {a.commits:,} commits applied one after "
        f"the other in {elapsed:.0f} s (median {statistics.median(soak.seconds):.3f} s "
        f"per commit), {a.clients} status clients polling.",
        "",
        f"RSS after {last['commits']:,} commits: {last['rss_mb']} MB; after {a.every}: "
        f"{at100} MB ({growth:+.1f} %; the floor is within 10 %).",
        "",
        "| commits | RSS MB | frozen objects | GC-tracked objects | load (1 min) |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in curve:
        lines.append(
            f"| {p['commits']:,} | {p['rss_mb']} | {p['frozen']:,} | {p['gc_objects']:,} "
            f"| {p['load']} |"
        )
    lines.append("<!-- bench_soak:end -->")
    block = "\n".join(lines)
    path = HERE / "README-watch.md"
    text = path.read_text()
    if "<!-- bench_soak:start -->" in text:
        text = re.sub(
            r"<!-- bench_soak:start -->.*<!-- bench_soak:end -->",
            lambda _: block,
            text,
            flags=re.S,
        )
    else:
        text += "\n## Soak: memory over applied commits\n\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
