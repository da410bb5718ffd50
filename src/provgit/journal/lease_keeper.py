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
`seen` it renewed under. A message may carry `"times": [lease, margin, stall]`,
the lease time, margin and stall bound in effect now (the replica learns its
lease time from its config at its first run, after the keeper started).

A fleet process (watch/fleet.py) has one keeper for every lease it holds: its
networks' leases in the fleet's schema (the keeper's own, as a replica's) and,
in `"groups": {schema: {element: token}}`, each network's element leases in
that network's journal schema, renewed on the same connection with the schema
set for the transaction alone. In a group the heartbeat goes only with a
renewal in the same transaction: a network being handed back (its leases
released, its replica gone from the list) is never listed again. It exits
without another renewal when the parent dies (PR_SET_PDEATHSIG with SIGTERM,
whose handler exits at once and removes the published file; stdin EOF) or
closes its stdin (a SIGTERM's hand-over).
"""

from __future__ import annotations

import ctypes
import json
import os
import re
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
# A network's journal schema (journal/location.py's `network_schema`): no quoting needed.
SCHEMA = re.compile(r"[a-z0-9_]+")

Kept = dict[str, tuple[int, float]]


def _kept(data: Any) -> Kept:
    return {str(e): (int(t), float(u)) for e, (t, u) in data.items()}


def published(directory: Path) -> dict[str | None, Kept]:
    """What the keeper renewed last, by schema (None: the keeper's own, a
    replica's or the fleet's leases): element -> (token, monotonic time until
    which the parent may write). Empty when there is nothing (yet) or it is
    unreadable."""
    try:
        data = json.loads((directory / FILE).read_text())
        found: dict[str | None, Kept] = {None: _kept(data["held"])}
        for schema, held in data.get("groups", {}).items():
            found[str(schema)] = _kept(held)
        return found
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
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
        self.groups: dict[str, dict[str, int]] = {}  # a fleet's networks' element leases
        self.seen = time.monotonic()
        self.lock = threading.Lock()
        self.done = threading.Event()

    def listen(self) -> None:
        """The parent's lines, until EOF (the parent closed the pipe or died)."""
        for line in sys.stdin:
            try:
                message = json.loads(line)
                tokens = {str(e): int(t) for e, t in message["tokens"].items()}
                groups = {
                    str(schema): {str(e): int(t) for e, t in held.items()}
                    for schema, held in message.get("groups", {}).items()
                    if SCHEMA.fullmatch(str(schema))
                }
                seen = float(message["seen"])
                times = message.get("times")
                if times is not None:
                    lease, margin, stall = (float(x) for x in times)
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            with self.lock:
                self.tokens, self.groups, self.seen = tokens, groups, seen
                self.url = message.get("url", self.url)
                if times is not None:
                    self.lease_seconds, self.margin, self.stall = lease, margin, stall
        self.done.set()

    def run(self) -> None:
        while not self.done.is_set():
            if os.getppid() != self.pid:
                return
            with self.lock:
                tokens, groups, seen, url = dict(self.tokens), self.groups, self.seen, self.url
                lease, margin, stall = self.lease_seconds, self.margin, self.stall
            if time.monotonic() - seen <= stall:
                # One lease time for the whole round: the database's and the published.
                self.renew(tokens, groups, seen, url, (lease, margin))
            self.done.wait(min(1.0, lease / 5))

    def renew(
        self,
        tokens: dict[str, int],
        groups: dict[str, dict[str, int]],
        seen: float,
        url: str | None,
        times: tuple[float, float],
    ) -> None:
        sent = time.monotonic()
        lease, margin = times
        try:
            renewed: set[str] = self.store.call(self._round, tokens, url, lease)
        except LeaseDbError:
            return  # what was published stays good until its own time
        until = sent + lease - margin
        held = {e: (t, until) for e, t in tokens.items() if e in renewed}
        kept: dict[str, dict[str, tuple[int, float]]] = {}
        for schema, group in sorted(groups.items()):
            if not group:
                continue
            try:
                done: set[str] = self.store.call(self._group, schema, group, url, lease)
            except LeaseDbError:
                continue  # that network's published renewals stay good until their time
            kept[schema] = {e: (t, until) for e, t in group.items() if e in done}
        if self.done.is_set():
            return
        tmp = self.directory / f"{FILE}.tmp"
        tmp.write_text(json.dumps({"held": held, "groups": kept, "seen": seen}))
        os.replace(tmp, self.directory / FILE)

    def _round(self, db: Any, tokens: dict[str, int], url: str | None, lease: float) -> set[str]:
        lease_ops.heartbeat(db, self.replica, socket.gethostname(), self.pid, url)
        return lease_ops.renew(db, self.replica, tokens, lease)

    def _group(
        self, db: Any, schema: str, tokens: dict[str, int], url: str | None, lease: float
    ) -> set[str]:
        """A fleet network's element leases, in its schema (for this transaction only)."""
        db.begin()
        try:
            db.execute("SELECT set_config('search_path', ?, true)", (schema,))
            renewed = lease_ops.renew(db, self.replica, tokens, lease)
            if renewed:
                lease_ops.heartbeat(db, self.replica, socket.gethostname(), self.pid, url)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return renewed


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
