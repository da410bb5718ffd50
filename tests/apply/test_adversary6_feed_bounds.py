"""The kept-write check against an element whose change feed never ends: it
answers its writes as done at a revision far past its own, then pages its
feed one change at a time, "more" for ever, never reaching those revisions.
The check gives up after a bounded number of pages that settle none of the
writes, reads the written collections in full instead, and the element is
Sync Completed only if they hold the writes. Real simulators behind a hostile
element on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from provgit.apply.transport import feed_at
from provgit.drivers.base import DriverConfig, WriteOp
from provgit.drivers.http import HttpDriver
from provgit.observe import observe
from provgit.plan.model import Operation

from .helpers import (
    Blind,
    Sim,
    cli,
    cli_process,
    reported,
    write_config,
)

pytestmark = pytest.mark.slow


def test_writes_answered_past_a_feed_that_never_reaches_them_do_not_hold_the_run(
    sims: list[Sim], blind: Blind, tmp_path: Path
) -> None:
    cs1, cs2 = sims
    config = write_config(tmp_path / "config", sims, users=4)
    assert cli("reconcile", str(config)).code == 0
    cs1.faults(lie="drop")  # answers the writes as done, keeps none
    write_config(tmp_path / "config", [blind(cs1, "huge"), cs2], users=4, first_name="Bea")
    r = cli_process("reconcile", str(config), "--format", "json", timeout=120)
    by = {n: e["status"] for n, e in reported(r.out).items()}
    assert "Bea" not in json.dumps(cs1.records()["users"])
    assert by["cs1"] != "Sync Completed", r.out
    assert by["cs2"] == "Sync Completed", r.out
    status = json.loads(cli("status", str(config), "--format", "json").out)
    assert status["elements"]["cs1"]["status"] != "Sync Completed"


def _feed_past_writes(sim: Sim) -> tuple[object, object]:
    """What feed_at says of a write the element answered at a huge revision."""
    driver = HttpDriver(DriverConfig("cs1", "mivb", {"url": sim.url, "timeout": 5}))

    async def run() -> tuple[object, object]:
        try:
            put = WriteOp("put", "users", "user9", {"first_name": "Ann"}, None)
            (answer,) = await driver.write_batch([put])
            assert answer.ok and answer.revision is not None and answer.revision > 10**12
            # The write as its plan had it: the full read's verdict is on its values.
            op = Operation("add", "users", "user9", "users", "user9", fields={"first_name": "Ann"})
            ops = {("users", "user9"): op}
            seen = await asyncio.wait_for(feed_at(driver, 0, {answer.revision}, ops), 120)
            return seen, answer.revision
        finally:
            await driver.close()

    return asyncio.run(run())


def test_a_feed_that_pages_for_ever_short_of_the_writes_is_given_up_for_a_full_read(
    sims: list[Sim], blind: Blind
) -> None:
    seen, _ = _feed_past_writes(blind(sims[0], "huge"))
    assert seen is not None
    assert seen.now is not None  # read in full, not believed from the feed
    assert seen.now[("users", "user9")] is None  # listed, with the values written


def test_a_write_dropped_behind_an_endless_feed_is_not_held(sims: list[Sim], blind: Blind) -> None:
    sims[0].faults(lie="drop")
    seen, _ = _feed_past_writes(blind(sims[0], "huge"))
    assert seen is not None and seen.now is not None
    assert ("users", "user9") not in seen.now


def test_a_full_read_that_lists_the_same_records_under_ever_new_cursors_ends_in_error(
    sims: list[Sim], blind: Blind
) -> None:
    seen = blind(sims[0], "fresh")
    driver = HttpDriver(DriverConfig("cs1", "mivb", {"url": seen.url, "timeout": 5}))

    async def run() -> str | None:
        try:
            put = WriteOp("put", "users", "user9", {"first_name": "Ann"}, None)
            assert (await driver.write_batch([put]))[0].ok  # from now on: ever new cursors
            found = await asyncio.wait_for(observe({"cs1": driver}), 120)
            return found["cs1"].error
        finally:
            await driver.close()

    error = asyncio.run(run())
    assert error is not None and "cs1" in error
