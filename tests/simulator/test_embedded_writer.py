"""The embedded driver's write batches run on a writer thread: a batch
waiting on the element file (another process holding its write lock, or the
commit's fsync) does not hold the event loop, and so every other element's
batches, the journal and the plan's next batches. What the element promises
stays: one caller at a time on the store, writes in the order sent, and a
batch handed over is written even if its caller gives up."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from provgit.drivers.base import DriverConfig, WriteOp
from provgit.drivers.embedded import EmbeddedDriver
from provgit.simulator.store import ElementStore

COS = WriteOp("put", "cos", "10", {"name": "Staff"}, None)


def _driver(tmp_path: Path) -> EmbeddedDriver:
    return EmbeddedDriver(DriverConfig("cs1", "mivb", {}, state_dir=str(tmp_path)))


def _lock_file(path: Path) -> sqlite3.Connection:
    """Another process's connection holding the element file's write lock."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_a_batch_waiting_on_the_element_file_leaves_the_loop_running(tmp_path: Path) -> None:
    async def scenario() -> None:
        driver = _driver(tmp_path)
        await driver.info()  # the file exists, its schema made
        other = _lock_file(driver.path)
        write = asyncio.create_task(driver.write_batch([COS]))
        ticked = asyncio.Event()
        asyncio.get_running_loop().call_soon(ticked.set)
        await asyncio.wait_for(ticked.wait(), 30)
        # Inline, the batch held the loop until SQLite gave up on the lock
        # (busy_timeout, 10 s) and the loop ticked only after it had failed.
        assert not write.done()
        other.execute("COMMIT")
        other.close()
        results = await asyncio.wait_for(write, 30)
        assert [r.ok for r in results] == [True]
        page = await driver.list_records("cos")
        assert [(r.key, r.fields["name"]) for r in page.records] == [("10", "Staff")]
        await driver.close()
        # Gone with the last driver that wrote: a process with a thread no
        # longer forks its memo writes (incremental.apart).
        assert not [t for t in threading.enumerate() if t.name.startswith("embedded-writer")]

    asyncio.run(scenario())


def test_batches_land_in_the_order_sent_and_a_cancelled_one_is_still_written(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        driver = _driver(tmp_path)
        await driver.info()
        other = _lock_file(driver.path)
        first = asyncio.create_task(driver.write_batch([COS]))
        ticked = asyncio.Event()
        asyncio.get_running_loop().call_soon(ticked.set)
        await asyncio.wait_for(ticked.wait(), 30)
        # Conditional on the create's revision: it lands only after the create.
        update = WriteOp("put", "cos", "10", {"name": "Managers"}, 1)
        second = asyncio.create_task(driver.write_batch([update]))
        first.cancel()  # its caller gives up: a batch handed over is written all the same
        other.execute("COMMIT")
        other.close()
        assert [r.ok for r in await asyncio.wait_for(second, 30)] == [True]
        assert first.cancelled()
        await driver.close()

    asyncio.run(scenario())
    store = ElementStore(tmp_path / "elements" / "cs1.sqlite")
    try:
        record = store.get_record("cos", "10")
        assert (record.fields["name"], record.revision) == ("Managers", 2)
    finally:
        store.close()
