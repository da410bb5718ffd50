"""Run `provgit ARGS...` with a wall clock that jumps when a test says so.

    python tests/support/replica_clock.py OFFSET_FILE ARGS...

The same process `python -m provgit ARGS...` runs, except that `time.time()`
(and time_ns, gmtime and localtime without an argument) reads the real wall
clock plus the offset in OFFSET_FILE (seconds, as text;
re-read every 20 ms by a thread of its own, which writes each value it
takes to OFFSET_FILE.seen), so a test steps the clock back or forward as NTP
or an admin's `date -s` would. The monotonic clock is left
alone, as such a step leaves it. provgit itself reads no test variable.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from pathlib import Path


def main(offset_file: str, *args: str) -> None:
    path = Path(offset_file)
    real = time.time
    offset = [float(path.read_text())]

    seen = path.with_name(path.name + ".seen")

    def follow() -> None:
        while True:
            # Written by os.replace (set_clock): a failed read finds it whole next time.
            with contextlib.suppress(OSError, ValueError):
                value = float(path.read_text())
                if value != offset[0] or not seen.exists():
                    offset[0] = value
                    part = seen.with_name(seen.name + ".part")
                    part.write_text(repr(value))
                    os.replace(part, seen)  # the test waits for this: the step is taken
            time.sleep(0.02)

    threading.Thread(target=follow, daemon=True).start()
    real_gmtime, real_localtime = time.gmtime, time.localtime

    def now() -> float:
        return real() + offset[0]

    # "Now" everywhere Python's time module gives it (the log's stamps, the
    # status document's `generated`); datetime and C libraries keep the real one.
    time.time = now
    time.time_ns = lambda: int(now() * 1e9)
    time.gmtime = lambda secs=None: real_gmtime(now() if secs is None else secs)
    time.localtime = lambda secs=None: real_localtime(now() if secs is None else secs)

    from provgit.cli import main as provgit

    sys.argv = ["provgit", *args]
    provgit()


if __name__ == "__main__":
    main(*sys.argv[1:])
