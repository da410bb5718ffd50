"""A fleet's document served from memory (`fresh: false`, a network's journal
locked) said each network's `in_sync` and each element's status as last
built: a dashboard reading them saw true, however old the document. Now no
status in it is given as known: each is null, its last known value under the
network's `last_known` with when it was built; the page shows them as such,
never green; and /metrics, which reads each element's status from the
journal at every scrape, is answered meanwhile (it waited on the locked
document's build, the fleet's event loop with it)."""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from journal import pg
from provgit.journal.location import network_schema
from provgit.watch.fleet_status import not_fresh
from provgit.watch.metrics import Metrics

from .fleet_helpers import fleet_status, make_fleet, settled
from .replica_helpers import wait_for

SETTLE = 180.0
ANSWER_WITHIN = 30.0
SCRAPED = re.compile(r'provgit_element_in_sync\{network="net-00",element="e00"\} [01]\.0')


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=ANSWER_WITHIN) as r:
        text: str = r.read().decode()
    return text


def _doc() -> dict[str, Any]:
    element = {"name": "cs1", "holder": "r1", "status": "Sync Completed"}
    net = {"name": "net-00", "holder": "r1", "here": True, "state": "running", "error": None}
    net |= {"status": "Sync Completed", "in_sync": True, "elements": [element]}
    return {
        "fresh": True,
        "generated": "2026-12-07T03:00:00Z",
        "networks": [{**net, "document": {"in_sync": True}}],
    }


def test_a_document_not_fresh_gives_no_status_as_known_and_keeps_the_last() -> None:
    fresh = _doc()
    stale = not_fresh(fresh)
    assert fresh == _doc()  # not changed
    (net,) = stale["networks"]
    assert stale["fresh"] is False
    assert net["in_sync"] is None and net["status"] is None and net["document"] is None
    assert [e["status"] for e in net["elements"]] == [None]
    assert net["last_known"] == {
        "as_of": "2026-12-07T03:00:00Z",
        "status": "Sync Completed",
        "in_sync": True,
        "elements": {"cs1": "Sync Completed"},
        "document": {"in_sync": True},
    }


def test_metrics_give_no_element_in_sync_while_the_journal_cannot_be_read() -> None:
    metrics = Metrics()
    readable = True

    def rows() -> Mapping[str, Mapping[str, Any]]:
        if not readable:
            raise sqlite3.OperationalError("database is locked")
        return {"cs1": {"status": "Sync Completed"}}

    metrics.statuses_source = rows
    assert 'provgit_element_in_sync{element="cs1"} 1.0' in metrics.exposition()[0].decode()
    readable = False  # not 1 as last read, however long ago
    assert 'provgit_element_in_sync{element="cs1"} NaN' in metrics.exposition()[0].decode()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_fleet_document_while_a_networks_journal_is_locked_vouches_for_no_status(
    tmp_path: Path, pg_server: pg.Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    database = pg_server.new_database()
    rig = make_fleet(tmp_path, 1, database, pg.PASSWORD, 20.0)
    w = rig.start()
    try:
        wait_for("the network in sync", lambda: settled([fleet_status(w)], rig.names()), SETTLE)
        # Waited for, as adversary8 does: a run the watcher starts on its own
        # after the first reads the journal, and would wait for the lock below.
        wait_for("the page green", lambda: 'class="ok">Sync Completed<' in _get(w.url), SETTLE)
        assert SCRAPED.search(_get(w.url + "/metrics"))
        schema = network_schema(rig.nets[0].name)
        with psycopg.connect(pg_server.url(database), autocommit=False) as conn:
            # Every build of the document waits until this block ends.
            conn.execute(f"LOCK TABLE {schema}.suspensions IN ACCESS EXCLUSIVE MODE")
            doc = json.loads(_get(w.url + "/status.json"))
            metrics = _get(w.url + "/metrics")
            page = _get(w.url + "/")
            conn.rollback()
        assert doc["fresh"] is False, doc
        (net,) = doc["networks"]
        assert net["in_sync"] is None and net["status"] is None, net
        assert net["document"] is None and all(e["status"] is None for e in net["elements"])
        last = net["last_known"]
        assert last["as_of"] == doc["generated"] and last["in_sync"] is True, last
        assert set(last["elements"].values()) == {"Sync Completed"}, last
        # Read from the journal for this scrape (its statuses are not locked).
        assert SCRAPED.search(metrics), metrics
        assert 'class="ok"' not in page and "Not fresh" in page
        assert "Sync Completed (last known)" in page
        assert re.search(r"as of \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", page), page
        # Built again once the journal answers: known again.
        known = lambda: settled([fleet_status(w)], rig.names())  # noqa: E731
        wait_for("the network in sync again", known, SETTLE)
        assert "last_known" not in fleet_status(w)["networks"][0]
    finally:
        assert w.stop() == 0
