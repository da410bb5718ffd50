"""Where a provgit command's Python memory is when it is largest (tracemalloc).

    .venv/bin/python benchmarks/trace_peak.py [--frames 10] [--top 20] [--out FILE] \
        -- plan CONFIG --state-dir DIR --format text

Runs the CLI in this process (as `python -m provgit ARGS` runs it) with
tracemalloc on. A thread reads the traced total every 0.2 s and takes a
snapshot each time it is 10 % over the last snapshot's (from 100 MB): the
last snapshot is the one nearest the peak. At the end it prints the
snapshot's top allocation sites grouped by line and by traceback (the last
--frames frames), the traced peak and this process's peak RSS. tracemalloc
slows the command 2-3x and adds its own memory (~40-60 bytes a block) to the
RSS: the figures are where the memory is, not how much the command takes
untraced (that is `_common.run_cli`'s job).
"""

from __future__ import annotations

import argparse
import resource
import sys
import threading
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

MB = 1024 * 1024


class PeakSnapshots:
    def __init__(self) -> None:
        self.snapshot: tracemalloc.Snapshot | None = None
        self.at_mb = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)

    def watch(self) -> None:
        floor = 100 * MB
        while not self.stop.wait(0.2):
            current, _ = tracemalloc.get_traced_memory()
            if current > max(floor, self.at_mb * MB * 1.1):
                self.snapshot = None  # the old one's memory goes before the new one's is taken
                snap = tracemalloc.take_snapshot().filter_traces(
                    [tracemalloc.Filter(False, tracemalloc.__file__)]
                )
                self.snapshot, self.at_mb = snap, current / MB


def report(peaks: PeakSnapshots, frames: int, top: int) -> list[str]:
    current, peak = tracemalloc.get_traced_memory()
    lines = [
        f"traced now {current / MB:.0f} MB, traced peak {peak / MB:.0f} MB, "
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
    ]
    snap = peaks.snapshot
    if snap is None:
        return [*lines, "no snapshot (never over 100 MB traced)"]
    total = sum(s.size for s in snap.statistics("filename"))
    lines.append(f"snapshot at {peaks.at_mb:.0f} MB traced ({total / MB:.0f} MB in it):")
    lines.append(f"top {top} by line:")
    for s in snap.statistics("lineno")[:top]:
        f = s.traceback[0]
        lines.append(
            f"  {s.size / MB:8.1f} MB {s.count:>10,} blocks  {_short(f.filename)}:{f.lineno}"
        )
    lines.append(f"top {top} by traceback (innermost first, {frames} frames):")
    for s in snap.statistics("traceback")[:top]:
        where = " <- ".join(f"{_short(f.filename)}:{f.lineno}" for f in reversed(s.traceback))
        lines.append(f"  {s.size / MB:8.1f} MB {s.count:>10,} blocks  {where}")
    return lines


def _short(filename: str) -> str:
    if "/provgit/" in filename:
        return filename.split("/provgit/", 1)[1]
    return Path(filename).name


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--out", type=Path, help="also write the report here")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="-- then the provgit arguments")
    a = ap.parse_args()
    argv = a.args[1:] if a.args[:1] == ["--"] else a.args
    tracemalloc.start(a.frames)
    peaks = PeakSnapshots()
    peaks.thread.start()
    from provgit.cli import main as cli_main

    code: int | str | None = 0
    try:
        sys.argv = ["provgit", *argv]
        cli_main()
    except SystemExit as e:
        code = e.code
    finally:
        peaks.stop.set()
        peaks.thread.join()
        lines = [f"provgit {' '.join(argv)}: exit {code}", *report(peaks, a.frames, a.top)]
        print("\n".join(lines), file=sys.stderr)
        if a.out:
            a.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
