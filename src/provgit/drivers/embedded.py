"""The `embedded` driver: the element kept in a local SQLite file.

The default driver, so a sample config runs on a fresh machine with nothing
else. It answers from `provgit.simulator.ElementStore` in-process: the same
store (and so the same semantics) the simulator serves over HTTP.

Settings:
  path       (optional) the store file; default `<state_dir>/elements/<element>.sqlite`,
             created on first use with the element's type
  retention  (optional) changes kept for the feed (default 10,000)
  call_load  (optional) the call load the element reports: a percent (85) or
             seconds:percent steps ('0:10,60:85'), counted from when the
             profile was first given (kept in the store file)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from provgit.drivers.base import DriverConfig
from provgit.simulator.store import ElementStore
from provgit.wire.protocol import (
    ChangeFeed,
    ElementInfo,
    Page,
    WriteOp,
    WriteResult,
    parse_fence,
)

T = TypeVar("T")


def store_path(config: DriverConfig) -> Path:
    path = config.settings.get("path")
    if path:
        return Path(str(path))
    return Path(config.state_dir) / "elements" / f"{config.element}.sqlite"


class EmbeddedDriver:
    """A Driver over an ElementStore file. Reads are short and run inline;
    write batches run on a thread of the driver's own, one at a time and in
    the order sent, so SQLite's work (its statements and the commit's fsync,
    which let go of the GIL) overlaps the event loop's (the other elements'
    batches, the journal, the plan's next batches) instead of holding it.
    A lock keeps the store to one caller at a time (`ElementStore` is not
    thread-safe): a read meeting a write in progress waits for it."""

    def __init__(self, config: DriverConfig) -> None:
        self.name = config.element
        self.config = config
        self.path = store_path(config)
        self._store: ElementStore | None = None
        self._lock = threading.Lock()
        self._writer: ThreadPoolExecutor | None = None
        # `<element>/<token>` while a provgit replica holds the element's lease.
        self.fence: str | None = None

    @property
    def store(self) -> ElementStore:
        # Opened lazily: constructing a driver must not touch the disk.
        if self._store is None:
            retention = int(self.config.settings.get("retention", 10_000))
            self._store = ElementStore(
                self.path,
                name=self.config.element,
                element_type=self.config.element_type,
                retention=retention,
            )
            profile = self.config.settings.get("call_load")
            if profile is not None:
                # Set once: a step profile keeps counting from when it was first given.
                self._store.set_call_load(str(profile), keep=True)
        return self._store

    def _locked(self, call: Callable[[ElementStore], T]) -> T:
        with self._lock:
            return call(self.store)

    async def info(self) -> ElementInfo:
        return self._locked(lambda s: s.info())

    async def list_records(
        self, collection: str, cursor: str | None = None, limit: int = 1000
    ) -> Page:
        return self._locked(lambda s: s.list_records(collection, cursor, limit))

    async def changes(self, since: int, limit: int = 10000) -> ChangeFeed:
        return self._locked(lambda s: s.changes(since, limit))

    async def write(self, op: WriteOp) -> WriteResult:
        fence = self._fence()
        return await self._written(lambda s: s.write(op, fence=fence))

    async def write_batch(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        fence = self._fence()
        return await self._written(lambda s: s.write_batch(ops, fence=fence))

    async def _written(self, call: Callable[[ElementStore], T]) -> T:
        """`call` on the writer thread. The store is opened here first (its
        file created, its schema made) so a failure to open is the caller's;
        not under the lock once open, or a batch would wait on the one before."""
        if self._store is None:
            with self._lock:
                _ = self.store
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix=f"element-{self.name}")
        loop = asyncio.get_running_loop()
        # Shielded: a batch handed over is written even if its caller gives up
        # (as inline, where a call once begun always ended), never half sent.
        return await asyncio.shield(loop.run_in_executor(self._writer, self._locked, call))

    def _fence(self) -> tuple[str, int] | None:
        return None if self.fence is None else parse_fence(self.fence)

    async def close(self) -> None:
        if self._writer is not None:
            # A batch still on its thread (its caller cancelled) ends first.
            self._writer.shutdown(wait=True)
            self._writer = None
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
