"""Every replica's /status.json, page and /metrics tell the truth about every
element, the ones other replicas hold included: read from the holder's rows in
the shared journal, with the holder named (issue #19). Real PostgreSQL, real
simulators, real watch processes."""

from __future__ import annotations

from pathlib import Path

from apply.helpers import Sim
from journal import pg

from .helpers import Watch
from .replica_helpers import by_pid, lease_rows, make_cluster, wait_for

# No lease is waited out here (the elements spread by hand-backs): 20 s, not
# 3, so that at load 30+ a late lease round cannot move an element between
# reads the test compares (3 s leaves a round trip 0.6 s).
LEASE = 20.0


def _elements(w: Watch) -> dict[str, dict[str, object]]:
    elements: dict[str, dict[str, object]] = w.status()["elements"]
    return elements


def test_each_replica_says_what_the_holder_of_every_element_journaled(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server, watches: list[Watch]
) -> None:
    url = pg_server.url(pg_server.new_database())
    c = make_cluster(tmp_path, four_sims, url, LEASE, users=3)
    replicas = [c.start() for _ in range(2)]
    watches += replicas
    held = wait_for("the elements spread over two", lambda: c.spread(replicas[0], replicas))
    wait_for("both replicas name those holders", lambda: c.agreed(replicas, held))
    wait_for("the first commit everywhere", lambda: c.all_named("Ann"), timeout=120)

    def all_completed(w: Watch) -> bool:
        elements = _elements(w)
        return all(elements[e]["status"] == "Sync Completed" for e in c.elements())

    for w in replicas:
        wait_for("every element Sync Completed", lambda: all_completed(w), timeout=60)  # noqa: B023
        elements = _elements(w)
        assert {e: elements[e]["holder"] for e in c.elements()} == held

    # An element of A's goes down; the next commit cannot reach it.
    holder = held["cs2"]
    a = by_pid(replicas, holder)
    b = next(w for w in replicas if w is not a)
    sim = next(s for s in four_sims if s.name == "cs2")
    sim.admin("/admin/faults", {"offline": True})
    c.commit("Bea")

    def a_says_cs2_not_in_sync() -> str | None:
        status = str(_elements(a)["cs2"]["status"])
        return None if status in ("Sync Completed", "Not yet applied") else status

    wait_for("A says cs2 is not in sync", a_says_cs2_not_in_sync, timeout=120)
    assert lease_rows(url)["cs2"][0] == holder
    # B, which does not hold cs2, says what A journaled, and that A holds it.
    wait_for(
        "B says what A says about cs2",
        lambda: _elements(b)["cs2"]["status"] == _elements(a)["cs2"]["status"],
        timeout=30,
    )
    doc = b.status()
    assert doc["elements"]["cs2"]["holder"] == holder
    assert doc["in_sync"] is False
    # A's status moves on (Failed, then Stopped once it sees the element is
    # down): B's page follows what A says now.
    wait_for(
        "B's page says what A says about cs2",
        lambda: str(_elements(a)["cs2"]["status"]).split(" ")[0] in b.get("/")[1],
        timeout=30,
    )
    # /metrics: cs2 is not counted as in sync on B either.
    code, metrics, _ = b.get("/metrics")
    assert code == 200
    assert 'provgit_element_in_sync{element="cs2"} 0.0' in metrics
    sim.admin("/admin/faults", {"offline": False})
    wait_for("every element named Bea", lambda: c.all_named("Bea"), timeout=120)
    for w in replicas:
        wait_for("every element Sync Completed again", lambda: all_completed(w), timeout=60)  # noqa: B023
    code, metrics, _ = b.get("/metrics")
    assert 'provgit_element_in_sync{element="cs2"} 1.0' in metrics
