"""POST /suspend (or /resume) to a fleet replica naming a network it does not
run answered 200 with an error in the body: a script reading the status code
took a mistyped network (or one another replica runs) for a suspended one,
and that network's writes went on. Now 404, saying whether the fleet has the
network and which replica runs it, and nothing is kept; the right name still
suspends."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from journal import pg
from provgit.journal.location import network_schema

from .fleet_helpers import fleet_status, make_fleet, settled
from .replica_helpers import wait_for

TOKEN = "fleet-token-not-a-secret"


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_fleet_refuses_to_suspend_a_network_it_does_not_run(
    tmp_path: Path, pg_server: pg.Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    database = pg_server.new_database()
    rig = make_fleet(tmp_path, 1, database, pg.PASSWORD, 20.0)
    rig.env["PROVGIT_WATCH_TOKEN"] = TOKEN
    w = rig.start()
    try:
        wait_for("the network in sync", lambda: settled([fleet_status(w)], rig.names()), 180.0)
        reason = {"reason": "carrier cutover"}
        code, answer = _post(w.url + "/suspend", {"element": "net-0/e00", **reason})
        assert code == 404, answer
        assert "no network 'net-0' in the fleet" in answer["error"], answer
        code, answer = _post(w.url + "/resume", {"element": "net-0"})
        assert code == 404 and "no network 'net-0'" in answer["error"], answer
        schema = network_schema("net-00")
        with psycopg.connect(pg_server.url(database), autocommit=True) as conn:
            kept = conn.execute(f"SELECT count(*) FROM {schema}.suspensions").fetchone()
        assert kept == (0,)
        # The right name still suspends, and resumes.
        code, answer = _post(w.url + "/suspend", {"element": "net-00/e00", **reason})
        assert code == 200 and answer["suspended"]["reason"] == "carrier cutover", answer
        code, answer = _post(w.url + "/resume", {"element": "net-00/e00"})
        assert code == 200 and answer["resumed"] is not None, answer
    finally:
        assert w.stop() == 0
