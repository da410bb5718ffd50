"""A replica's lease keeper: a small process of its own that renews the leases
its replica holds, so they do not depend on the replica's interpreter getting
the GIL (issue #19, loop11).

A full garbage collection of a 100k-user heap, a marshal of a big blob or any
long C call holds the GIL of the replica's process for tens of seconds: its
renewal thread (watch/replicas.py) cannot run and the leases expire while the
process is alive and well. The keeper is spawned (`python -m
provgit.journal.lease_keeper`, never forked from the threaded parent), imports
only the lease statements, and holds its own connection to the database.

The parent writes JSON lines to the keeper's stdin: first the settings (the
password among them: a pipe, never the command line), then at each of its
renewal rounds `{"seen": <when its event loop last moved, CLOCK_MONOTONIC>,
"tokens": {element: token}}`. Every tick the keeper says the replica is alive
and renews those tokens (never claims, never releases), while `seen` is within
the stall bound: a parent stuck for good (SIGSTOP, a loop that never wakes)
lets its leases go as before. It publishes what it renewed, each with the time
(CLOCK_MONOTONIC, system-wide on Linux) until which the parent may write, to a
file the parent reads when its own view has lapsed (`published`), with the
`seen` it renewed under. It exits
without another renewal when the parent dies (PR_SET_PDEATHSIG with SIGTERM,
whose handler exits at once and removes the published file; stdin EOF) or
closes its stdin (a SIGTERM's hand-over).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from provgit.journal import leases as lease_ops
from provgit.journal.leases import LeaseDbError, LeaseStore

PR_SET_PDEATHSIG = 1
FILE = "held.json"


def published(directory: Path) -> dict[str, tuple[int, float]]:
    """What the keeper renewed last: element -> (token, monotonic time until which
    the parent may write). Empty when there is nothing (yet) or it is unreadable."""
    try:
        data = json.loads((directory / FILE).read_text())
        return {str(e): (int(t), float(u)) for e, (t, u) in data["held"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


class Keeper:
    def __init__(self, settings: dict[str, Any]) -> None:
        self.replica: str = settings["replica"]
        self.lease_seconds = float(settings["lease_seconds"])
        self.margin = float(settings["margin"])
        self.stall = float(settings["stall_seconds"])
        self.pid = int(settings["pid"])
        self.url: str | None = settings.get("url")
        self.directory = Path(settings["directory"])
        self.store = LeaseStore(
            settings["journal_url"],
            settings.get("password"),
            timeout=self.margin,
            schema=settings.get("schema"),
        )
        self.tokens: dict[str, int] = {}
        self.seen = time.monotonic()
        self.lock = threading.Lock()
        self.done = threading.Event()

    def listen(self) -> None:
        """The parent's lines, until EOF (the parent closed the pipe or died)."""
        for line in sys.stdin:
            try:
                message = json.loads(line)
                tokens = {str(e): int(t) for e, t in message["tokens"].items()}
                seen = float(message["seen"])
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            with self.lock:
                self.tokens, self.seen = tokens, seen
                self.url = message.get("url", self.url)
        self.done.set()

    def run(self) -> None:
        tick = min(1.0, self.lease_seconds / 5)
        while not self.done.is_set():
            if os.getppid() != self.pid:
                return
            with self.lock:
                tokens, seen, url = dict(self.tokens), self.seen, self.url
            if time.monotonic() - seen <= self.stall:
                self.renew(tokens, seen, url)
            self.done.wait(tick)

    def renew(self, tokens: dict[str, int], seen: float, url: str | None) -> None:
        sent = time.monotonic()
        try:
            renewed: set[str] = self.store.call(self._round, tokens, url)
        except LeaseDbError:
            return  # what was published stays good until its own time
        if self.done.is_set():
            return
        until = sent + self.lease_seconds - self.margin
        held = {e: (t, until) for e, t in tokens.items() if e in renewed}
        tmp = self.directory / f"{FILE}.tmp"
        tmp.write_text(json.dumps({"held": held, "seen": seen}))
        os.replace(tmp, self.directory / FILE)

    def _round(self, db: Any, tokens: dict[str, int], url: str | None) -> set[str]:
        lease_ops.heartbeat(db, self.replica, socket.gethostname(), self.pid, url)
        return lease_ops.renew(db, self.replica, tokens, self.lease_seconds)


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: stdin's EOF and the parent pid check still end it


def main() -> int:
    directory: list[Path] = []

    def die(_signal: int, _frame: Any) -> None:
        # The parent died (the death signal) or someone stops the keeper: at
        # once, not one more renewal; its published file goes with it.
        for d in directory:
            shutil.rmtree(d, ignore_errors=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, die)
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is the parent's to handle
    line = sys.stdin.readline()
    if not line:
        return 0
    keeper = Keeper(json.loads(line))
    directory.append(keeper.directory)
    if os.getppid() != keeper.pid:
        die(signal.SIGTERM, None)  # the parent died before the death signal was set
    threading.Thread(target=keeper.listen, name="keeper-listen", daemon=True).start()
    try:
        keeper.run()
    finally:
        keeper.store.close()
        # Nothing renews any more: what it published goes (the parent may be
        # exiting without removing it; it only ever makes the parent stricter).
        shutil.rmtree(keeper.directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
