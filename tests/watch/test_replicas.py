"""Replicas of `provgit watch` sharing one PostgreSQL journal (issue #19): real
PostgreSQL (tests/journal/pg.py), real simulators, real watch processes."""

from __future__ import annotations

import json
import random
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from apply.helpers import Sim, write_config
from journal import pg

from .helpers import Watch, commit_all
from .replica_helpers import (
    Cluster,
    by_pid,
    fenced_put,
    fences,
    lease_rows,
    make_cluster,
    rewritten_unchanged,
    sim_revision,
    wait_for,
    written_twice,
)

LEASE = 3.0
# For the tests in which no lease is waited out (the elements spread by
# hand-backs): one no wait outlives. With 3 s a replica stops writing 0.6 s
# before expiry and gives a lease round trip 0.6 s; at load 30+ a late round
# moved an element between two reads a test compares.
STEADY_LEASE = 20.0


def _put(sim: Sim, key: str, comment: str, revision: int | None) -> int:
    """A put of `cos/<key>` (a create when `revision` is None); the new revision."""
    import json
    import urllib.request

    condition = {"If-None-Match": "*"} if revision is None else {"If-Match": f'"{revision}"'}
    request = urllib.request.Request(
        f"{sim.url}/v1/collections/cos/records/{key}",
        data=json.dumps({"number": int(key), "comment": comment}).encode(),
        method="PUT",
        headers={"Content-Type": "application/json", **condition},
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        return int(r.headers["ETag"].strip('"'))


def test_a_record_put_back_with_the_value_it_had_counts_as_written_twice(
    four_sims: list[Sim],
) -> None:
    # What the replica tests' `rewritten_unchanged` catches, on a real element:
    # a change of value is not a double write, the same value again is.
    cs1 = four_sims[0]
    first = _put(cs1, "7", "a", None)
    second = _put(cs1, "7", "b", first)
    assert rewritten_unchanged(cs1) == []
    third = _put(cs1, "7", "b", second)
    assert rewritten_unchanged(cs1) == [("cos", "7", third)]


def test_replicas_share_the_elements_and_write_each_record_once(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server, watches: list[Watch]
) -> None:
    url = pg_server.url(pg_server.new_database())
    c = make_cluster(tmp_path, four_sims, url, STEADY_LEASE, users=40)
    replicas = [c.start() for _ in range(3)]
    watches += replicas
    held = wait_for(
        "the elements spread over three replicas", lambda: c.spread(replicas[0], replicas)
    )
    wait_for("every element has the first commit", lambda: c.all_named("Ann"))
    assert not any(written_twice(s, 0) for s in four_sims)
    before = {s.name: sim_revision(s) for s in four_sims}
    c.commit("Bea")
    wait_for("every element has the second commit", lambda: c.all_named("Bea"))
    for s in four_sims:
        assert written_twice(s, before[s.name]) == {}, s.name
        assert rewritten_unchanged(s) == [], s.name
        # Each element was written under its holder's lease only.
        report = fences(s)
        assert {ch["name"] for ch in report["changes"]} == {s.name}
        assert report["refused"] == []
    assert set(held) == {s.name for s in four_sims}


def test_status_and_metrics_say_which_replica_holds_each_element(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server, watches: list[Watch]
) -> None:
    url = pg_server.url(pg_server.new_database())
    c = make_cluster(tmp_path, four_sims, url, STEADY_LEASE, users=3)
    replicas = [c.start() for _ in range(2)]
    watches += replicas
    held = wait_for(
        "the elements spread over two replicas", lambda: c.spread(replicas[0], replicas)
    )
    wait_for("both replicas name those holders", lambda: c.agreed(replicas, held))
    rows = lease_rows(url)
    assert {e: h for e, (h, _) in rows.items() if not e.startswith("@")} == held
    for w in replicas:
        doc = w.status()["watch"]["replica"]
        assert sorted(doc["holds"]) == sorted(e for e, h in held.items() if h == doc["id"])
        assert doc["healthy"] is True
        code, metrics, _ = w.get("/metrics")
        assert code == 200
        for element, holder in held.items():
            line = f'provgit_element_lease_holder{{element="{element}",replica="{holder}"}} 1.0'
            assert line in metrics
        code, page, _ = w.get("/")
        assert code == 200 and "Held by replica" in page and doc["id"] in page
    assert sum(w.status()["watch"]["replica"]["leader"] for w in replicas) == 1


def test_sigterm_hands_the_leases_over_at_once(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server, watches: list[Watch]
) -> None:
    url = pg_server.url(pg_server.new_database())
    # A lease far longer than the waits below: only a handover can move them in time.
    c = make_cluster(tmp_path, four_sims, url, 120.0, users=3)
    replicas = [c.start() for _ in range(2)]
    watches += replicas
    held = wait_for(
        "the elements spread over two replicas", lambda: c.spread(replicas[0], replicas)
    )
    leaving = by_pid(replicas, next(iter(held.values())))
    staying = next(w for w in replicas if w is not leaving)
    theirs = sorted(e for e, h in held.items() if by_pid(replicas, h) is leaving)
    assert leaving.stop() == 0
    leaving.wait_log("leases_released", timeout=5)
    # Released rows (holder NULL), not left to expire: nobody holds them as the leaver.
    assert all(
        holder is None or by_pid(replicas, holder) is staying
        for holder, _ in lease_rows(url).values()
    )
    wait_for(
        f"the staying replica holds {theirs} too",
        lambda: set(theirs) <= set(staying.status()["watch"]["replica"]["holds"]),
        timeout=30,
    )
    c.commit("Cid")
    wait_for("every element has the new commit", lambda: c.all_named("Cid"))


def _journal_counts(url: str) -> tuple[int, int]:
    """(pending updates, distribution errors) in the shared journal."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        pending = conn.execute("SELECT count(*) FROM pending").fetchone()
        errors = conn.execute("SELECT count(*) FROM dist_errors").fetchone()
    assert pending is not None and errors is not None
    return int(pending[0]), int(errors[0])


SLOW_APPLY = "  batch_size: 4\n  batches_in_flight: 1\n"  # continues `apply:`
# The 30 random moments (benchmarks/bench_failover.py times them too).
ROUNDS = 30


@pytest.mark.slow
# A bound for 30 rounds on a loaded machine, not the default 300 s: each round
# starts a replica and waits out a lease, 13-15 s a round at load ~23 on 2
# cores (a run here stopped at 300 s in its 9th round).
@pytest.mark.timeout(1200)
def test_sigkill_of_the_holder_mid_apply_another_replica_finishes_writing_nothing_twice(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server, watches: list[Watch]
) -> None:
    url = pg_server.url(pg_server.new_database())
    for s in four_sims:
        s.admin("/admin/faults", {"latency_ms": 20})
    c = make_cluster(tmp_path, four_sims, url, 2.0, users=60, extra=SLOW_APPLY)
    alive = [c.start() for _ in range(3)]
    killed: list[Watch] = []
    rng = random.Random(19)
    try:
        wait_for("the first commit everywhere", lambda: c.all_named("Ann"), timeout=120)
        for round_ in range(ROUNDS):
            name = f"N{round_}x"
            before = {s.name: sim_revision(s) for s in four_sims}
            target = rng.choice(four_sims)
            writes = rng.randint(1, 40)
            c.commit(name)
            wait_for(
                f"{writes} writes on {target.name}",
                lambda: sim_revision(target) - before[target.name] >= writes,  # noqa: B023
                timeout=120,
            )
            holder = lease_rows(url)[target.name][0]
            assert holder is not None
            victim = by_pid(alive, holder)
            victim.proc.kill()
            victim.proc.wait(timeout=30)
            alive.remove(victim)
            killed.append(victim)
            alive.append(c.start())
            wait_for(f"every element named {name}", lambda: c.all_named(name), timeout=120)  # noqa: B023
            for s in four_sims:
                assert written_twice(s, before[s.name]) == {}, (round_, s.name)
                assert rewritten_unchanged(s) == [], (round_, s.name)
                assert fences(s)["refused"] == []
            wait_for("no pending update or error left", lambda: _journal_counts(url) == (0, 0))
    finally:
        for w in killed:
            if w.proc.poll() is None:
                w.proc.kill()
        watches += alive


def test_a_replica_cut_off_from_postgresql_stops_writing_and_rejoins(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server, watches: list[Watch]
) -> None:
    import psycopg

    database = pg_server.new_database()
    url = pg_server.url(database)
    # Replica A logs in as its own role, so its sessions can be cut alone.
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS cutoff")
        conn.execute(f"CREATE ROLE cutoff LOGIN SUPERUSER PASSWORD '{pg.PASSWORD}'")
    cut_url = url.replace(f"//{pg.USER}:", "//cutoff:", 1)
    c = make_cluster(tmp_path, four_sims, url, LEASE, users=6)
    b = c.start()
    watches.append(b)
    c.journal_url = cut_url
    a = c.start()
    watches.append(a)
    held = wait_for("the elements spread over both", lambda: c.spread(b, [a, b]))
    a_id = a.status()["watch"]["replica"]["id"]
    a_elements = sorted(e for e, h in held.items() if h == a_id)
    a_tokens = {e: t for e, (_, t) in lease_rows(url).items() if e in a_elements}
    wait_for("A's /metrics: every element in sync", lambda: metrics_in_sync(a, c.elements()))
    mark = a.mark()
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute("ALTER ROLE cutoff NOLOGIN")
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'cutoff'"
        )
    wait_for("A's /healthz says 503", lambda: a.get("/healthz")[0] == 503, timeout=30)
    a.wait_log("journal_unreachable", after=mark)
    a.wait_log("writes_stopped", after=mark, timeout=30)
    assert a.status()["watch"]["replica"]["healthy"] is False
    cut_at = {s.name: sim_revision(s) for s in four_sims}
    assert_vouches_for_nothing(a.status(), c.elements())
    # /metrics too, at once and from memory: the rows it read last said Sync Completed.
    assert metrics_in_sync(a, c.elements()) == dict.fromkeys(c.elements(), False)
    wait_for(
        "B holds every element",
        lambda: set(b.status()["watch"]["replica"]["holds"]) == set(c.elements()),
        timeout=30,
    )
    c.commit("Dee")
    wait_for("every element named Dee", lambda: c.all_named("Dee"), timeout=60)
    # B vouches for what it applied; A, still cut off, for nothing.
    b_id = b.status()["watch"]["replica"]["id"]
    wait_for("B says every element is Sync Completed", lambda: b_completed(b, c, b_id))
    assert_vouches_for_nothing(a.status(), c.elements())
    sims = {s.name: s for s in four_sims}
    for e in a_elements:
        s = sims[e]
        report = fences(s)
        # Nothing reached A's elements under A's token once it was cut off ...
        late = [ch for ch in report["changes"] if ch["revision"] > cut_at[e]]
        assert late and all(ch["token"] > a_tokens[e] for ch in late), late
        # ... and the element refuses a write with it.
        code, body = fenced_put(s, f"{e}/{a_tokens[e]}", "99")
        assert (code, body["code"]) == (409, "fenced"), body
        assert fences(s)["refused"][-1]["token"] == a_tokens[e]
    for s in four_sims:
        assert written_twice(s, cut_at[s.name]) == {}
    mark = a.mark()
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute("ALTER ROLE cutoff LOGIN")
    wait_for("A's /healthz says 200 again", lambda: a.get("/healthz")[0] == 200, timeout=30)
    a.wait_log("journal_reachable", after=mark)
    wait_for("A holds elements again", lambda: a.status()["watch"]["replica"]["holds"], timeout=60)
    c.commit("Eve")
    wait_for("every element named Eve", lambda: c.all_named("Eve"), timeout=60)


SCHEMA = Path(__file__).resolve().parents[2] / "src/provgit/schemas/status.schema.json"


def assert_vouches_for_nothing(doc: dict[str, Any], elements: list[str]) -> None:
    """The live status of a replica cut off from the journal: no element (nor
    the network) in sync, each saying why, and still a valid document."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert problems == [], problems
    assert doc["watch"]["replica"]["healthy"] is False
    assert (doc["status"], doc["in_sync"]) == ("Sync Incomplete", False)
    said = {e: (doc["elements"][e]["status"], doc["elements"][e]["detail"]) for e in elements}
    assert all(s != "Sync Completed" and "cut off" in str(d) for s, d in said.values()), said
    assert all(r["status"] != "Sync Completed" for r in doc["resources"]), doc["resources"]


def metrics_in_sync(w: Watch, elements: list[str]) -> dict[str, bool] | None:
    """Each element's `provgit_element_in_sync` on `w`'s /metrics (None: not
    every element in sync). A replica cut off from the journal says it is
    (`provgit_replica_healthy` 0) and counts no element in sync."""
    code, body, _ = w.get("/metrics")
    assert code == 200, body
    values = dict(re.findall(r'^provgit_element_in_sync\{element="([^"]+)"\} (\S+)$', body, re.M))
    said = {e: values.get(e) for e in elements}
    healthy = re.search(r"^provgit_replica_healthy (\S+)$", body, re.M)
    assert healthy is not None, body
    if healthy.group(1) == "0.0":
        assert said == dict.fromkeys(elements, "0.0"), said
        return dict.fromkeys(elements, False)
    return dict.fromkeys(elements, True) if set(said.values()) == {"1.0"} else None


def b_completed(b: Watch, c: Cluster, b_id: str) -> bool:
    doc = b.status()
    said = {e: (doc["elements"][e]["status"], doc["elements"][e]["holder"]) for e in c.elements()}
    assert said == dict.fromkeys(c.elements(), ("Sync Completed", b_id)), said
    return doc["in_sync"] is True


def _status_row(url: str, element: str) -> tuple[str, int] | None:
    """(status, pid of the run that wrote it) of `element`'s row in the shared journal."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT s.status, r.pid FROM element_status s JOIN runs r ON r.id = s.run_id "
            "WHERE s.element = %s",
            (element,),
        ).fetchone()
    return None if row is None else (str(row[0]), int(row[1]))


def test_a_replica_paused_past_its_lease_cannot_overwrite_the_new_holders_status(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server, watches: list[Watch]
) -> None:
    url = pg_server.url(pg_server.new_database())
    c = make_cluster(tmp_path, four_sims, url, 2.0, users=3)
    a = c.start()
    watches.append(a)
    wait_for("A applied the first commit", lambda: c.all_named("Ann"), timeout=120)
    # ... and its run is over: on a loaded machine the records are there well
    # before the run ends, and a late write of that run would pass for the
    # next commit's below (A then paused mid-transaction, not mid-write).
    a.wait_log("run_finished", lambda line: line["outcome"] == "Sync Completed", timeout=120)
    cs1 = four_sims[0]
    # cs1 answers A's next write late: the write lands, its answer is held
    # (long enough that a loaded machine still stops A before the answer).
    cs1.admin("/admin/faults", {"latency_ms": 4000})
    before = sim_revision(cs1)
    c.commit("Bea")
    wait_for("A's write landed on cs1", lambda: sim_revision(cs1) > before, timeout=120)
    a.proc.send_signal(signal.SIGSTOP)  # A waits for the answer, frozen
    try:
        cs1.admin("/admin/faults", {"latency_ms": 0})
        b = c.start()
        watches.append(b)
        # B takes cs1 once A's lease ran out, settles A's write by observing
        # cs1, and says what it observed.
        wait_for("B applied the commit", lambda: c.all_named("Bea"), timeout=120)
        wait_for(
            "cs1's status is B's",
            lambda: _status_row(url, "cs1") == ("Sync Completed", b.proc.pid),
            timeout=120,
        )
        mark = a.mark()
    finally:
        a.proc.send_signal(signal.SIGCONT)
    # A gets its answer late: what it journals about cs1 is dropped, not put
    # over B's rows, and it says so.
    # Its keeper renewed cs1 while A was paused, up to the stall bound (four
    # lease times), so A may come back stalled (`writes_stopped`) rather than
    # find the lease gone at a round (`lease_lost`): either names cs1.
    wait_for(
        "A says it no longer holds cs1",
        lambda: any(
            (x.get("event") == "lease_lost" and x.get("element") == "cs1")
            or (x.get("event") == "writes_stopped" and "cs1" in x.get("elements", []))
            for x in a.logs[mark:]
        ),
        timeout=60,
    )
    a.wait_log("journal_write_dropped", lambda line: line["element"] == "cs1", after=mark)
    # With A back the two replicas share the elements again, so cs1 may move
    # back to A under a new lease; whoever holds it, its row and its page say
    # what that holder observed.
    replicas = [a, b]

    def holder_says_completed() -> bool:
        holder = lease_rows(url)["cs1"][0]
        if holder is None:
            return False
        w = by_pid(replicas, holder)
        doc = w.status()
        said = (
            _status_row(url, "cs1"),
            w.proc.pid,
            doc["elements"]["cs1"],
            doc["watch"]["replica"]["holders"]["cs1"],
            doc["watch"]["replica"]["id"],
        )
        # Raised, not returned: wait_for names the last of these if it never holds.
        assert said[0] == ("Sync Completed", w.proc.pid), said
        assert said[2]["status"] == "Sync Completed", said
        assert said[3] == said[4], said
        return True

    wait_for("cs1's holder says Sync Completed", holder_says_completed, timeout=120)
    assert _journal_counts(url) == (0, 0)
    assert fences(cs1)["refused"] == []


def _with_directory(c: Cluster, read_only: bool) -> str:
    """The cluster's config plus an LDAP directory element; the commit."""
    write_config(c.work, c.sims, users=c.users, embedded_mcl=False, first_name="Ann")
    (c.tmp / "bind-password").write_text("not-used\n")
    net = c.work / "net.yaml"
    flag = "    read_only: true\n" if read_only else ""
    directory = (
        "elements:\n"
        "  - name: dir1\n"
        "    type: directory\n"
        "    ceid: 9\n"
        "    driver: ldap\n"
        "    connection:\n"
        "      url: ldap://127.0.0.1:9\n"
        f"      token: {{file: {c.tmp / 'bind-password'}}}\n"
        "    directory:\n"
        "      base_dn: ou=people,dc=example,dc=com\n"
        "      bind_dn: cn=provgit,dc=example,dc=com\n"
        f"{flag}"
    )
    net.write_text(net.read_text().replace("elements:\n", directory, 1))
    return commit_all(c.work, f"a directory (read_only: {read_only})")


def test_replicas_refuse_a_directory_they_would_write_unfenced_and_take_a_read_only_one(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server, watches: list[Watch]
) -> None:
    url = pg_server.url(pg_server.new_database())
    # The call servers only: the directory, not a MiCollab, receives the users.
    c = make_cluster(tmp_path, four_sims[:3], url, STEADY_LEASE, users=3)
    commit = _with_directory(c, read_only=False)
    a = c.start()
    watches.append(a)
    refused = a.wait_log("config_refused", timeout=60)
    assert "dir1 (driver ldap) cannot be written by replicas" in refused["first"]
    doc = a.status()
    problem = doc["watch"]["refused"]["problems"][0]
    assert doc["watch"]["refused"]["commit"] == commit
    # Where (file:line:col of the element), what, and how to fix it.
    assert re.fullmatch(r"net\.yaml:[23]:\d+", problem["where"]), problem
    assert problem["code"] == "replica_unfenced_element"
    assert "read_only: true" in problem["hint"]
    # Nothing was written anywhere.
    assert all(sim_revision(s) == 0 for s in c.sims)
    _with_directory(c, read_only=True)
    wait_for("a read-only directory is accepted", lambda: c.all_named("Ann"), timeout=120)
