"""Watch-mode soak: the watcher's memory over thousands of applied commits.

    .venv/bin/python benchmarks/bench_soak.py [--users 200] [--commits 10000]
        [--every 100] [--clients 2] [--curve FILE] [--snapshots 100,300,600]
        [--census] [--no-readme] [--readme-from FILE]

Setup: the generated network (benchmarks/generate.py) of --users users, cut
down to 4 simulator elements as in bench_watch.py (`provgit element serve`,
filled first so the watcher starts in sync), kept in a git work tree. The
watcher runs in this process, as `provgit watch --repo DIR --fetch-seconds 0
--resync-seconds 0` runs it (the cyclic GC off, as the CLI leaves it; the
status server listening on 127.0.0.1), so its memory can be read here: RSS
from /proc/self/status. The commits are made here too (a one-user change each, seen
by the ref watch, no webhook); each is waited for until the watcher says it is
applied (`applied_commit`, and the run finished: woken by the watcher's
`run_finished` log line, not by a timer) before the next. --clients threads
fetch /status.json and /metrics once a second meanwhile, as dashboards do.

RSS is recorded after the first commit and every --every commits, beside
what the C allocator holds (glibc `mallinfo2`: in use, free inside its
heaps), SQLite's own heap (`sqlite3_memory_used`), the objects the GC
tracks and has frozen, threads, asyncio tasks and open files; each sample is
also appended to --curve as a JSON line, so a long run stopped early keeps
its curve. The figure the issue asks for is RSS after all commits against
RSS after the first 100. --snapshots N,M,...: tracemalloc on, a snapshot at
each of those commits, each compared with the one before (the top growth
sites by traceback): where Python memory grew, apart from the curve
(tracemalloc slows the watcher 2-3x and adds its own memory to RSS).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import io
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


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
            "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        return libc
    except (OSError, AttributeError):
        return None  # not glibc (or older than 2.33): the columns stay empty


def _sqlite() -> Any:
    # The library the sqlite3 module loaded (one copy per process, by soname).
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        return lib
    except (OSError, AttributeError):
        return None


LIBC, SQLITE = _libc(), _sqlite()
MB = 1024 * 1024


def sqlite_connections() -> list[tuple[str, float, float, float]]:
    """Each live sqlite3 connection: (its main database file, MB its page
    cache, schema and prepared statements hold), from sqlite3_db_status:
    where SQLite's heap grows. The connection's `sqlite3 *` is read from the
    object (CPython's pysqlite_Connection keeps it right after the object
    header), so this is for measuring only."""
    import sqlite3

    if SQLITE is None:
        return []
    status = SQLITE.sqlite3_db_status
    status.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_int),
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_int,
    ]
    filename = SQLITE.sqlite3_db_filename
    filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    filename.restype = ctypes.c_char_p
    found = []
    gc.unfreeze()  # the watcher froze its long-lived objects: get_objects skips those
    everything = gc.get_objects()
    gc.freeze()
    for o in everything:
        if not isinstance(o, sqlite3.Connection):
            continue
        db = ctypes.c_void_p.from_address(id(o) + 2 * ctypes.sizeof(ctypes.c_void_p)).value
        if not db:
            continue  # closed
        raw = filename(db, b"main")
        name = raw.decode() if raw else ":memory:"
        used = []
        for op in (1, 2, 3):  # CACHE_USED, SCHEMA_USED, STMT_USED
            cur, high = ctypes.c_int(0), ctypes.c_int(0)
            status(db, op, ctypes.byref(cur), ctypes.byref(high), 0)
            used.append(round(cur.value / MB, 2))
        found.append((name, used[0], used[1], used[2]))
    return found


def heap_figures() -> dict[str, float]:
    """The C allocator's heaps and SQLite's own heap, in MB."""
    found: dict[str, float] = {}
    if LIBC is not None:
        m = LIBC.mallinfo2()
        # uordblks: in use in the arenas; fordblks: free but kept in them;
        # hblkhd: big blocks mmapped one by one (returned when freed).
        found["malloc_used_mb"] = round(m.uordblks / MB, 1)
        found["malloc_free_mb"] = round(m.fordblks / MB, 1)
        found["mmapped_mb"] = round(m.hblkhd / MB, 1)
    if SQLITE is not None:
        found["sqlite_mb"] = round(SQLITE.sqlite3_memory_used() / MB, 2)
    if tracemalloc.is_tracing():
        found["traced_mb"] = round(tracemalloc.get_traced_memory()[0] / MB, 1)
    return found


class RunFinished(io.StringIO):
    """The watcher's log stream: wakes the soak at each `run_finished` line."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop
        self.event = asyncio.Event()

    def write(self, s: str) -> int:
        if '"run_finished"' in s:
            self.loop.call_soon_threadsafe(self.event.set)
        return super().write(s)


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
        self.options = options
        self.url = ""
        self.curve: list[dict[str, Any]] = []
        self.seconds: list[float] = []
        self.snapshots = sorted(int(n) for n in args.snapshots.split(",") if n)
        self.last_snapshot: tracemalloc.Snapshot | None = None
        self.last_snapshot_at = 0

    def start_watcher(self) -> None:
        # The log goes to a buffer emptied after each commit: what a log
        # collector would read, not kept here.
        self.log_buffer = RunFinished(asyncio.get_running_loop())
        self.watcher = Watcher(self.options, Log("json", stream=self.log_buffer))

    async def applied(self, commit: str) -> None:
        """Wait until `commit` is applied and the run that applied it finished."""
        w = self.watcher
        finished = self.log_buffer.event
        end = time.monotonic() + COMMIT_TIMEOUT
        while not (
            w.config.applied_commit == commit
            and w.live.running is None
            and (w.live.last_run or {}).get("commit") == commit
        ):
            left = end - time.monotonic()
            if left <= 0:
                raise SystemExit(f"commit {commit[:12]} not applied in {COMMIT_TIMEOUT} s")
            if w.stopping:  # SIGINT/SIGTERM reach the watcher's handlers: stop here too
                raise SystemExit(f"watcher stopped before commit {commit[:12]} was applied")
            finished.clear()
            # A run finished (or a stop) wakes this; the bound is for a stop
            # that logs nothing, checked above.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), min(left, 1.0))

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
            **heap_figures(),
            "frozen": gc.get_freeze_count(),
            "gc_objects": len(gc.get_objects()),
            "threads": threading.active_count(),
            "tasks": len(asyncio.all_tasks()),
            "fds": len(os.listdir("/proc/self/fd")),
            "seconds": round(sum(self.seconds), 1),
            "load": round(os.getloadavg()[0], 2),
        }
        self.curve.append(point)
        print(
            f"  {n:>6} commits: RSS {point['rss_mb']:.1f} MB, "
            + ", ".join(f"{k} {v}" for k, v in point.items() if k not in ("commits", "rss_mb")),
            flush=True,
        )
        if self.a.curve:
            with open(self.a.curve, "a") as f:
                f.write(json.dumps(point) + "\n")

    def snapshot(self, n: int) -> None:
        """Compare a tracemalloc snapshot with the one before: what grew, where."""
        # What is garbage now is not growth, frozen or not (the frozen column
        # of the curve shows what waits for the watcher's full collection).
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        snap = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        before, self.last_snapshot = self.last_snapshot, snap
        if before is None:
            self.last_snapshot_at = n
            return
        lines = [f"tracemalloc growth, commit {self.last_snapshot_at} -> {n}:"]
        for stat in snap.compare_to(before, "traceback")[:15]:
            where = " <- ".join(
                f"{Path(f.filename).name}:{f.lineno}" for f in stat.traceback[-6:][::-1]
            )
            lines.append(f"  {stat.size_diff / 1024:+.0f} KiB, {stat.count_diff:+} blocks: {where}")
        self.last_snapshot_at = n
        print(*lines, sep="\n", flush=True)
        if self.a.curve:
            with open(self.a.curve, "a") as f:
                f.write(json.dumps({"commits": n, "tracemalloc": lines}) + "\n")

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
        self.start_watcher()
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
                if n in self.snapshots:
                    self.snapshot(n)
                if self.a.census and n == self.a.every:
                    census = object_census()
                if self.a.census and n == self.a.commits:
                    self.census_growth(census, object_census())
                if self.a.census and n % self.a.every == 0:
                    for name, cache, schema, stmt in sqlite_connections():
                        print(f"  sqlite {name}: cache {cache} MB, schema {schema}, stmts {stmt}")
        finally:
            stop.set()
            self.watcher.stop()
            await task


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
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--commits", type=int, default=10000)
    ap.add_argument("--every", type=int, default=100, help="record RSS every N commits")
    ap.add_argument("--clients", type=int, default=2, help="threads polling the status server")
    ap.add_argument("--curve", help="append each sample to this file (JSON lines)")
    ap.add_argument(
        "--snapshots",
        default="",
        help="tracemalloc snapshots at these commits (e.g. 100,300,600), each compared "
        "with the one before",
    )
    ap.add_argument("--census", action="store_true", help="live objects by type: what grew")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--show-log", action="store_true", help="print the watcher's log lines")
    ap.add_argument(
        "--readme-from", help="write README-watch.md's block from this --curve file, run nothing"
    )
    a = ap.parse_args()
    if a.readme_from:
        write_readme(a, read_curve(a.readme_from))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    procs: list[subprocess.Popen[str]] = []
    try:
        root, procs = setup(a, tmp)
        if a.snapshots:
            tracemalloc.start(10)
        gc.disable()  # as the CLI leaves it (cli/__init__.py); the watcher collects itself
        soak = Soak(a, root, tmp / "state")
        started = time.perf_counter()
        asyncio.run(soak.main())
        elapsed = time.perf_counter() - started
        print(
            f"{a.commits} commits in {elapsed:.0f} s, "
            f"median {statistics.median(soak.seconds):.3f} s per commit"
        )
        if not a.no_readme and not a.snapshots and not a.census:
            write_readme(a, soak.curve)
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


