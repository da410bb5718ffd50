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

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from apply.helpers import Sim, write_config
from apply.test_number_swaps import _set_users, _wanted
from journal import pg

from .helpers import Watch, commit_all
from .replica_helpers import (
    Cluster,
    by_pid,
    make_cluster,
    rewritten_unchanged,
    sim_changes,
    wait_for,
)

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


def dn(n: int) -> str:
    return str(3000 + n)  # write_config: user n on hosts[n % 3] with 3000 + n


@dataclass
class Swapping:
    """Two replicas with their elements spread, the first commit applied: x
    and y call servers held by different replicas, z the third."""

    c: Cluster
    replicas: list[Watch]
    x: str
    y: str
    z: str
    held: dict[str, str]  # element -> the replica holding it

    def index(self, host: str) -> int:
        return [s.name for s in self.c.sims if s.type == "mivb"].index(host)


def _started(tmp_path: Path, four_sims: list[Sim], url: str, watches: list[Watch]) -> Swapping:
    c = make_cluster(tmp_path, four_sims, url, LEASE, users=9)
    replicas = [c.start(), c.start()]
    watches += replicas
    held = wait_for("the elements spread over both", lambda: c.spread(replicas[0], replicas))
    wait_for("Ann everywhere", lambda: c.all_named("Ann"), timeout=180)
    hosts = [s.name for s in four_sims if s.type == "mivb"]
    x, y = next((p, q) for p in hosts for q in hosts if held[p] != held[q])
    z = next(h for h in hosts if h not in (x, y))
    assert by_pid(replicas, held[x]) is not by_pid(replicas, held[y])
    return Swapping(c, replicas, x, y, z, held)


def _commit(s: Swapping, users: dict[str, tuple[str, str]], message: str) -> str:
    write_config(s.c.work, s.c.sims, users=s.c.users, embedded_mcl=False, first_name="Ann")
    _set_users(s.c.work, users)
    return commit_all(s.c.work, message)


def _converge(s: Swapping, commit: str) -> None:
    """Wait (bounded) until every call server holds what the config wants
    and every element says Sync Completed, checking at every look that every
    user is on some call server, that no spare rings two users, and that no
    element says Sync Completed holding anything else. Nothing written twice."""
    c, replicas = s.c, s.replicas
    wanted = _wanted(c.work)
    sims = {sim.name: sim for sim in c.sims}
    hosts = [sim.name for sim in c.sims if sim.type == "mivb"]
    logins = {k for users in wanted.values() for k in users}
    numbers = {dn(n) for n in range(c.users)}
    said: dict[str, object] = {}

    def everywhere() -> dict[str, dict[str, str]]:
        """What each call server holds; every user on one of them (read
        twice before saying one is on none: a move between two reads)."""
        for _ in range(2):
            now = {h: _held(sims[h]) for h in hosts}
            if all(any(k in users for users in now.values()) for k in logins):
                return now
        raise RuntimeError(f"a user on no call server: {now}")  # not retried by wait_for

    def one_per_spare() -> None:
        """A spare number rings one user: no two users hold it, on any element."""
        on: dict[str, set[str]] = {}
        for sim in c.sims:
            for login, number in _held(sim).items():
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
    for sim in c.sims:
        assert rewritten_unchanged(sim) == [], sim.name


def test_swaps_across_hosts_held_by_different_replicas_converge(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server, watches: list[Watch]
) -> None:
    s = _started(tmp_path, four_sims, pg_server.url(pg_server.new_database()), watches)
    ix, iy, iz = s.index(s.x), s.index(s.y), s.index(s.z)
    users = {
        # A swap across hosts held by different replicas.
        f"user{ix}": (s.y, dn(iy)),
        f"user{iy}": (s.x, dn(ix)),
        # A plain swap on one element.
        f"user{iz}": (s.z, dn(iz + 3)),
        f"user{iz + 3}": (s.z, dn(iz)),
        # A rotation of three over the three call servers.
        f"user{ix + 6}": (s.y, dn(iy + 6)),
        f"user{iy + 6}": (s.z, dn(iz + 6)),
        f"user{iz + 6}": (s.x, dn(ix + 6)),
    }
    commit = _commit(s, users, "swaps across replicas, on one element, and a rotation of three")
    _converge(s, commit)


def test_a_swap_across_replicas_waits_while_another_element_is_unread_and_says_so(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server, watches: list[Watch]
) -> None:
    """The whole network's plan needs every element read: the replica that
    does not hold the third call server, down, plans its half as it is (no
    spare picked half blind) and its log says which element it waits for,
    and so does the status (its element's, each user's there, the pending
    updates: it was "held until cs2 has it", which cs2 never would); once
    that answers, the swap ends and the status no longer says it."""
    s = _started(tmp_path, four_sims, pg_server.url(pg_server.new_database()), watches)
    third = next(sim for sim in s.c.sims if sim.name == s.z)
    # `mine`: the host of the blind replica, which does not hold the third.
    mine, other = (s.x, s.y) if s.held[s.y] == s.held[s.z] else (s.y, s.x)
    blind = by_pid(s.replicas, s.held[mine])
    # The first user by key leaves `mine`: the whole plan's step is on `mine`
    # (plan/swaps.py), so the replica holding the third cannot take it either.
    first, second = f"user{s.index(mine)}", f"user{s.index(other) + 3}"
    users = {first: (other, dn(s.index(other) + 3)), second: (mine, dn(s.index(mine)))}
    third.admin("/admin/faults", {"offline": True})
    mark = blind.mark()
    commit = _commit(s, users, "a swap")
    line = blind.wait_log("swap_waits_unread", after=mark, timeout=120)
    assert line["elements"] == [s.z], line
    unread = f"waits for {s.z}, which did not answer"

    def says_why() -> dict[str, Any] | None:
        doc = blind.status()
        return doc if unread in doc["elements"][mine]["status"] else None

    doc = wait_for("the status says what the swap waits for", says_why, timeout=120)
    assert doc["elements"][mine]["status"].startswith("Move pending: "), doc["elements"][mine]
    resources = {r["resource"]: r for r in doc["resources"] if r["kind"] == "users"}
    for user, partner in ((first, f"users/{second}"), (second, f"users/{first}")):
        here = resources[user]["elements"][mine]
        assert here["status"] == f"Number swap with {partner} {unread}", here
        assert here["swap"] == {"with": partner, "unread": [s.z]}, here
        assert f"; number swap with {partner} on {mine} {unread}" in resources[user]["status"]
    waiting = [p for p in doc["pending_updates"] if p["element"] == mine]
    assert any(unread in p["last_error"] for p in waiting), waiting
    third.admin("/admin/faults", {"offline": False})
    _converge(s, commit)

    def over(w: Watch) -> bool:
        """Nothing says it waits any more (the events keep what happened)."""
        doc = w.status()
        return "did not answer" not in json.dumps(
            [doc["elements"], doc["resources"], doc["pending_updates"]]
        )

    for w in s.replicas:
        wait_for("the status no longer says the swap waits", lambda: over(w), timeout=60)  # noqa: B023
