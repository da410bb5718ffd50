"""Replicas of `provgit watch` on one PostgreSQL journal: the setup the replica
tests and the failover benchmark share (real PostgreSQL, simulators, processes)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from apply.helpers import Sim, write_config

from .helpers import Watch, commit_all, make_repo, start_watch, start_watch_with_wall_clock

T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 120.0) -> T:
    """Poll `check` until it returns something truthy (bounded); its value.
    The default bound is for a loaded machine (a first commit of 40 users at
    load 30+ on 2 cores, before the replicas reach their fair shares)."""
    end = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = check()
        except (AssertionError, OSError, ValueError, KeyError) as e:
            value, last = None, e
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"not within {timeout} s: {what} (last: {last!r})")
        time.sleep(0.05)


def sim_changes(sim: Sim, since: int = 0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        with urllib.request.urlopen(f"{sim.url}/v1/changes?since={since}", timeout=10) as r:
            body = json.loads(r.read())
        out += body["changes"]
        if not body["more"]:
            return out
        since = body["revision"]


def sim_revision(sim: Sim) -> int:
    with urllib.request.urlopen(f"{sim.url}/v1/element", timeout=10) as r:
        return int(json.loads(r.read())["revision"])


def fences(sim: Sim) -> dict[str, Any]:
    with urllib.request.urlopen(f"{sim.url}/admin/fences", timeout=10) as r:
        report: dict[str, Any] = json.loads(r.read())
    return report


def fenced_put(sim: Sim, fence: str, key: str) -> tuple[int, dict[str, Any]]:
    """A create of `cos/<key>` sent with the fencing header `fence`."""
    request = urllib.request.Request(
        f"{sim.url}/v1/collections/cos/records/{key}",
        data=json.dumps({"number": int(key), "comment": "stale"}).encode(),
        method="PUT",
        headers={
            "Content-Type": "application/json",
            "If-None-Match": "*",
            "X-Provgit-Fence": fence,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def written_twice(sim: Sim, since: int) -> dict[tuple[str, str], int]:
    """Records the element changed more than once after revision `since`."""
    counts: dict[tuple[str, str], int] = {}
    for c in sim_changes(sim, since):
        key = (c["collection"], c["key"])
        counts[key] = counts.get(key, 0) + 1
    return {k: n for k, n in counts.items() if n > 1}


def rewritten_unchanged(sim: Sim) -> list[tuple[str, str, int]]:
    """(collection, key, revision) of every write, over the element's whole
    history, that put a record back with the fields it already had (the
    element's own `_…` bookkeeping aside): a record written twice, whatever
    the rounds of a test around it."""
    last: dict[tuple[str, str], Any] = {}
    found = []
    for c in sim_changes(sim):
        key = (c["collection"], c["key"])
        fields = c["fields"] if c["op"] == "put" else None
        own = None if fields is None else {k: v for k, v in fields.items() if k[0] != "_"}
        if key in last and own is not None and last[key] == own:
            found.append((*key, int(c["revision"])))
        last[key] = own
    return found


def current_names(sim: Sim) -> set[str]:
    """The first names the element's records carry now: a user's `first_name`
    and the first name in a `directory_name` ("Last, First"), which the
    remote directory entries of users hosted elsewhere carry too."""
    latest: dict[tuple[str, str], dict[str, Any] | None] = {}
    for c in sim_changes(sim):
        latest[(c["collection"], c["key"])] = c["fields"] if c["op"] == "put" else None
    names = set()
    for fields in latest.values():
        if not fields:
            continue
        if fields.get("first_name"):
            names.add(fields["first_name"])
        if fields.get("directory_name"):
            names.add(str(fields["directory_name"]).rsplit(", ", 1)[-1])
    return names


@dataclass
class Cluster:
    """One network (a git repository), its simulators and a PostgreSQL journal."""

    tmp: Path
    sims: list[Sim]
    journal_url: str
    lease_seconds: float
    users: int
    bare: Path
    work: Path
    started: list[Watch]
    extra: str = ""  # more of provgit.yaml
    count: int = 0

    def commit(self, first_name: str) -> str:
        write_config(
            self.work,
            self.sims,
            users=self.users,
            embedded_mcl=False,
            first_name=first_name,
            extra_settings=self.extra,
        )
        return commit_all(self.work, f"users named {first_name}")

    def start(self, *extra: str, wall_clock: Path | None = None) -> Watch:
        """A replica (`wall_clock`: its wall clock's offset file, see
        start_watch_with_wall_clock)."""
        self.count += 1
        args = [
            "--repo",
            str(self.bare),
            "--ref",
            "main",
            "--state-dir",
            str(self.tmp / f"replica{self.count}"),
            "--resync-seconds",
            "0",
            "--fetch-seconds",
            "0.3",
            "--allow-mass-update",
            "--lease-seconds",
            str(self.lease_seconds),
            *extra,
        ]
        env = {"PROVGIT_JOURNAL_URL": self.journal_url}
        if wall_clock is None:
            w = start_watch(args, env=env)
        else:
            w = start_watch_with_wall_clock(wall_clock, args, env=env)
        w.journal_url = self.journal_url
        self.started.append(w)
        return w

    def holders(self, w: Watch) -> dict[str, str | None]:
        replica = w.status()["watch"]["replica"]
        return {e: h for e, h in replica["holders"].items() if not e.startswith("@")}

    def elements(self) -> list[str]:
        return [s.name for s in self.sims]

    def spread(self, w: Watch, replicas: Sequence[Watch]) -> dict[str, str] | None:
        """The holders (as `w` reads them) once every element is held and each
        replica holds its fair share: between floor and ceil of elements over
        replicas. Not at the first moment each holds one: a replica still
        above its share (3 of 4, say) hands one back at a later round, and a
        holder read then would not last."""
        holders = self.holders(w)
        pids = [str(r.proc.pid) for r in replicas]
        held = {e: h for e, h in holders.items() if h is not None}
        if set(held) != set(self.elements()):
            return None
        counts = Counter(h.split(":")[1] for h in held.values())
        if set(counts) != set(pids):
            return None
        low, high = len(held) // len(pids), -(-len(held) // len(pids))
        if not all(low <= n <= high for n in counts.values()):
            return None
        return held

    def agreed(self, replicas: Sequence[Watch], held: dict[str, str]) -> bool:
        """Every replica names `held`'s holders (each reads the lease table at
        its own rounds, up to a tick apart)."""
        return all(self.holders(w) == held for w in replicas)

    def all_named(self, name: str) -> bool:
        """Every record that carries a first name carries `name`: the commit
        is applied in full. (The users alone are not enough: the remote
        directory entries are written after them, and a round that starts
        counting writes before those land counts them against itself.)"""
        return all(current_names(s) == {name} for s in self.sims)


def make_cluster(
    tmp: Path,
    sims: list[Sim],
    journal_url: str,
    lease_seconds: float,
    users: int,
    extra: str = "",
) -> Cluster:
    """A repository with a first commit (users named Ann) for `sims`."""
    bare, work = make_repo(tmp)
    c = Cluster(tmp, sims, journal_url, lease_seconds, users, bare, work, [], extra)
    c.commit("Ann")
    return c


def by_pid(replicas: Sequence[Watch], replica_id: str) -> Watch:
    pid = int(replica_id.split(":")[1])
    return next(w for w in replicas if w.proc.pid == pid)


def lease_rows(url: str) -> dict[str, tuple[str | None, int]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT element, holder, token FROM replica_leases").fetchall()
    return {e: (h, int(t)) for e, h, t in rows}
