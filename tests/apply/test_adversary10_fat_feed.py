"""Adversary 10: an element whose change feed, read since the last run's
revision, sends few changes of many bytes each (made up, a megabyte apiece),
page after page, "more" always due: far under the pages provgit follows a
feed for (MAX_FEED_PAGES), far over its memory. Bounded by the bytes
received, as a full read is (observe/received.py): the element is not read
further and not in sync, with the bound named; the other element is planned
and applied. The bound is set low in the provgit process (sending gigabytes
would take minutes at load 30), which runs under a memory bound well short
of what the element sends, so the machine is not what gives out. Real
simulators behind a hostile element on 127.0.0.1
(tests/support/fat_feed_element.py)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import Sim, cli, hostile, reported, status_by_element, write_config

pytestmark = pytest.mark.slow

FAT = Path(__file__).parent.parent / "support" / "fat_feed_element.py"
MIB = 2**20
# What the element sends at most: past the memory bound below, so a provgit
# that held it all would fail for memory rather than pass.
SENT_MIB = 2560
MEMORY_BOUND = 1536 * MIB
FEED_BOUND = 16 * MIB


def _bounded() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BOUND, MEMORY_BOUND))


@pytest.fixture
def fat(sims: list[Sim]) -> Iterator[Sim]:
    """cs1 as seen through an element whose change feed, once armed, is fat."""
    with hostile(FAT, sims[0], str(SENT_MIB)) as seen:
        yield seen


def _reconcile(config: Path) -> subprocess.CompletedProcess[str]:
    """`provgit reconcile` in a process of its own, its feed bound set first."""
    run = (
        f"import provgit.observe.received as r; r.MAX_FEED_BYTES = {FEED_BOUND}; "
        "from provgit.cli import main; main()"
    )
    argv = [sys.executable, "-c", run, "reconcile", str(config), "--format", "json"]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=600, preexec_fn=_bounded, env=os.environ
    )


def test_a_change_feed_of_fat_made_up_changes_stops_at_its_byte_bound(
    tmp_path: Path, sims: list[Sim], fat: Sim
) -> None:
    cs1, cs2 = sims
    config = write_config(tmp_path / "config", [fat, cs2], users=3)
    assert cli("reconcile", str(config)).code == 0
    fat.admin("/hostile/arm")
    # cs1's own admin renames a user: its revision moves, so the next run
    # reads its change feed since the last; Bea is due on both elements.
    key, fields = sorted(cs1.records()["users"].items())[0]
    edited = {k: v for k, v in fields.items() if not k.startswith("_") or k == "_managed_by"}
    cs1.admin("/admin/edit", {"op": "put", "collection": "users", "key": key,
                              "fields": {**edited, "first_name": "Mallory"}})  # fmt: skip
    write_config(tmp_path / "config", [fat, cs2], users=3, first_name="Bea")
    r = _reconcile(config)
    assert "MemoryError" not in r.stderr and "Traceback" not in r.stderr, r.stderr[-3000:]
    by = reported(r.stdout)
    assert by["cs1"]["status"] != "Sync Completed", by["cs1"]
    said = json.dumps(by["cs1"])
    assert "more than 16 MiB in its change feed" in said and "element cs1" in said, by["cs1"]
    assert by["cs2"]["status"] == "Sync Completed", by["cs2"]
    assert status_by_element(config)["cs1"] != "Sync Completed"
    assert {u["first_name"] for u in cs2.records()["users"].values()} >= {"Bea"}
