"""Observe stage: parallel reads, incremental refresh, fallbacks, failures as values."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from provgit.drivers.base import (
    ChangeFeed,
    Driver,
    DriverConfig,
    ElementInfo,
    Page,
    WriteOp,
    WriteResult,
)
from provgit.drivers.embedded import EmbeddedDriver
from provgit.drivers.http import HttpDriver
from provgit.observe import Observation, ObservationCache, observe
from provgit.simulator.store import ElementStore

from .conftest import TOKEN, Simulator, free_port_closed


class Counting:
    """A real driver, counting its calls and, in `flight`, the calls in flight at once
    (shared between drivers to see reads of several elements overlap)."""

    def __init__(self, inner: Driver, pause: float = 0.0, flight: dict[str, int] | None = None):
        self.inner, self.name, self.pause = inner, inner.name, pause
        self.calls: dict[str, int] = {}
        self.flight = flight if flight is not None else {"now": 0, "peak": 0}

    async def _count(self, what: str) -> None:
        self.calls[what] = self.calls.get(what, 0) + 1
        self.flight["now"] += 1
        self.flight["peak"] = max(self.flight["peak"], self.flight["now"])
        await asyncio.sleep(self.pause)
        self.flight["now"] -= 1

    async def info(self) -> ElementInfo:
        await self._count("info")
        return await self.inner.info()

    async def list_records(
        self, collection: str, cursor: str | None = None, limit: int = 1000
    ) -> Page:
        await self._count("list_records")
        return await self.inner.list_records(collection, cursor, limit)

    async def changes(self, since: int, limit: int = 10000) -> ChangeFeed:
        await self._count("changes")
        return await self.inner.changes(since, limit)

    async def write(self, op: WriteOp) -> WriteResult:
        return await self.inner.write(op)

    async def write_batch(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        return await self.inner.write_batch(ops)

    async def close(self) -> None:
        await self.inner.close()


def embedded(tmp: Path, name: str, element_type: str = "mivb", **settings: Any) -> EmbeddedDriver:
    return EmbeddedDriver(DriverConfig(name, element_type, dict(settings), state_dir=str(tmp)))


def seed(tmp: Path, name: str, n: int, element_type: str = "mivb", retention: int = 1000) -> None:
    store = ElementStore(
        tmp / "elements" / f"{name}.sqlite",
        name=name,
        element_type=element_type,
        retention=retention,
    )
    collection = "locations" if element_type == "mivb" else "prompts"
    store.write_batch([WriteOp("put", collection, f"k{i:04d}", {"i": i}) for i in range(n)])
    store.close()


def test_observe_reads_all_elements_in_parallel(tmp_path: Path) -> None:
    seed(tmp_path, "cs1", 30)
    seed(tmp_path, "ivr1", 12, "ivr")
    flight = {"now": 0, "peak": 0}

    async def main() -> dict[str, Observation]:
        drivers: dict[str, Driver] = {
            name: Counting(embedded(tmp_path, name, kind), pause=0.05, flight=flight)
            for name, kind in (("cs1", "mivb"), ("cs2", "mivb"), ("ivr1", "ivr"))
        }
        return await observe(drivers)

    got = asyncio.run(main())
    assert flight["peak"] == 3  # all three elements were being read at the same time
    assert len(got["cs1"].records["locations"]) == 30
    assert got["cs1"].records["cos"] == {}
    assert set(got["ivr1"].records) == {"media_servers", "prompts", "subroutines", "workflows"}
    assert len(got["ivr1"].records["prompts"]) == 12
    assert got["cs2"].revision == 0 and got["cs2"].state == "running"
    assert not any(o.incremental for o in got.values())


def test_refresh_reads_only_the_change_feed(tmp_path: Path) -> None:
    seed(tmp_path, "cs1", 20)

    async def main() -> tuple[Observation, Counting]:
        d = embedded(tmp_path, "cs1")
        first = (await observe({"cs1": d}))["cs1"]
        assert first.revision is not None
        await d.write(WriteOp("put", "locations", "new", {"i": -1}))
        old = first.records["locations"]["k0003"]
        await d.write(WriteOp("put", "locations", "k0003", {"i": 33}, old.revision))
        await d.write(
            WriteOp(
                "delete", "locations", "k0004", None, first.records["locations"]["k0004"].revision
            )
        )
        counting = Counting(d)
        second = (await observe({"cs1": counting}, {"cs1": first}))["cs1"]
        await d.close()
        return second, counting

    second, counting = asyncio.run(main())
    assert second.incremental
    assert counting.calls.get("list_records", 0) == 0 and counting.calls["changes"] == 1
    locs = second.records["locations"]
    assert locs["new"].fields["i"] == -1 and locs["k0003"].fields["i"] == 33
    assert "k0004" not in locs and len(locs) == 20
    assert second.revision == 23


def test_refresh_falls_back_to_full_read_when_feed_is_too_old(tmp_path: Path) -> None:
    seed(tmp_path, "cs1", 5, retention=3)

    async def main() -> Observation:
        d = embedded(tmp_path, "cs1", retention=3)
        first = (await observe({"cs1": d}))["cs1"]
        await d.write_batch([WriteOp("put", "locations", f"m{i}", {}) for i in range(6)])
        second = (await observe({"cs1": d}, {"cs1": first}))["cs1"]
        await d.close()
        return second

    second = asyncio.run(main())
    assert not second.incremental and second.state == "running"
    assert len(second.records["locations"]) == 11


def test_unreachable_offline_and_unauthorized_elements_become_observations(
    tmp_path: Path, simulator: Simulator
) -> None:
    seed(tmp_path, "down", 1)
    store = ElementStore(tmp_path / "elements" / "down.sqlite")
    store.set_state("offline")
    store.close()

    async def main() -> dict[str, Observation]:
        def http(url: str, token: str | None) -> HttpDriver:
            settings = {"url": url, "token": token, "timeout": 2, "retries": 0}
            return HttpDriver(DriverConfig("x", "mivb", settings))

        drivers: dict[str, Driver] = {
            "down": embedded(tmp_path, "down"),
            "gone": http(f"http://127.0.0.1:{free_port_closed()}", TOKEN),
            "badtoken": http(simulator.url, "wrong"),
            "sim": http(simulator.url, TOKEN),
        }
        try:
            return await observe(drivers, collections={"mivb": ["cos"]})
        finally:
            for d in drivers.values():
                await d.close()

    got = asyncio.run(main())
    assert got["down"].state == "offline" and got["down"].revision is None
    assert got["gone"].state == "offline" and "cannot connect" in (got["gone"].error or "")
    assert got["badtoken"].state == "unauthorized" and got["badtoken"].error
    assert got["sim"].state == "running" and set(got["sim"].records) == {"cos"}


@pytest.mark.slow
def test_incremental_refresh_over_http_sees_out_of_band_edits(simulator: Simulator) -> None:
    async def main() -> tuple[Observation, Observation]:
        d = HttpDriver(DriverConfig("cs1", "mivb", {"url": simulator.url, "token": TOKEN}))
        try:
            await d.write(WriteOp("put", "cos", "4", {"comment": "a"}))
            first = (await observe({"cs1": d}))["cs1"]
            simulator.admin(
                "/admin/edit",
                {"op": "put", "collection": "cos", "key": "4", "fields": {"comment": "drift"}},
            )
            second = (await observe({"cs1": d}, {"cs1": first}))["cs1"]
            return first, second
        finally:
            await d.close()

    first, second = asyncio.run(main())
    assert first.records["cos"]["4"].fields["comment"] == "a"
    assert second.incremental and second.records["cos"]["4"].fields["comment"] == "drift"


def test_observation_cache_round_trips_and_writes_atomically(tmp_path: Path) -> None:
    seed(tmp_path, "cs/1", 3)
    cache = ObservationCache(tmp_path)
    assert cache.load("cs/1") is None

    async def main() -> Observation:
        d = embedded(tmp_path, "cs/1")
        try:
            return (await observe({"cs/1": d}))["cs/1"]
        finally:
            await d.close()

    obs = asyncio.run(main())
    cache.save(obs)
    cache.save(Observation("cs/1", "offline", None, error="down"))  # keeps the last good one
    assert cache.load("cs/1") == obs
    assert cache.load_all(["cs/1", "other"]) == {"cs/1": obs}
    # Beside it, the failed reading (status shows the element down, not the old reading).
    assert sorted(p.name for p in (tmp_path / "observed").iterdir()) == [
        "cs_1.down.marshal",
        "cs_1.fullread.marshal",
        "cs_1.marshal",
        "cs_1.revision.marshal",
    ]
    down = cache.down("cs/1")
    assert down is not None and down[:2] == ("offline", "down")
    cache.save(obs)  # read again: no longer down
    assert cache.down("cs/1") is None
    (tmp_path / "observed" / "cs_1.marshal").write_bytes(b"garbage")
    assert cache.load("cs/1") is None


def test_cache_revision_is_vouched_for_only_while_the_file_is_the_one_stamped(
    tmp_path: Path,
) -> None:
    seed(tmp_path, "cs1", 3)
    cache = ObservationCache(tmp_path)
    assert cache.revision("cs1") is None

    async def read() -> Observation:
        d = embedded(tmp_path, "cs1")
        try:
            return (await observe({"cs1": d}))["cs1"]
        finally:
            await d.close()

    obs = asyncio.run(read())
    cache.save(obs)
    assert obs.revision is not None and cache.revision("cs1") == obs.revision
    # provgit's own writes recorded beside it: the file alone is not the element.
    cache.record_writes("cs1", [("locations", "k0001", {"i": 9}, obs.revision + 1)])
    assert cache.revision("cs1") is None
    cache.save(asyncio.run(read()))
    assert cache.revision("cs1") == obs.revision
    # A file replaced without its stamp (a crash between the two writes).
    stamp = (tmp_path / "observed" / "cs1.revision.marshal").read_bytes()
    store = ElementStore(tmp_path / "elements" / "cs1.sqlite")
    store.write(WriteOp("put", "locations", "another", {"i": 1000}))
    store.close()
    newer = asyncio.run(read())
    cache.save(newer, obs)
    assert newer.revision is not None and cache.revision("cs1") == newer.revision
    (tmp_path / "observed" / "cs1.revision.marshal").write_bytes(stamp)
    assert cache.revision("cs1") is None
    obs = newer
    # A cache from before stamps gets one when a reading finds it current.
    (tmp_path / "observed" / "cs1.revision.marshal").unlink()
    assert cache.revision("cs1") is None
    cache.save(asyncio.run(read()), cache.load("cs1"))
    assert cache.revision("cs1") == obs.revision


def test_cached_records_of_one_collection_are_read_without_the_others(tmp_path: Path) -> None:
    """A plan after a COS or role edit asks the cache for a few records of
    one collection: it gets what a full load gives of them, and the other
    collections (100,000 users) are not decoded, so a damaged one does not
    stand in its way while a full load refuses the file."""
    import marshal

    from provgit.wire.protocol import StoredRecord

    records = {
        "cos": {"1": StoredRecord("cos", "1", {"number": 1, "comment": "Open"}, 3)},
        "users": {
            f"u{i}": StoredRecord("users", f"u{i}", {"login_id": f"u{i}"}, 10 + i)
            for i in range(50)
        },
    }
    cache = ObservationCache(tmp_path)
    cache.save(Observation("cs1", "running", 60, records))
    loaded = cache.load("cs1")
    assert loaded is not None and loaded.records == records
    asked = [("cos", "1"), ("cos", "2"), ("users", "u7"), ("roles", "r")]
    assert cache.fields_of("cs1", asked) == {
        ("cos", "1"): records["cos"]["1"],
        ("cos", "2"): None,
        ("users", "u7"): records["users"]["u7"],
        ("roles", "r"): None,
    }
    path = tmp_path / "observed" / "cs1.marshal"
    doc = marshal.loads(path.read_bytes())
    path.write_bytes(marshal.dumps({**doc, "records": {**doc["records"], "users": b"\xff"}}))
    assert cache.load("cs1") is None
    assert cache.fields_of("cs1", [("cos", "1")]) == {("cos", "1"): records["cos"]["1"]}
    assert cache.fields_of("cs1", [("users", "u7")]) is None
