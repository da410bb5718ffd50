"""An element that answers one read with more than provgit will hold (a
change feed that floods) is cut off at MAX_ANSWER_BYTES and reported, never
read into memory to the end: its status is not Sync Completed and the other
elements go on. Real simulator processes behind a hostile one on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provgit.drivers.http import MAX_ANSWER_BYTES

from .helpers import Sim, cli, hostile, write_config

pytestmark = pytest.mark.slow

FLOOD = Path(__file__).parent.parent / "support" / "flood_element.py"


@pytest.fixture
def flooding(sims: list[Sim]) -> Iterator[Sim]:
    """cs1's address as seen through an element whose feed floods."""
    cs1 = sims[0]
    mib = MAX_ANSWER_BYTES // 2**20 + 64  # past the cap, finite either way
    with hostile(FLOOD, cs1, str(mib)) as seen:
        yield seen


def test_a_flooding_change_feed_is_cut_off_and_never_sync_completed(
    sims: list[Sim], flooding: Sim, tmp_path: Path
) -> None:
    cs2 = sims[1]
    config = write_config(tmp_path / "config", sims, users=3)
    assert cli("reconcile", str(config)).code == 0  # straight to cs1: cached, feed next
    write_config(tmp_path / "config", [flooding, cs2], users=3, first_name="Bea")
    r = cli("reconcile", str(config), "--format", "json")
    by = {e["element"]: e for e in json.loads(r.out)["elements"]}
    assert by["cs1"]["status"] != "Sync Completed", by["cs1"]
    assert f"more than {MAX_ANSWER_BYTES // 2**20} MiB" in json.dumps(by["cs1"]), by["cs1"]
    assert by["cs2"]["status"] == "Sync Completed", by["cs2"]
    status = json.loads(cli("status", str(config), "--format", "json").out)
    assert status["elements"]["cs1"]["status"] != "Sync Completed"
