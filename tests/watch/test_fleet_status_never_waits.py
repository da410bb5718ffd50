"""A fleet replica answers /status.json from memory while a network's journal
cannot be read (issue #19: 20 clients polling a fleet saw 151 requests go
unanswered for 120 s). Each request asks for a document built after it
arrived and waits for it a bounded time (fleet_status.py FRESH_WAIT); a
build held up (here: another session holding an ACCESS EXCLUSIVE lock on a
table of a network's journal that the derivation reads) does not hold the
request: it gets the last document built, marked `fresh:
false` with the time it was built, and once the journal answers again a
request gets a fresh one. Real `provgit fleet watch` on real PostgreSQL.
"""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from journal import pg
from provgit.journal.location import network_schema

from .fleet_helpers import fleet_status, make_fleet, settled
from .helpers import Watch
from .replica_helpers import wait_for

SETTLE = 180.0
# Well above the replica's own wait for a fresh build, far below what a
# client of the page waits (the soak's 120 s): the bound a request is held to.
ANSWER_WITHIN = 30.0
CLIENTS = 8


def _ask(w: Watch) -> dict[str, Any]:
    with urllib.request.urlopen(w.url + "/status.json", timeout=ANSWER_WITHIN) as r:
        doc: dict[str, Any] = json.loads(r.read())
    return doc


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_status_is_answered_from_memory_while_a_networks_journal_is_locked(
    tmp_path: Path, pg_server: pg.Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    database = pg_server.new_database()
    rig = make_fleet(tmp_path, 2, database, pg.PASSWORD, 20.0)
    w = rig.start()
    try:
        wait_for("both networks in sync", lambda: settled([fleet_status(w)], rig.names()), SETTLE)
        before = wait_for(
            "a document built after the first runs' last writes",
            lambda: (lambda d: d if d.get("fresh", True) else None)(_ask(w)),
        )
        net = rig.nets[0].name
        schema = network_schema(net)
        with psycopg.connect(pg_server.url(database), autocommit=False) as conn:
            # A table only the status derivation reads (and the document's key,
            # journal_mark), locked as a migration's ALTER or a VACUUM FULL would:
            # every build of the document waits until the block ends.
            conn.execute(f"LOCK TABLE {schema}.suspensions IN ACCESS EXCLUSIVE MODE")
            with ThreadPoolExecutor(CLIENTS) as pool:
                answers = list(pool.map(lambda _: _ask(w), range(CLIENTS)))
            for doc in answers:
                # Every network, from memory, that it could not be built again
                # now: no status given as known, what it said before kept as such.
                assert [n["name"] for n in doc["networks"]] == [
                    n["name"] for n in before["networks"]
                ]
                by = {n["name"]: n for n in doc["networks"]}
                was = {n["name"]: n for n in before["networks"]}
                assert {k: (v["status"], v["in_sync"]) for k, v in by.items()} == {
                    k: (None, None) for k in was
                }
                last = {k: v["last_known"] for k, v in by.items()}
                assert {k: (v["status"], v["in_sync"]) for k, v in last.items()} == {
                    k: (v["status"], v["in_sync"]) for k, v in was.items()
                }
                assert doc["fresh"] is False, doc["replica"]
            conn.rollback()
        # The journal answers again: a fresh document, built after the request.
        after = wait_for(
            "a fresh document again", lambda: (lambda d: d if d["fresh"] else None)(_ask(w))
        )
        # A run the lock held up (a fetch tick, a drift check) may still be
        # going in that first document: in sync again once it ends, and fresh.
        seen: list[dict[str, Any]] = [after]

        def fresh_and_settled() -> dict[str, Any] | None:
            seen[0] = _ask(w)
            return seen[0] if seen[0]["fresh"] and settled(seen, rig.names()) else None

        try:
            wait_for("a fresh document in sync", fresh_and_settled, SETTLE)
        except AssertionError as e:
            raise AssertionError(json.dumps(seen[0]["networks"])) from e
    finally:
        assert w.stop() == 0
