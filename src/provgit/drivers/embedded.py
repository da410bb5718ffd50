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
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, TypeVar

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


class _Writer:
    """The one thread every open embedded element's batches are written on,
    in the order sent: SQLite's part of a write (its statements, the commit's
    fsync) lets go of the GIL and overlaps the event loop; one thread, not one
    per element, because the Python part needs the GIL, and more threads
    handing it around cost CPU on two cores. Shut down when the last driver
    using it closes: a process with a thread no longer forks (incremental.apart)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._users = 0

    def take(self) -> ThreadPoolExecutor:
        with self._guard:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="embedded-writer")
            self._users += 1
            return self._pool

    def leave(self) -> None:
        with self._guard:
            self._users -= 1
            pool = self._pool if self._users == 0 else None
            if pool is not None:
                self._pool = None
        if pool is not None:
            pool.shutdown(wait=True)


_WRITER = _Writer()


def store_path(config: DriverConfig) -> Path:
    path = config.settings.get("path")
    if path:
        return Path(str(path))
    return Path(config.state_dir) / "elements" / f"{config.element}.sqlite"


class EmbeddedDriver:
    """A Driver over an ElementStore file. Reads are short and run inline;
    write batches run on the embedded elements' writer thread (`_Writer`),
    one at a time and in the order sent, so SQLite's work (its statements and
    the commit's fsync, which let go of the GIL) overlaps the event loop's
    (the other elements' batches, the journal, the plan's next batches)
    instead of holding it. A lock keeps the store to one caller at a time
    (`ElementStore` is not thread-safe): a read meeting a write waits for it."""

    def __init__(self, config: DriverConfig) -> None:
        self.name = config.element
        self.config = config
        self.path = store_path(config)
        self._store: ElementStore | None = None
        self._lock = threading.Lock()
        self._writer: ThreadPoolExecutor | None = None
        self._last: Future[Any] | None = None  # this element's last batch sent
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
            self._writer = _WRITER.take()
        done = self._writer.submit(self._locked, call)
        self._last = done
        # Shielded: a batch handed over is written even if its caller gives up
        # (as inline, where a call once begun always ended), never half sent.
        return await asyncio.shield(asyncio.wrap_future(done))

    def _fence(self) -> tuple[str, int] | None:
        return None if self.fence is None else parse_fence(self.fence)

    async def close(self) -> None:
        if self._writer is not None:
            # A batch still on the thread (its caller cancelled) ends first.
            if self._last is not None:
                wait([self._last])
            self._writer, self._last = None, None
            _WRITER.leave()
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
