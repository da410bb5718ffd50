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

from collections.abc import Sequence
from pathlib import Path

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


def store_path(config: DriverConfig) -> Path:
    path = config.settings.get("path")
    if path:
        return Path(str(path))
    return Path(config.state_dir) / "elements" / f"{config.element}.sqlite"


class EmbeddedDriver:
    """A Driver over an ElementStore file. Calls are short and run inline."""

    def __init__(self, config: DriverConfig) -> None:
        self.name = config.element
        self.config = config
        self.path = store_path(config)
        self._store: ElementStore | None = None
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

    async def info(self) -> ElementInfo:
        return self.store.info()

    async def list_records(
        self, collection: str, cursor: str | None = None, limit: int = 1000
    ) -> Page:
        return self.store.list_records(collection, cursor, limit)

    async def changes(self, since: int, limit: int = 10000) -> ChangeFeed:
        return self.store.changes(since, limit)

    async def write(self, op: WriteOp) -> WriteResult:
        return self.store.write(op, fence=self._fence())

    async def write_batch(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        return self.store.write_batch(ops, fence=self._fence())

    def _fence(self) -> tuple[str, int] | None:
        return None if self.fence is None else parse_fence(self.fence)

    async def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