def write_readme(a: argparse.Namespace, curve: list[dict[str, Any]]) -> None:
    """The curve's block in README-watch.md: the first sample, the one at
    --every, every 500th commit and the last."""
    at100 = next((p for p in curve if p["commits"] == a.every), curve[0])
    last = curve[-1]
    growth = (last["rss_mb"] - at100["rss_mb"]) / at100["rss_mb"] * 100
    loads = [p["load"] for p in curve]
    lines = [
        "<!-- bench_soak:start -->",
        f"Measured {time.strftime('%Y-%m-%d', time.gmtime())}, {os.cpu_count()} CPU(s), "
        f"{a.users:,} users on 4 simulators, {last['commits']:,} commits applied one after "
        f"the other in {last['seconds']:.0f} s ({last['seconds'] / last['commits']:.2f} s "
        f"per commit), {a.clients} status clients polling, load (1 min) "
        f"{min(loads):.0f}-{max(loads):.0f}.",
        "",
        f"RSS after {last['commits']:,} commits: {last['rss_mb']} MB; after "
        f"{at100['commits']}: {at100['rss_mb']} MB ({growth:+.1f} %; the floor is within 10 %).",
        "",
        "| commits | RSS MB | malloc in use MB | malloc free MB | SQLite MB | frozen objects "
        "| threads | load (1 min) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in curve:
        if p is curve[0] or p is at100 or p is last or p["commits"] % 500 == 0:
            lines.append(
                f"| {p['commits']:,} | {p['rss_mb']} | {p.get('malloc_used_mb', '')} "
                f"| {p.get('malloc_free_mb', '')} | {p.get('sqlite_mb', '')} | {p['frozen']:,} "
                f"| {p['threads']} | {p['load']} |"
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


def read_curve(path: str) -> list[dict[str, Any]]:
    """The samples a --curve file kept (a run stopped early included)."""
    with open(path) as f:
        found = [json.loads(line) for line in f if line.strip()]
    return [p for p in found if "rss_mb" in p]


if __name__ == "__main__":
    sys.exit(main())
