"""A git host's delivery reaches any replica of a fleet (the load balancer
picks one): the replica that runs the network must fetch it at once. Two real
`provgit fleet watch` replicas on real PostgreSQL (tests/journal/pg.py),
networks whose repositories are remote URLs (git rewrites them to local bare
repositories: no traffic leaves the machine), fetched only on a delivery."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from journal import pg

from .fleet_helpers import REMOTE, all_named, fleet_status, make_fleet, settled, spread
from .helpers import Watch
from .replica_helpers import wait_for

SECRET_ENV = "FLEET_TEST_WEBHOOK_SECRET"
SECRET = "whsec-fleet-5d2a-not-a-real-secret"
SETTLE = 180.0


@pytest.fixture(scope="module")
def pg_server() -> Iterator[pg.Server]:
    why = pg.missing()
    if why is not None:
        pytest.fail(f"PostgreSQL is needed for the fleet tests: {why}")
    with pg.running() as server:
        yield server


def _push(network: str, ref: str = "refs/heads/main") -> bytes:
    repo = {"clone_url": f"{REMOTE}{network}.git", "full_name": f"fleet/{network}"}
    return json.dumps({"ref": ref, "after": "2" * 40, "repository": repo}).encode()


def _deliver(w: Watch, body: bytes, secret: str = SECRET) -> tuple[int, dict[str, Any]]:
    url = urlsplit(w.url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    try:
        conn.request(
            "POST",
            "/reconcile",
            body,
            {
                "Content-Type": "application/json",
                "X-GitHub-Event": "push",
                "X-Hub-Signature-256": f"sha256={digest}",
            },
        )
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()


def _relay_listening(w: Watch) -> bool:
    status, body, _ = w.get("/healthz")
    return status == 200 and json.loads(body)["webhook_relay"] is True


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_delivery_to_a_replica_not_running_the_network_is_applied_by_the_one_that_does(
    tmp_path: Path, pg_server: pg.Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    # A lease no wait below outlives, not 4 s: the test reads the holder once
    # and expects it in each answer; at load 30+ a renewal late by more than
    # the lease's margin would move the network in between. Nothing here
    # waits out a lease (handovers at start are released, not lapsed).
    rig = make_fleet(
        tmp_path, 2, pg_server.new_database(), pg.PASSWORD, 20.0, webhook_secret_env=SECRET_ENV
    )
    rig.env[SECRET_ENV] = SECRET
    rig.fetch_seconds = 0  # only a delivery fetches: nothing else can bring the commit
    replicas = rig.start_together(2)
    try:
        held = wait_for(
            "2 networks in sync, one per replica",
            lambda: (lambda h: h if h and spread(h) == [1, 1] else None)(
                settled([fleet_status(w) for w in replicas], rig.names())
            ),
            timeout=SETTLE,
        )
        for w in replicas:
            wait_for("the relay listening", lambda w=w: _relay_listening(w), timeout=60)
        ids = {fleet_status(w)["replica"]["id"]: w for w in replicas}
        net = rig.nets[0]
        holder = ids[held[net.name]]
        other = next(w for w in replicas if w is not holder)

        # A push to another branch, proven: answered, nothing fetched.
        mark = holder.mark()
        status, body = _deliver(other, _push(net.name, ref="refs/heads/feature"))
        assert status == 200 and body["accepted"] is False, body
        # Another repository's secret (a wrong one): the same answer as an unknown one.
        assert _deliver(other, _push(net.name), secret="guess")[0] == 404
        assert _deliver(other, _push("nowhere"))[0] == 404

        net.commit("Bob")
        status, body = _deliver(other, _push(net.name))
        assert status == 202, body
        note = body["networks"][0].pop("note")
        assert body["networks"] == [
            {"network": net.name, "here": False, "holder": held[net.name], "relayed": True}
        ]
        assert note.startswith(f"relayed to {held[net.name]}, which fetches now"), note
        holder.wait_log(
            "webhook_relayed", lambda e: e["network"] == net.name, timeout=SETTLE, after=mark
        )
        wait_for("the commit applied by its holder", lambda: all_named(net, "Bob"), SETTLE)
        assert all_named(rig.nets[1], "Ann")  # the other network was not touched
        # The run that applied it was the relayed delivery's (nothing else fetches).
        run = holder.wait_log(
            "run_finished",
            lambda e: e.get("network") == net.name and "webhook" in e["reason"],
            after=mark,
            timeout=SETTLE,
        )
        assert run["outcome"] == "Sync Completed", run

        # Sent to the holder itself: run there, nothing relayed.
        net.commit("Cy")
        status, body = _deliver(holder, _push(net.name))
        assert status == 202 and body["networks"][0]["here"] is True, body
        wait_for("the second commit applied", lambda: all_named(net, "Cy"), SETTLE)
    finally:
        for w in replicas:
            if w.proc.poll() is None:
                assert w.stop() == 0
    for w in replicas:
        assert SECRET not in json.dumps(w.logs)
        assert not [e for e in w.logs if e.get("event") in ("run_crashed", "network_failed")]
