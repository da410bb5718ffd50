"""Helpers shared by the benchmark scripts (run from this folder, not a package)."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
# This tree's src, unless PYTHONPATH names another tree's (an A/B: "run with
# PYTHONPATH=<tree>/src"); inserted first, it used to win over PYTHONPATH, so
# such a run timed this tree whatever PYTHONPATH said.
if not any(
    (Path(p) / "provgit").is_dir() for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p
):
    sys.path.insert(0, str(HERE.parent / "src"))

from provgit.api.network import connect, desired_target  # noqa: E402
from provgit.drivers.base import WriteOp  # noqa: E402
from provgit.registry import COLLECTION_ORDER  # noqa: E402
from provgit.source import read_directory  # noqa: E402
from provgit.validate import validate_source  # noqa: E402


def median_cpu(runs: int, work: Callable[[], object]) -> float:
    """The median of `runs` runs of `work`, in this process's CPU seconds."""
    times = []
    for _ in range(runs):
        t = time.process_time()
        work()
        times.append(time.process_time() - t)
    return statistics.median(times)


def generated(users: int) -> Path:
    """The generated benchmark network of `users` users (made once, then reused)."""
    root = HERE / "data" / f"net{users // 1000}k"
    if not root.exists():
        gen = [sys.executable, str(HERE / "generate.py"), "--users", str(users)]
        subprocess.run([*gen, "--out", str(root)], check=True)
    return root


def populate(root: Path, state_dir: Path) -> int:
    """Put every record the config projects onto its embedded elements (as an apply would)."""
    source = read_directory(root)
    valid = validate_source(source, state_dir / "cache")
    assert valid.ok, valid.diagnostics[:3]
    target = desired_target(valid.state, source.read_other, state_dir)
    network = connect(valid.state, state_dir, root)

    async def write_all() -> int:
        n = 0
        for name, driver in network.drivers.items():
            ops = [
                WriteOp("put", c, k, f, None)
                for c in COLLECTION_ORDER
                for k, f in target.records[name].get(c, {}).items()
            ]
            for i in range(0, len(ops), 5000):
                bad = [r for r in await driver.write_batch(ops[i : i + 5000]) if not r.ok]
                assert not bad, bad[0].error
            n += len(ops)
        await network.close()
        return n

    return asyncio.run(write_all())


# Every timed figure is the median of this many runs, unless a script's
# --runs says otherwise (the README gives the count beside each figure).
RUNS = 5


@dataclass(frozen=True)
class CliRun:
    """One CLI process: wall time, its CPU seconds and peak RSS (from wait4()),
    the 1-minute load average when it ended, exit code and output."""

    seconds: float
    cpu_seconds: float
    rss_mb: float
    load: float
    exit_code: int
    stdout: str
    stderr: str


def provgit(*args: str) -> list[str]:
    """argv of the real CLI in a fresh interpreter (this venv)."""
    return [sys.executable, "-m", "provgit", *args]


# Runs the CLI for run_cli and reports its wall time and wait4() usage on the
# file descriptor named by its second argument.
# Linux keeps a process's peak RSS across exec, and a child forked from this
# (big: it generated and validated 100,000 users) starts with this process's
# resident set counted, so a CLI run from here directly reported this
# process's peak, not its own. The launcher is a fresh interpreter without
# site (a few MB); the CLI is spawned from it, so its peak is its own.
_LAUNCHER = """
import json, os, sys, time
argv = json.loads(sys.argv[1])
started = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
code = os.waitstatus_to_exitcode(status)
cpu = usage.ru_utime + usage.ru_stime
os.write(int(sys.argv[2]), json.dumps([seconds, cpu, usage.ru_maxrss, code]).encode())
"""


def run_cli(
    argv: list[str], env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)
) -> CliRun:
    """Run argv to completion and measure it. Peak RSS is ru_maxrss of wait4()
    in a small launcher process (see _LAUNCHER), i.e. the largest resident set
    of the CLI process or any child it reaped; CPU is its user + system time
    (children it waited for included); wall time is taken around it there."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        read, write = os.pipe()
        try:
            launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, json.dumps(argv), str(write)]
            proc = subprocess.Popen(launcher, stdout=out, stderr=err, env=env, pass_fds=(write,))
            os.close(write)
            write = -1
            with os.fdopen(read, "rb") as pipe:
                read = -1
                report = pipe.read()
            proc.wait()
        finally:
            for fd in (read, write):
                if fd >= 0:
                    os.close(fd)
        if not report:
            err.seek(0)
            raise SystemExit(f"launcher failed: {err.read().decode(errors='replace')[-2000:]}")
        seconds, cpu, maxrss, code = json.loads(report)
        out.seek(0)
        err.seek(0)
        run = CliRun(
            seconds,
            cpu,
            maxrss / 1024,
            os.getloadavg()[0],
            code,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )
    if code not in ok:
        raise SystemExit(f"{' '.join(argv[2:5])} failed ({code}): {run.stderr[-2000:]}")
    return run


def describe(runs: list[CliRun]) -> str:
    """Median wall and CPU seconds, the spread, largest peak RSS and the load."""
    secs = [r.seconds for r in runs]
    loads = [r.load for r in runs]
    cpu = statistics.median(r.cpu_seconds for r in runs)
    return (
        f"median {statistics.median(secs):.2f} s of {len(runs)} "
        f"({min(secs):.2f}-{max(secs):.2f}), CPU {cpu:.2f} s, "
        f"peak RSS {max(r.rss_mb for r in runs):.0f} MB, load {min(loads):.1f}-{max(loads):.1f}"
    )


def check_rss(grow_mb: int = 600) -> None:
    """The peak RSS run_cli reports is the CLI's own, however big this process
    is: /bin/true measured after this process grew by `grow_mb` (the floor is
    the launcher's few MB: a spawned child starts from its parent's).

        .venv/bin/python benchmarks/_common.py
    """
    ballast = bytearray(grow_mb * 1024 * 1024)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1  # touched: resident
    direct = subprocess.Popen(["/bin/true"])
    _, _, usage = os.wait4(direct.pid, 0)
    direct.returncode = 0
    small = run_cli(["/bin/true"])
    python = run_cli([sys.executable, "-c", "pass"])
    print(
        f"this process: {_self_rss_mb():.0f} MB resident; /bin/true: {small.rss_mb:.1f} MB "
        f"(started from here directly: {usage.ru_maxrss / 1024:.1f} MB), "
        f"python -c pass: {python.rss_mb:.1f} MB (CPU {python.cpu_seconds:.3f} s)"
    )
    assert small.rss_mb < 50, "the launcher's peak leaked into the CLI's"
    del ballast


def _self_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    check_rss()
