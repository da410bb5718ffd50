"""A replica cut off from PostgreSQL loses its leases; another replica applies
the next commit to its elements; once back it claims some of them again
(issue #19: the reconciler never loses an update, and says at every moment
what is in sync). The elements it takes back get the newest commit, never the
one it had loaded before it was cut off, and it says "Sync Completed" for
them only once they hold that commit. Real PostgreSQL, real simulators, real
watch processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from apply.helpers import Sim
from journal import pg

from .helpers import Watch
from .replica_helpers import current_names, lease_rows, make_cluster, sim_changes, wait_for

pytestmark = pytest.mark.slow
LEASE = 3.0


def _names_written_since(sim: Sim, revision: int) -> set[str]:
    """The first names the element's records were written with after `revision`."""
    names = set()
    for c in sim_changes(sim, revision):
        fields = c["fields"] if c["op"] == "put" else None
        if fields and fields.get("first_name"):
            names.add(str(fields["first_name"]))
    return names


def test_elements_a_replica_claims_back_after_a_cut_off_get_the_newest_commit(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server, watches: list[Watch]
) -> None:
    import psycopg

    url = pg_server.url(pg_server.new_database())
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS cutoff")
        conn.execute(f"CREATE ROLE cutoff LOGIN SUPERUSER PASSWORD '{pg.PASSWORD}'")
    c = make_cluster(tmp_path, four_sims, url, LEASE, users=3)
    b = c.start()
    watches.append(b)
    # A logs in as its own role, so its sessions can be cut alone; it looks
    # for new commits only when asked (no fetch timer in the test's time):
    # what it applies to elements it claims back is what the claim makes it read.
    c.journal_url = url.replace(f"//{pg.USER}:", "//cutoff:", 1)
    a = c.start("--fetch-seconds", "3600")
    watches.append(a)
    wait_for("the elements spread over both", lambda: c.spread(b, [a, b]))
    wait_for("Ann everywhere", lambda: c.all_named("Ann"), timeout=120)
    a_id = a.status()["watch"]["replica"]["id"]
    wait_for("A's run is over", lambda: a.status()["watch"]["running"] is None, timeout=60)
    mark = a.mark()
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute("ALTER ROLE cutoff NOLOGIN")
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'cutoff'"
        )
    a.wait_log("writes_stopped", after=mark, timeout=30)
    wait_for(
        "B holds every element",
        lambda: set(b.status()["watch"]["replica"]["holds"]) == set(c.elements()),
        timeout=30,
    )
    dee = c.commit("Dee")
    wait_for("Dee everywhere", lambda: c.all_named("Dee"), timeout=120)
    after_dee = {s.name: int(sim_changes(s)[-1]["revision"]) for s in four_sims}
    tokens = {e: t for e, (_, t) in lease_rows(url).items()}
    mark = a.mark()
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute("ALTER ROLE cutoff LOGIN")
    a.wait_log("journal_reachable", after=mark, timeout=30)
    a.wait_log("lease_claimed", lambda x: x["element"] in c.elements(), after=mark, timeout=60)
    sims = {s.name: s for s in four_sims}

    def a_says_completed() -> list[str] | None:
        doc: dict[str, Any] = a.status()
        mine = [e for e, (h, _) in lease_rows(url).items() if h == a_id and e in sims]
        said = {e: doc["elements"][e]["status"] for e in mine}
        for e, status in said.items():
            # Never "Sync Completed" for an element that does not hold the newest commit.
            assert status != "Sync Completed" or current_names(sims[e]) == {"Dee"}, (e, said)
        assert mine and set(said.values()) == {"Sync Completed"}, said
        assert doc["watch"]["config_commit"] == dee, doc["watch"]
        return mine

    taken_back = wait_for("A says its elements are Sync Completed", a_says_completed, timeout=60)
    assert all(lease_rows(url)[e][1] > tokens[e] for e in taken_back)
    assert c.all_named("Dee")
    for s in four_sims:
        # Nothing written after Dee named anyone else: no replica put Ann back.
        assert _names_written_since(s, after_dee[s.name]) <= {"Dee"}, s.name
