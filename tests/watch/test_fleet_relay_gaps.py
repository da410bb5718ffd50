"""What the fleet's webhook relay cannot deliver, and what brings the commit
anyway (issue #19): a NOTIFY sent while the holder's listener reconnects is
lost, so the listener fetches every network it runs once it listens again; a
delivery for a network no live replica runs is answered 202 with what happens
next, and the replica that takes the network over fetches first.

Real `provgit fleet watch` replicas on real PostgreSQL (tests/journal/pg.py),
remote repository URLs rewritten by git to local bare repositories, and the
periodic fetch off (`--fetch-seconds 0`): nothing but the path under test can
bring a commit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from journal import pg

from .fleet_helpers import (
    APP_PREFIX,
    FleetRig,
    all_named,
    fleet_status,
    make_fleet,
    settled,
    spread,
)
from .helpers import Watch
from .replica_helpers import wait_for
from .test_fleet_webhook import SECRET, SECRET_ENV, _deliver, _push, _relay_listening

SETTLE = 180.0
FLEET_SCHEMA = "provgit_fleet"


def _delivery_looks(w: Watch, network: str) -> int:
    """Looks at `network`'s ref that a delivery asked for and that found the
    applied commit (no run), from the replica's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(w.get("/metrics")[1]):
        if family.name == "provgit_watch_unmoved_looks":
            total += sum(
                s.value
                for s in family.samples
                if s.name.endswith("_total")
                and s.labels.get("network") == network
                and "webhook" in s.labels["reason"].split(",")
            )
    return int(total)


def _rig(tmp_path: Path, server: pg.Server, lease: float) -> tuple[FleetRig, str]:
    db = server.new_database()
    rig = make_fleet(tmp_path, 2, db, pg.PASSWORD, lease, webhook_secret_env=SECRET_ENV)
    rig.env[SECRET_ENV] = SECRET
    rig.fetch_seconds = 0  # only the path under test fetches
    return rig, db.rsplit("/", 1)[1]


def _one_each(rig: FleetRig, replicas: list[Watch]) -> dict[str, str]:
    """network -> replica id, once both networks are in sync, one per replica."""
    return wait_for(
        "2 networks in sync, one per replica",
        lambda: (lambda h: h if h and spread(h) == [1, 1] else None)(
            settled([fleet_status(w) for w in replicas], rig.names())
        ),
        timeout=SETTLE,
    )


