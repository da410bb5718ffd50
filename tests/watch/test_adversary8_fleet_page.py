"""adversary8: a fleet's page while its documents cannot be built. A request
is answered with the last document built (`fresh: false`) when no newer one
is ready within a few seconds (fleet_status.py), for as long as a network's
journal stays locked. The JSON says so; the HTML page said nothing: each
network's last status stayed a green 'Sync Completed' with no time, however
old, while whatever it says may have changed since."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from journal import pg
from provgit.journal.location import network_schema
from provgit.render.fleet_page import render_fleet_html

from .fleet_helpers import fleet_status, make_fleet, settled
from .replica_helpers import wait_for

SETTLE = 180.0
ANSWER_WITHIN = 30.0


def _doc(fresh: bool) -> dict[str, object]:
    net = {"name": "net-00", "holder": "r1", "state": "running", "status": "Sync Completed"}
    return {
        "fresh": fresh,
        "generated": "2026-12-07T03:00:00Z",
        "replica": {"id": "r1", "holds": ["net-00"], "replicas": ["r1"]},
        "networks": [{**net, "error": None, "elements": []}],
    }


def test_a_fleet_page_served_from_memory_says_when_it_was_built_and_shows_no_green_sync() -> None:
    stale = render_fleet_html(_doc(False), 10)
    assert 'class="ok"' not in stale
    assert "Not fresh" in stale and "2026-12-07T03:00:00Z" in stale
    fresh = render_fleet_html(_doc(True), 10)
    assert 'class="ok">Sync Completed<' in fresh and "Not fresh" not in fresh


def _page(url: str) -> str:
    with urllib.request.urlopen(url + "/", timeout=ANSWER_WITHIN) as r:
        page: str = r.read().decode()
    return page


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_fleet_page_while_a_networks_journal_is_locked_is_not_a_green_sync(
    tmp_path: Path, pg_server: pg.Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    database = pg_server.new_database()
    rig = make_fleet(tmp_path, 1, database, pg.PASSWORD, 20.0)
    w = rig.start()
    try:
        wait_for("the network in sync", lambda: settled([fleet_status(w)], rig.names()), SETTLE)
        # Waited for, not read once: a run the watcher starts on its own after
        # the first (its settle read) says "Synching" on the page while it lasts.
        wait_for("the page green", lambda: 'class="ok">Sync Completed<' in _page(w.url), SETTLE)
        schema = network_schema(rig.nets[0].name)
        with psycopg.connect(pg_server.url(database), autocommit=False) as conn:
            # Every build of the document waits until this block ends.
            conn.execute(f"LOCK TABLE {schema}.suspensions IN ACCESS EXCLUSIVE MODE")
            page = _page(w.url)
            conn.rollback()
        assert 'class="ok"' not in page, page
        assert "Not fresh" in page
        assert re.search(r"as of \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", page), page
    finally:
        assert w.stop() == 0
