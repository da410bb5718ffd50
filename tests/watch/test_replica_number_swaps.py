"""Number swaps across replicas (issue #19, plan/swaps.py): users trading
numbers while their call servers are held by different replicas of `provgit
watch` on one PostgreSQL journal. One commit holds a swap across two hosts
held by different replicas (each user moves to the other's host and takes
its number), a plain swap on one element, and a rotation of three over the
three call servers. Each replica plans only what it holds, so the cycle
across hosts was never seen whole: each delete waited for the other host's
create, each create for the other host's delete ("Move pending ... held
until cs2 has it"), for ever. It converges now, with every user on some
call server at every moment, no record written twice, and no element saying
Sync Completed while it holds what the config does not want. Real
PostgreSQL, real simulators, real watch processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from apply.helpers import Sim, write_config
from apply.test_number_swaps import _set_users, _wanted
from journal import pg

from .helpers import Watch, commit_all
from .replica_helpers import by_pid, make_cluster, rewritten_unchanged, sim_changes, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
LEASE = 20.0  # no lease is waited out: the elements spread by hand-backs


def _held(sim: Sim) -> dict[str, str]:
    """Login -> DN of every user `sim` holds now."""
    latest: dict[str, str | None] = {}
    for c in sim_changes(sim):
        if c["collection"] == "users":
            fields = c["fields"] if c["op"] == "put" else None
            latest[c["key"]] = None if not fields else str(fields["services"][0]["dn"])
    return {k: dn for k, dn in latest.items() if dn is not None}


def test_swaps_across_hosts_held_by_different_replicas_converge(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server, watches: list[Watch]
) -> None:
    url = pg_server.url(pg_server.new_database())
    c = make_cluster(tmp_path, four_sims, url, LEASE, users=9)
    replicas = [c.start(), c.start()]
    watches += replicas
    held = wait_for("the elements spread over both", lambda: c.spread(replicas[0], replicas))
    wait_for("Ann everywhere", lambda: c.all_named("Ann"), timeout=180)
    hosts = [s.name for s in four_sims if s.type == "mivb"]
    x, y = next((p, q) for p in hosts for q in hosts if held[p] != held[q])
    z = next(h for h in hosts if h not in (x, y))
    assert by_pid(replicas, held[x]) is not by_pid(replicas, held[y])
    ix, iy, iz = hosts.index(x), hosts.index(y), hosts.index(z)

    def dn(n: int) -> str:
        return str(3000 + n)  # write_config: user n on hosts[n % 3] with 3000 + n

    write_config(c.work, c.sims, users=c.users, embedded_mcl=False, first_name="Ann")
    _set_users(
        c.work,
        {
            # A swap across hosts held by different replicas.
            f"user{ix}": (y, dn(iy)),
            f"user{iy}": (x, dn(ix)),
            # A plain swap on one element.
            f"user{iz}": (z, dn(iz + 3)),
            f"user{iz + 3}": (z, dn(iz)),
            # A rotation of three over the three call servers.
            f"user{ix + 6}": (y, dn(iy + 6)),
            f"user{iy + 6}": (z, dn(iz + 6)),
            f"user{iz + 6}": (x, dn(ix + 6)),
        },
    )
    commit = commit_all(c.work, "swaps across replicas, on one element, and a rotation of three")
    wanted = _wanted(c.work)
    sims = {s.name: s for s in four_sims}
    logins = {k for users in wanted.values() for k in users}
    said: dict[str, object] = {}

    def everywhere() -> dict[str, dict[str, str]]:
        """What each call server holds; every user on one of them (read
        twice before saying one is on none: a move between two reads)."""
        for _ in range(2):
            now = {h: _held(sims[h]) for h in hosts}
            if all(any(k in users for users in now.values()) for k in logins):
                return now
        raise RuntimeError(f"a user on no call server: {now}")  # not retried by wait_for

    numbers = {dn(n) for n in range(c.users)}

    def one_per_spare() -> None:
        """A spare number rings one user: no two users hold it, on any element."""
        on: dict[str, set[str]] = {}
        for s in four_sims:
            for login, number in _held(s).items():
                if number not in numbers:
                    on.setdefault(number, set()).add(login)
        shared = {number: users for number, users in on.items() if len(users) > 1}
        if shared:
            raise RuntimeError(f"spare numbers held by two users at once: {shared}")

    def converged() -> bool:
        docs = [w.status() for w in replicas]
        now = everywhere()
        one_per_spare()
        if not all((d["watch"]["last_run"] or {}).get("commit") == commit for d in docs):
            return False  # an element's status may still be the first commit's
        for doc in docs:
            me = doc["watch"]["replica"]["id"]
            # Each element's word from the replica holding it (another's page
            # may show a row read a moment before).
            mine = {e: d for e, d in doc["elements"].items() if d.get("holder") == me}
            said.update({e: d["status"] for e, d in mine.items() if e in c.elements()})
            for h in hosts:
                if h in mine and mine[h]["status"] == "Sync Completed" and now[h] != wanted[h]:
                    raise RuntimeError(f"{h} says Sync Completed holding {now[h]}, not {wanted[h]}")
        done = set(said) == set(c.elements()) and set(said.values()) == {"Sync Completed"}
        return now == {h: wanted[h] for h in hosts} and done

    try:
        wait_for("every swap done, every element Sync Completed", converged, timeout=360)
    except AssertionError as e:
        raise AssertionError(f"{e}; the statuses said: {said}") from None
    for s in four_sims:
        assert rewritten_unchanged(s) == [], s.name