@contextmanager
def _no_new_sessions(server: pg.Server, database: str) -> Iterator[None]:
    """The database refuses every new session (superusers too); open ones stay."""
    import psycopg

    with psycopg.connect(server.admin_url, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS false")
        try:
            yield
        finally:
            admin.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")


def _terminate_listener(server: pg.Server, database: str, app: str) -> int:
    import psycopg

    with psycopg.connect(server.admin_url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = %s AND query LIKE 'LISTEN %%'",
            (database, app),
        ).fetchall()
    return len(rows)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_delivery_relayed_while_the_holders_listener_reconnects_is_fetched_when_it_listens_again(
    tmp_path: Path, pg_server: pg.Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    # A lease of 20 s, not 4: while the database refuses new sessions, the
    # holder's renewals may fail, and with 4 s its lease lapsed before the
    # delivery (the fresh-clone CI of 2026-12-07 04:26: holder None). The test
    # is about the relay, not about a lapse; nothing here waits out a lease.
    rig, database = _rig(tmp_path, pg_server, 20.0)
    # One after the other: replica N's sessions are named APP_PREFIX + N.
    replicas = [rig.start(), rig.start()]
    try:
        held = _one_each(rig, replicas)
        for w in replicas:
            wait_for("the relay listening", lambda w=w: _relay_listening(w), timeout=60)
        ids = {fleet_status(w)["replica"]["id"]: slot for slot, w in enumerate(replicas, 1)}
        net = rig.nets[0]
        slot = ids[held[net.name]]
        holder, receiver = replicas[slot - 1], replicas[2 - slot]

        # The relay works (and the receiver's sending session is open).
        mark = holder.mark()
        looks = _delivery_looks(holder, net.name)
        status, body = _deliver(receiver, _push(net.name))
        assert status == 202 and body["networks"][0]["relayed"] is True, body
        holder.wait_log(
            "webhook_relayed", lambda e: e["network"] == net.name, timeout=SETTLE, after=mark
        )

        # What that delivery asked for must be over before the cut: still to
        # come, it would find Bob's commit below (the fresh-clone CI of
        # 2026-12-07 05:15: a "webhook" run, not the catch-up fetch, brought it).
        # The commit is applied already: a look at the ref, or, joined to a run
        # asked for meanwhile, that run.
        def handled() -> bool:
            ran = [
                e
                for e in holder.logs[mark:]
                if e.get("event") == "run_finished"
                and e.get("network") == net.name
                and "webhook" in e["reason"]
            ]
            return bool(ran) or _delivery_looks(holder, net.name) > looks

        wait_for("the relayed delivery handled", handled, timeout=SETTLE)

        mark = holder.mark()
        with _no_new_sessions(pg_server, database):
            assert _terminate_listener(pg_server, database, f"{APP_PREFIX}{slot}") == 1
            holder.wait_log("webhook_relay_unreachable", timeout=60, after=mark)
            assert not _relay_listening(holder)
            net.commit("Bob")
            status, body = _deliver(receiver, _push(net.name))
            assert status == 202, body
            answer = body["networks"][0]
            assert answer["relayed"] is True and answer["holder"] == held[net.name], answer
            # Sent while nobody listened for it: lost, and nothing else fetches.
            assert all_named(net, "Ann")
        holder.wait_log(
            "webhook_relay_listening",
            lambda e: net.name in e["fetching"],
            timeout=SETTLE,
            after=mark,
        )
        wait_for("the commit applied by its holder", lambda: all_named(net, "Bob"), SETTLE)
        run = holder.wait_log(
            "run_finished",
            lambda e: e.get("network") == net.name and "fetch" in e["reason"],
            after=mark,
            timeout=SETTLE,
        )
        assert run["outcome"] == "Sync Completed", run
        # The catch-up fetch brought it: the lost NOTIFY was never heard.
        assert not [e for e in holder.logs[mark:] if e.get("event") == "webhook_relayed"]
        assert all_named(rig.nets[1], "Ann")
    finally:
        for w in replicas:
            if w.proc.poll() is None:
                assert w.stop() == 0
    for w in replicas:
        assert SECRET not in json.dumps(w.logs)
        assert not [e for e in w.logs if e.get("event") in ("run_crashed", "network_failed")]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_delivery_whose_holder_was_just_killed_lands_with_the_replica_that_takes_it_over(
    tmp_path: Path, pg_server: pg.Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    rig, _ = _rig(tmp_path, pg_server, 6.0)
    replicas = rig.start_together(2)
    try:
        held = _one_each(rig, replicas)
        ids = {fleet_status(w)["replica"]["id"]: w for w in replicas}
        net = rig.nets[0]
        dead = ids[held[net.name]]
        receiver = next(w for w in replicas if w is not dead)
        mark = receiver.mark()
        dead.proc.kill()
        dead.proc.wait(timeout=60)

        net.commit("Bob")
        status, body = _deliver(receiver, _push(net.name))
        assert status == 202, body
        answer = body["networks"][0]
        assert answer["here"] is False and answer["relayed"] is True, answer
        # Its lease outlives it: the receiver still names it, and says what follows.
        assert answer["holder"] in (held[net.name], None), answer
        assert "takes it over" in answer["note"] and "fetches first" in answer["note"], answer

        receiver.wait_log(
            "network_started", lambda e: e["network"] == net.name, timeout=SETTLE, after=mark
        )
        wait_for("the commit applied by the new holder", lambda: all_named(net, "Bob"), SETTLE)
        run = receiver.wait_log(
            "run_finished",
            lambda e: e.get("network") == net.name and e["outcome"] == "Sync Completed",
            after=mark,
            timeout=SETTLE,
        )
        assert run["outcome"] == "Sync Completed"
    finally:
        for w in replicas:
            if w.proc.poll() is None:
                assert w.stop() == 0


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_delivery_for_a_network_no_replica_runs_is_accepted_and_lands_on_takeover(
    tmp_path: Path, pg_server: pg.Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica seen alive that holds nothing (here a heartbeat row the test
    keeps fresh, standing for a replica that stopped running networks) keeps
    the receiver's share at one of two: the other network stays free. Once
    that replica is gone, the receiver takes the network over, fetches first."""
    import psycopg

    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    # 20 s, not 4: the receiver alone must keep its one network while the test
    # reads which is free and delivers for it; the ghost leaves by its row's
    # delete, not by a lapse, so nothing here waits out a lease.
    rig, _ = _rig(tmp_path, pg_server, 20.0)
    admin_db = pg_server.url(rig.url)
    receiver = rig.start()
    try:
        # The fleet's tables exist once the receiver's first round ran.
        wait_for(
            "the receiver's first lease round",
            lambda: fleet_status(receiver)["replica"]["replicas"],
        )
        with psycopg.connect(admin_db, autocommit=True) as admin:
            admin.execute(
                f"INSERT INTO {FLEET_SCHEMA}.replica_seen (replica, host, pid, url, seen) "
                "VALUES ('ghost', 'nowhere', 0, NULL, extract(epoch from clock_timestamp()) + 3600)"
            )
            doc = wait_for(
                "one network in sync on the receiver, the other free",
                lambda: (
                    lambda d: (
                        d
                        if sorted(n["holder"] is None for n in d["networks"]) == [False, True]
                        and all(n["status"] == "Sync Completed" for n in d["networks"] if n["here"])
                        else None
                    )
                )(fleet_status(receiver)),
                timeout=SETTLE,
            )
            free = next(n["name"] for n in doc["networks"] if n["holder"] is None)
            net = next(n for n in rig.nets if n.name == free)
            net.commit("Bob")
            status, body = _deliver(receiver, _push(net.name))
            assert status == 202, body
            answer = body["networks"][0]
            assert answer["here"] is False and answer["holder"] is None, answer
            assert answer["note"].startswith("no replica runs it now"), answer
            mark = receiver.mark()
            admin.execute(f"DELETE FROM {FLEET_SCHEMA}.replica_seen WHERE replica = 'ghost'")
        receiver.wait_log(
            "network_started", lambda e: e["network"] == net.name, timeout=SETTLE, after=mark
        )
        wait_for("the commit applied on takeover", lambda: all_named(net, "Bob"), SETTLE)
    finally:
        if receiver.proc.poll() is None:
            assert receiver.stop() == 0
