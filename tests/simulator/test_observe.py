"""Observe stage: parallel reads, incremental refresh, fallbacks, failures as values."""

from __future__ import annotations

import asyncio
import os
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
from provgit.observe.cache import _header
from provgit.simulator.store import ElementStore
from provgit.wire.protocol import StoredRecord

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
    # The users' sections damaged (the tail of the file): a full load
    # refuses the file, the COS record still reads, the users do not.
    path = tmp_path / "observed" / "cs1.marshal"
    with open(path, "rb") as f:
        head, base = _header(f, "cs1")
    users_at = base + head["collections"]["users"][0]
    data = path.read_bytes()
    path.write_bytes(data[:users_at] + b"\xff" * (len(data) - users_at))
    assert cache.load("cs1") is None
    assert cache.fields_of("cs1", [("cos", "1")]) == {("cos", "1"): records["cos"]["1"]}
    assert cache.fields_of("cs1", [("users", "u7")]) is None


def _users(n: int, start: int = 0) -> dict[str, StoredRecord]:
    return {
        f"u{i}": StoredRecord(
            "users", f"u{i}", {"login_id": f"u{i}", "services": [{"dn": str(i)}]}, 100 + i
        )
        for i in range(start, start + n)
    }


def test_a_few_cached_records_read_alone_equal_what_a_full_load_gives(tmp_path: Path) -> None:
    """A template edit reaches a fraction of the users: those are decoded
    from their own bytes; asked for most of a collection, the whole blob is
    decoded instead. Both give exactly the full load's records, absent keys
    as None, whatever the order asked, in the order asked."""
    import random

    records = {"users": _users(400), "cos": {"1": StoredRecord("cos", "1", {"n": 1}, 3)}}
    cache = ObservationCache(tmp_path)
    cache.save(Observation("cs1", "running", 900, records))
    full = cache.load("cs1")
    assert full is not None and full.records == records and full.revision == 900
    raw = cache.raw("cs1")
    assert raw is not None and raw[0] == 900
    assert raw[1]["users"]["u5"] == ({"login_id": "u5", "services": [{"dn": "5"}]}, 105)
    rng = random.Random(16)
    for share in (1, 24, 26, 199, 201, 400):  # either side of 1/16 and of half
        keys = [*rng.sample(sorted(records["users"]), share), "nobody"]
        got = cache.fields_of("cs1", [("users", k) for k in keys])
        assert got == {("users", k): records["users"].get(k) for k in keys}
        assert got is not None and list(got) == [("users", k) for k in keys]  # as asked


def test_a_cache_file_of_the_previous_format_reads_as_absent_never_misread(
    tmp_path: Path,
) -> None:
    """Format 3 (one marshal dict, each collection a blob) with its stamp, as
    the previous release wrote them: not vouched for, not loaded, no records
    read from it, so the element is read in full; the next save rewrites it."""
    import marshal

    records = {"users": _users(3)}
    old = {
        "format": 3,
        "element": "cs1",
        "state": "running",
        "revision": 7,
        "digest": None,
        "records": {
            "users": marshal.dumps({k: (r.fields, r.revision) for k, r in records["users"].items()})
        },
    }
    observed = tmp_path / "observed"
    observed.mkdir()
    (observed / "cs1.marshal").write_bytes(marshal.dumps(old))
    st = os.stat(observed / "cs1.marshal")
    stamp = (3, 7, (st.st_ino, st.st_size, st.st_mtime_ns), None)
    (observed / "cs1.revision.marshal").write_bytes(marshal.dumps(stamp))
    cache = ObservationCache(tmp_path)
    assert cache.revision("cs1") is None
    assert cache.load("cs1") is None and cache.raw("cs1") is None
    assert cache.fields_of("cs1", [("users", "u1")]) is None
    cache.save(Observation("cs1", "running", 8, records))
    assert cache.revision("cs1") == 8
    assert cache.fields_of("cs1", [("users", "u1")]) == {("users", "u1"): records["users"]["u1"]}


def test_another_elements_cache_file_is_not_read_as_this_ones(tmp_path: Path) -> None:
    cache = ObservationCache(tmp_path)
    cache.save(Observation("cs1", "running", 5, {"users": _users(2)}))
    cache.save(Observation("cs2", "running", 6, {"users": _users(2, start=10)}))
    observed = tmp_path / "observed"
    (observed / "cs2.marshal").write_bytes((observed / "cs1.marshal").read_bytes())
    assert cache.load("cs2") is None and cache.raw("cs2") is None
    assert cache.fields_of("cs2", [("users", "u0")]) is None


def test_equal_strings_of_cached_records_load_as_one_object_and_values_unchanged(
    tmp_path: Path,
) -> None:
    """The watcher keeps every element's observation between runs (#16): a
    department or role that 1,000 users name is held once after a load, not
    1,000 times, and every record still equals what was saved (a string
    inside a list of dicts too). Records read alone (`fields_of`) are equal."""

    def dept() -> str:
        return "".join(["Sales ", "West"])  # a new object each time, as a wire read gives

    records = {
        f"u{i}": StoredRecord(
            "users",
            f"u{i}",
            {"login_id": f"u{i}", "department": dept(), "services": [{"label": dept()}]},
            100 + i,
        )
        for i in range(50)
    }
    first, second = records["u0"].fields, records["u1"].fields
    assert first["department"] is not second["department"]
    saved = Observation("cs1", "running", 9, {"users": dict(records)})
    cache = ObservationCache(tmp_path)
    cache.save(saved)
    loaded = cache.load("cs1")
    assert loaded is not None and loaded.records == {"users": records}
    users = loaded.records["users"]
    names = {id(r.fields["department"]) for r in users.values()}
    labels = {id(r.fields["services"][0]["label"]) for r in users.values()}
    assert len(names | labels) == 1
    assert len({id(r.fields["login_id"]) for r in users.values()}) == 50
    assert cache.fields_of("cs1", [("users", "u7")]) == {("users", "u7"): records["u7"]}
