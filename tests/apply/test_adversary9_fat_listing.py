"""Adversary 9: an element whose record listing sends few records of many
bytes each (made up, a megabyte apiece): far under MAX_LISTED records, far
over provgit's memory. Bounded by the bytes received (observe/received.py),
per listing and per full read: the element is not read further and not in
sync, with the bound named; the other element is planned and applied. The
bounds are set low in the provgit process (sending gigabytes would take
minutes at load 30), which runs under a memory bound well short of what the
element sends, so the machine is not what gives out. Real simulators behind a
hostile element on 127.0.0.1 (tests/support/fat_element.py)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import Sim, cli, hostile, reported, status_by_element, write_config

pytestmark = pytest.mark.slow

FAT = Path(__file__).parent.parent / "support" / "fat_element.py"
MIB = 2**20
# What the element sends at most: past the memory bound below, so a provgit
# that held it all would fail for memory rather than pass.
SENT_MIB = 2560
MEMORY_BOUND = 1536 * MIB
# provgit's bounds for this run: (per listing, per full read).
BOUNDS = {"listing": (16 * MIB, 1024 * MIB), "read": (1024 * MIB, 16 * MIB)}
SAID = {"listing": "more than 16 MiB listing its ", "read": "more than 16 MiB in one full read"}


def _bounded() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BOUND, MEMORY_BOUND))


@pytest.fixture
def fat(short_feed_sims: list[Sim]) -> Iterator[Sim]:
    """cs1 as seen through an element whose listings send fat made-up records."""
    with hostile(FAT, short_feed_sims[0], str(SENT_MIB)) as seen:
        yield seen


def _reconcile(config: Path, listing: int, read: int) -> subprocess.CompletedProcess[str]:
    """`provgit reconcile` in a process of its own, its byte bounds set first."""
    run = (
        "import provgit.observe.received as r; "
        f"r.MAX_LISTING_BYTES = {listing}; r.MAX_READ_BYTES = {read}; "
        "from provgit.cli import main; main()"
    )
    argv = [sys.executable, "-c", run, "reconcile", str(config), "--format", "json"]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=600, preexec_fn=_bounded, env=os.environ
    )


@pytest.mark.parametrize("bound", ["listing", "read"])
def test_a_listing_of_fat_made_up_records_stops_at_its_byte_bound(
    tmp_path: Path, short_feed_sims: list[Sim], fat: Sim, bound: str
) -> None:
    sims = short_feed_sims
    cs2 = sims[1]
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0
    # A new state directory reads cs1 in full; Bea is due on both elements.
    shutil.rmtree(config / ".provgit")
    write_config(tmp_path / "config", [fat, cs2], users=3, first_name="Bea")
    r = _reconcile(config, *BOUNDS[bound])
    assert "MemoryError" not in r.stderr and "Traceback" not in r.stderr, r.stderr[-3000:]
    by = reported(r.stdout)
    assert by["cs1"]["status"] != "Sync Completed", by["cs1"]
    said = json.dumps(by["cs1"])
    assert SAID[bound] in said and "element cs1" in said, by["cs1"]
    assert by["cs2"]["status"] == "Sync Completed", by["cs2"]
    assert status_by_element(config)["cs1"] != "Sync Completed"
