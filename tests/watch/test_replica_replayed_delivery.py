"""A git host's delivery for a commit the replicas applied already costs a
look at the ref, not a run (issue #19). A proven delivery carries no nonce:
anyone holding one can send it again and again, and a fleet relays each one
to the replica running the network. Each such delivery fetches (the leader)
or reads the leader's published commit (the others), finds the applied
commit, and starts no run: nothing planned, no element read or written, the
run lock never taken. The bearer token still asks for a run now. Real
PostgreSQL, real simulators, real watch processes; runs are counted in the
log and the journal, never timed.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apply.helpers import Sim
from journal import pg

from .helpers import TOKEN, Watch
from .replica_helpers import make_cluster, sim_revision, wait_for

pytestmark = pytest.mark.slow
LEASE = 20.0  # no lease is waited out: long, so no round moves an element mid-test
SECRET = "whsec-replayed-not-a-real-secret"
PUSH = json.dumps({"ref": "refs/heads/main", "after": "0" * 40, "commits": []}).encode()
REPLAYS = 6


def _deliver(w: Watch) -> int:
    """The same signed GitHub push, as a replay sends it."""
    url = urlsplit(w.url)
    signature = "sha256=" + hmac.new(SECRET.encode(), PUSH, hashlib.sha256).hexdigest()
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    try:
        conn.request(
            "POST",
            "/reconcile",
            PUSH,
            {
                "Content-Type": "application/json",
                "X-GitHub-Event": "push",
                "X-Hub-Signature-256": signature,
            },
        )
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def _unmoved_deliveries(w: Watch) -> int:
    """Looks that a delivery asked for (alone or with a fetch tick) and that
    found the applied commit."""
    text = w.get("/metrics", TOKEN)[1]
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "provgit_watch_unmoved_looks":
            for s in family.samples:
                if s.name.endswith("_total") and "webhook" in s.labels["reason"].split(","):
                    total += s.value
    return int(total)


def _runs(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM runs").fetchone()
    assert row is not None
    return int(row[0])


def test_a_replayed_delivery_of_the_applied_commit_looks_at_the_ref_and_starts_no_run(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server, watches: list[Watch]
) -> None:
    url = pg_server.url(pg_server.new_database())
    secret = tmp_path / "webhook-secret"
    secret.write_text(SECRET + "\n")
    c = make_cluster(tmp_path, four_sims, url, LEASE, users=3)
    replicas = [c.start("--webhook-secret-file", str(secret)) for _ in range(2)]
    watches += replicas
    held = wait_for("the elements spread over both", lambda: c.spread(replicas[0], replicas))
    wait_for("Ann everywhere", lambda: c.all_named("Ann"), timeout=120)
    wait_for("both agree on the holders", lambda: c.agreed(replicas, held))
    # Quiet: every replica's last run over, the commit applied everywhere.
    for w in replicas:
        wait_for("no run going", lambda w=w: w.status()["watch"]["running"] is None)
    revisions = {s.name: sim_revision(s) for s in four_sims}
    runs = _runs(url)
    marks = [w.mark() for w in replicas]

    # The same delivery again and again, to the leader and to the other
    # replica (which a fleet's relay reaches the same way): each a look.
    for w in replicas:
        for _ in range(REPLAYS):
            before = _unmoved_deliveries(w)
            assert _deliver(w) == 202

            def looked(w: Watch = w, before: int = before) -> bool:
                return _unmoved_deliveries(w) > before

            wait_for("the delivery looked at", looked)

    for w, mark in zip(replicas, marks, strict=True):
        started = [e["reason"] for e in w.logs[mark:] if e.get("event") == "run_finished"]
        assert not [r for r in started if "webhook" in r], started
    assert _runs(url) == runs
    assert {s.name: sim_revision(s) for s in four_sims} == revisions

    # The bearer token asks for a run now, ref moved or not.
    mark = replicas[0].mark()
    assert replicas[0].post("/reconcile", TOKEN)[0] == 202
    run = replicas[0].wait_log("run_finished", lambda e: "reconcile" in e["reason"], after=mark)
    assert run["outcome"] == "Sync Completed", run
    assert _runs(url) > runs
