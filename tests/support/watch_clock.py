"""Run a watcher on a config directory with a clock read from a file.

    python tests/support/watch_clock.py CLOCK_FILE CONFIG_DIR

The same Watcher `provgit watch CONFIG_DIR --port 0 --log-format json` runs,
in a process of its own (so a test can SIGKILL it), with "now" for its holds
read from CLOCK_FILE (seconds since the epoch, as text) through the clock
injection point (`WatchOptions.clock`); provgit itself reads no test variable.
The token comes from $PROVGIT_WATCH_TOKEN; retries are checked every 50 ms and
resyncs are an hour apart. Prints the JSON "listening" line on stdout, logs
JSON on stderr.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path


class FileClock:
    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> float:
        return float(self.path.read_text())


def main(clock_file: str, config_dir: str) -> None:
    from provgit.watch.logs import Log
    from provgit.watch.loop import Watcher, WatchOptions

    config = Path(config_dir).resolve()
    options = WatchOptions(
        config=config,
        state_dir=config / ".provgit",
        token=os.environ.get("PROVGIT_WATCH_TOKEN") or None,
        retry_check_seconds=0.05,
        resync_seconds=3600,
        clock=FileClock(Path(clock_file)),
    )
    watcher = Watcher(options, Log("json"))
    out = Log("json", stream=sys.stdout)
    asyncio.run(watcher.run(lambda url: out.info("listening", url=url)))


if __name__ == "__main__":
    main(*sys.argv[1:])
