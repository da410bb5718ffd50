"""An element whose change feed pages below the limit provgit asks for (the
element API allows it: `more` says the rest is due) must be read to its end.
Reading one short page as all of it left what changed past it unseen: the
plan came from a stale copy, its writes failed as conflicts (distribution
errors an admin had to retry) and the drifted records stayed as they were.
Real simulator processes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provgit import exitcodes

from .helpers import Sim, cli, start_sims, write_config

pytestmark = pytest.mark.slow


@pytest.fixture
def paged(tmp_path: Path) -> Iterator[list[Sim]]:
    """cs1 answers at most two changes per feed read; cs2 as usual."""
    (cs1,) = start_sims(tmp_path / "a", [("cs1", "mivb")], "--feed-page", "2")
    (cs2,) = start_sims(tmp_path / "b", [("cs2", "mivb")])
    try:
        yield [cs1, cs2]
    finally:
        cs1.stop()
        cs2.stop()


def test_every_change_past_a_short_feed_page_is_seen_and_corrected(
    paged: list[Sim], tmp_path: Path
) -> None:
    cs1, _ = paged
    config = write_config(tmp_path / "config", paged, users=5)
    assert cli("reconcile", str(config)).code == 0
    users = cs1.records()["users"]
    for key, fields in users.items():  # the element's own admin renames all five
        edited = {k: v for k, v in fields.items() if not k.startswith("_") or k == "_managed_by"}
        cs1.admin("/admin/edit", {"op": "put", "collection": "users", "key": key,
                                  "fields": {**edited, "first_name": "Mallory"}})  # fmt: skip
    r = cli("reconcile", str(config), "--format", "json")
    assert r.code == exitcodes.OK, r.out
    held = {u["first_name"] for u in cs1.records()["users"].values()}
    assert held == {"Ann"}, held
    status = json.loads(cli("status", str(config), "--format", "json").out)
    assert status["in_sync"] is True
    assert status["elements"]["cs1"]["status"] == "Sync Completed"
