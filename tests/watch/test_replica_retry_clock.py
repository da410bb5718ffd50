"""A pending update stamped by a wall clock running hours ahead is still
retried in bounded time (issue #19). A pending update's `next_retry` is the
stamping replica's wall clock plus `apply.retry_max_seconds`; replica A,
its clock two hours ahead, stamps the move it holds back (a user leaving the
call server A holds for one that is down) two hours into the future. Its
clock is then put right (an NTP step, as an admin would). Before, every
replica read that row as due in two hours: the user stayed on its old host
and the network out of sync for that long though the new host came back. Now
a `next_retry` further than `retry_max_seconds` past now is due now (and
said once in the log). Real PostgreSQL, real simulators, real watch processes;
A's step is real in its process (tests/support/replica_clock.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from apply.helpers import Sim
from journal import pg

from .helpers import Watch, set_clock
from .replica_helpers import by_pid, make_cluster, wait_for
from .test_replica_moves import _commit_move, _has

pytestmark = pytest.mark.slow
LEASE = 20.0  # as test_replica_moves: no lease is waited out here
HOUR = 3600.0


def _pending_retry(url: str, element: str, key: str) -> float | None:
    """The pending delete's next retry time less the database's now (None: no row)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT next_retry - extract(epoch from clock_timestamp()) FROM pending "
            "WHERE element = %s AND collection = 'users' AND key = %s",
            (element, key),
        ).fetchone()
    return None if row is None else float(row[0])


def _step(clock: Path, offset: float) -> None:
    set_clock(clock, offset)
    seen = clock.with_name(clock.name + ".seen")
    wait_for(f"A's wall clock at {offset:+.0f} s", lambda: float(seen.read_text()) == offset)


def test_a_retry_stamped_hours_ahead_by_a_replicas_clock_is_retried_once_it_is_put_right(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server, watches: list[Watch]
) -> None:
    url = pg_server.url(pg_server.new_database())
    c = make_cluster(tmp_path, four_sims, url, LEASE, users=3)
    clock = tmp_path / "a-clock"
    set_clock(clock, 2 * HOUR)
    replicas = [c.start(), c.start(wall_clock=clock)]
    watches += replicas
    held = wait_for("the elements spread over both", lambda: c.spread(replicas[0], replicas))
    wait_for("Ann everywhere", lambda: c.all_named("Ann"), timeout=120)
    hosts = [s.name for s in four_sims if s.type == "mivb"]
    a_id = replicas[1].status()["watch"]["replica"]["id"]
    # A call server A holds, and one B holds.
    old, new = next((x, y) for x in hosts for y in hosts if held[x] == a_id and held[y] != a_id)
    a, b = by_pid(replicas, held[old]), by_pid(replicas, held[new])
    assert a is replicas[1] and b is replicas[0]
    sims = {s.name: s for s in four_sims}
    user = f"user{hosts.index(old)}"  # write_config hosts user n on hosts[n % 3]
    assert _has(sims[old], "users", user) and not _has(sims[new], "users", user)

    # The new host is down: A holds the user's delete back, stamped by its clock.
    sims[new].admin("/admin/faults", {"offline": True})
    _commit_move(c, user, old, new)

    def stamped_ahead() -> bool:
        ahead = _pending_retry(url, old, user)
        return ahead is not None and ahead > HOUR

    wait_for(f"{old}'s delete pending, its retry stamped hours ahead", stamped_ahead)
    # A's clock is put right; then the new host comes back and B creates the user there.
    mark_a = a.mark()
    _step(clock, 0.0)
    sims[new].admin("/admin/faults", {"offline": False})
    wait_for(f"{user} on {new}", lambda: _has(sims[new], "users", user), timeout=120)
    # Its old host's delete goes out in bounded time, not two hours later.
    wait_for(f"{user} gone from {old}", lambda: not _has(sims[old], "users", user), timeout=120)
    wait_for("no pending delete left", lambda: _pending_retry(url, old, user) is None)
    # A says so if it read its row still stamped ahead. It need not: A retries
    # the held delete every few seconds while the new host is down, and a run
    # of A's going on across the step stamps the row again with the right
    # clock before A's timer reads it (3 of 9 runs at load ~20 said nothing).
    said = [e for e in a.logs[mark_a:] if e.get("event") == "retry_time_ahead"]
    assert all(e["level"] == "warning" and e["element"] == old for e in said), said
    # A's row is A's to retry: B (its clock right) never reads it as due.
    assert b.events("retry_time_ahead") == []

    def all_completed(w: Watch) -> bool:
        doc: dict[str, Any] = w.status()
        said = {e: doc["elements"][e]["status"] for e in c.elements()}
        return set(said.values()) == {"Sync Completed"}

    wait_for("every element Sync Completed", lambda: all(all_completed(w) for w in replicas))
