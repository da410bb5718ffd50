"""A replica that takes an element over while it is busy with a long run of
its own starts writing the taken-over element at once (issue #19's failover
floor), and says nothing untrue about it meanwhile. Real PostgreSQL, real
simulators, real watch processes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from apply.helpers import Sim
from journal import pg

from .helpers import Watch
from .replica_helpers import (
    by_pid,
    current_names,
    fences,
    lease_rows,
    make_cluster,
    rewritten_unchanged,
    sim_revision,
    wait_for,
    written_twice,
)

LEASE = 2.0
# The survivor's own elements answer this late while it takes over: its own
# run lasts far longer than a lease (without the fix, the taken-over element
# waits for all of it).
SLOW_MS = 3000
SLOW_APPLY = "  batch_size: 4\n  batches_in_flight: 1\n"  # continues `apply:`
# The taken-over elements answer late enough that the takeover run outlasts
# the survivor's own once that one's elements answer at once.
THEIRS_MS = 2000


def test_a_survivor_busy_with_a_long_run_writes_the_element_it_takes_over_at_once(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server, watches: list[Watch]
) -> None:
    url = pg_server.url(pg_server.new_database())
    sims = {s.name: s for s in four_sims}
    c = make_cluster(tmp_path, four_sims, url, LEASE, users=40, extra=SLOW_APPLY)
    replicas = [c.start() for _ in range(2)]
    watches += replicas
    held = wait_for("the elements spread over two", lambda: c.spread(replicas[0], replicas))
    wait_for("the first commit everywhere", lambda: c.all_named("Ann"), timeout=120)
    victim = by_pid(replicas, held["cs1"])
    survivor = next(w for w in replicas if w is not victim)
    survivor_id = survivor.status()["watch"]["replica"]["id"]
    theirs = sorted(e for e, h in held.items() if by_pid(replicas, h) is victim)
    ours = sorted(e for e, h in held.items() if by_pid(replicas, h) is survivor)
    for e in ours:
        sims[e].admin("/admin/faults", {"latency_ms": SLOW_MS})
    for e in theirs:
        sims[e].admin("/admin/faults", {"latency_ms": THEIRS_MS})
    before = {s.name: sim_revision(s) for s in four_sims}
    c.commit("Bea")
    wait_for(
        "the victim is writing cs1",
        lambda: sim_revision(sims["cs1"]) > before["cs1"],
        timeout=120,
    )
    victim.proc.kill()
    victim.proc.wait(timeout=30)
    replicas.remove(victim)
    watches.remove(victim)
    token_at_kill = lease_rows(url)["cs1"][1]

    seen: list[tuple[str, bool]] = []

    def survivor_wrote_cs1() -> bool:
        # Status first, then the element: the element only moves towards Bea,
        # so "not all Bea" read after a status read was true at that read too.
        status = survivor.status()["elements"].get("cs1", {}).get("status")
        named = current_names(sims["cs1"]) == {"Bea"}
        seen.append((str(status), named))
        return any(
            ch["token"] > token_at_kill and ch["revision"] > before["cs1"]
            for ch in fences(sims["cs1"])["changes"]
        )

    wait_for("the survivor wrote cs1 under its new lease", survivor_wrote_cs1, timeout=90)
    # Its own run is still going on (its elements answer every 3 s): the
    # taken-over element did not wait for it.
    assert not all(current_names(sims[e]) == {"Bea"} for e in ours)
    assert survivor.status()["watch"]["running"] is not None
    assert lease_rows(url)["cs1"][0] == survivor_id
    # Between the claim and the first write nothing said cs1 was in sync
    # while it was not.
    assert seen and all(not (s == "Sync Completed" and not named) for s, named in seen), seen
    for e in ours:
        sims[e].admin("/admin/faults", {"latency_ms": 0})
    # The survivor's own run ends now, the takeover run goes on: the status
    # names a run under way for as long as a taken-over element is behind.
    idle_behind: list[str] = []

    def taken_over_in_sync() -> bool:
        running = survivor.status()["watch"]["running"]
        behind = [e for e in theirs if current_names(sims[e]) != {"Bea"}]
        if running is None and behind:
            idle_behind.extend(behind)
        return not behind

    wait_for("the taken-over elements named Bea", taken_over_in_sync, timeout=120)
    assert idle_behind == [], "no run under way, said the status, while these were behind"
    wait_for("every element named Bea", lambda: c.all_named("Bea"), timeout=120)
    wait_for(
        "the survivor says every element is in sync",
        lambda: all(
            survivor.status()["elements"][e]["status"] == "Sync Completed" for e in c.elements()
        ),
        timeout=60,
    )
    # One takeover run per claim: not one more for every moment the
    # survivor's loop was busy (its own run, a fetch tick's look).
    claims = Counter(e["element"] for e in survivor.events("lease_claimed"))
    taken = Counter(e for line in survivor.events("takeover_run") for e in line["elements"])
    assert taken["cs1"] >= 1, taken
    assert all(n <= claims[e] for e, n in taken.items()), (taken, claims)
    for s in four_sims:
        assert written_twice(s, before[s.name]) == {}, s.name
        assert rewritten_unchanged(s) == [], s.name
        assert fences(s)["refused"] == []
