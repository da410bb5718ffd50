"""Helpers shared by the benchmark scripts (run from this folder, not a package)."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from provgit.api.network import connect, desired_target  # noqa: E402
from provgit.drivers.base import WriteOp  # noqa: E402
from provgit.registry import COLLECTION_ORDER  # noqa: E402
from provgit.source import read_directory  # noqa: E402
from provgit.validate import validate_source  # noqa: E402


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


def run_cli(
    argv: list[str], env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)
) -> CliRun:
    """Run argv to completion and measure it. Peak RSS is ru_maxrss of wait4(),
    i.e. the largest resident set of that process or any child it reaped; CPU
    is its user + system time (children it waited for included)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        run = CliRun(
            seconds,
            usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss / 1024,
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
