"""Stopping in the middle of an apply without losing or half-doing a write.

Each element driver is wrapped: once the watcher is told to stop, the writes
already sent finish and their outcomes are journaled by the apply stage as
usual, while a write not yet sent waits forever (it is never sent). The loop
then cancels the run; the never-sent writes are intents without outcomes,
which the next run settles by observing the element again (see `apply`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence

from provgit.api.watching import Journal
from provgit.watch.logs import Log
from provgit.wire.protocol import Driver, ForwardingDriver, WriteOp, WriteResult


def mark_interrupted(journal: Journal, log: Log) -> None:
    """This process's watch runs left unfinished (stopped by a signal) marked so."""
    for r in journal.runs(3):
        if r["finished"] is None and r["pid"] == os.getpid() and r["command"] == "watch":
            journal.finish_run(r["id"], "interrupted", {"reason": "stopped by a signal"})
            journal.add_event(
                "interrupted",
                f"run {r['id']} stopped by a signal; writes in flight were finished, "
                "the rest is planned again by the next run",
                run_id=r["id"],
            )
            log.info("run_interrupted", run_id=r["id"])


class Gate:
    """Shared by every wrapped driver of a run: open, or closed for good."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def close(self) -> None:
        self.closed.set()

    def enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def drained(self) -> None:
        """Returns once no write is on the wire."""
        await self._idle.wait()

    async def hold(self) -> None:
        if self.closed.is_set():
            await asyncio.Event().wait()  # never sent; the run is cancelled meanwhile


class GatedDriver(ForwardingDriver):
    """A driver whose writes stop at the gate once it is closed."""

    def __init__(self, inner: Driver, gate: Gate) -> None:
        super().__init__(inner)
        self.gate = gate

    async def write(self, op: WriteOp) -> WriteResult:
        await self.gate.hold()
        self.gate.enter()
        try:
            return await self.inner.write(op)
        finally:
            self.gate.leave()

    async def write_batch(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        await self.gate.hold()
        self.gate.enter()
        try:
            return await self.inner.write_batch(ops)
        finally:
            self.gate.leave()
