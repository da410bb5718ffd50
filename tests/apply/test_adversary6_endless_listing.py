"""An element whose record listing never ends and never repeats a cursor:
every page is its first page again, each with a next_cursor it never gave
before. A repeated cursor was caught (adversary5); fresh ones paged for ever,
holding the run (its first observation, or the kept-write check past the
feed's reach). A page that brings no record not listed before ends the
listing: the element is not read (or its writes not checked), it is never
Sync Completed, and the other elements are applied. Real simulators behind a
hostile element on 127.0.0.1 (tests/support/blind_element.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .helpers import (
    Blind,
    Sim,
    cli,
    cli_process,
    reported,
    status_by_element,
    write_config,
)

pytestmark = pytest.mark.slow


def test_an_observation_whose_listing_never_ends_does_not_hold_the_run(
    tmp_path: Path, blind: Blind, short_feed_sims: list[Sim]
) -> None:
    # After 8 creates a new state directory cannot read cs1 from its feed and
    # lists its records, without end.
    cs1, cs2 = sims = short_feed_sims
    config = write_config(tmp_path / "config", sims, users=8)
    assert cli("reconcile", str(config)).code == 0
    shutil.rmtree(config / ".provgit")
    write_config(tmp_path / "config", [blind(cs1, "fresh-always"), cs2], users=8)
    r = cli_process("reconcile", str(config), "--format", "json", timeout=120)
    by = reported(r.out)
    assert by["cs1"]["status"] != "Sync Completed", by["cs1"]
    assert by["cs2"]["status"] == "Sync Completed", by["cs2"]
    assert status_by_element(config)["cs1"] != "Sync Completed"


# cursor: the same next_cursor every time (adversary5); fresh: the same first
# page under a cursor never given before (adversary6).
@pytest.mark.parametrize("mode", ["cursor", "fresh"])
def test_a_kept_write_check_whose_listing_never_ends_does_not_hold_the_run(
    tmp_path: Path, blind: Blind, short_feed_sims: list[Sim], mode: str
) -> None:
    # 8 renames push the check past cs1's feed, to a listing of the written
    # collections, which cs1 then pages without end.
    cs1, cs2 = sims = short_feed_sims
    config = write_config(tmp_path / "config", sims, users=8)
    assert cli("reconcile", str(config)).code == 0
    cs1.faults(lie="drop")
    write_config(tmp_path / "config", [blind(cs1, mode), cs2], users=8, first_name="Bea")
    r = cli_process("reconcile", str(config), "--format", "json", timeout=120)
    by = reported(r.out)
    assert "Bea" not in json.dumps(cs1.records()["users"])  # nothing kept
    assert by["cs1"]["status"] != "Sync Completed", by["cs1"]
    assert by["cs2"]["status"] == "Sync Completed", by["cs2"]
    assert status_by_element(config)["cs1"] != "Sync Completed"
