"""An element whose change feed comes out of revision order (newest first,
and no content digest to tell): read in the order given, the older change
of a record looked like its last, so provgit kept a value the element no
longer holds and said Sync Completed. A feed out of order is not used: the
element is read in full, its true value repaired. Real simulators behind a
hostile element on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import Sim, cli, hostile, write_config

pytestmark = pytest.mark.slow

REORDER = Path(__file__).parent.parent / "support" / "reorder_element.py"


@pytest.fixture
def reordering(sims: list[Sim]) -> Iterator[Sim]:
    """cs1's address as seen through an element whose feed comes newest first."""
    cs1 = sims[0]
    with hostile(REORDER, cs1) as seen:
        yield seen


def _put_behind_provgits_back(sim: Sim, key: str, **changed: Any) -> None:
    """An admin's edit on the element itself: one more revision of the record."""
    url = f"{sim.url}/v1/collections/users/records/{key}"
    with urllib.request.urlopen(url, timeout=10) as answer:
        record = json.loads(answer.read())
    request = urllib.request.Request(
        url,
        data=json.dumps({**record["fields"], **changed}).encode(),
        method="PUT",
        headers={"Content-Type": "application/json", "If-Match": f'"{record["revision"]}"'},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def test_a_feed_out_of_revision_order_never_hides_a_value_behind_sync_completed(
    sims: list[Sim], reordering: Sim, tmp_path: Path
) -> None:
    cs2 = sims[1]
    config = write_config(tmp_path / "config", [reordering, cs2], users=3)
    assert cli("reconcile", str(config)).code == 0  # cs1's copy cached: the feed next
    cs1 = sims[0]
    _put_behind_provgits_back(cs1, "user0")  # the same value again: a change in the feed
    _put_behind_provgits_back(cs1, "user0", first_name="Eve")
    r = cli("reconcile", str(config), "--format", "json")
    by = {e["element"]: e for e in json.loads(r.out)["elements"]}
    held = cs1.records()["users"]["user0"]["first_name"]
    assert held == "Ann", (held, by["cs1"])
    assert by["cs1"]["status"] == "Sync Completed", by["cs1"]
    assert by["cs2"]["status"] == "Sync Completed", by["cs2"]
