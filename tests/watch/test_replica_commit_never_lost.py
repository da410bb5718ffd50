"""A commit a replica loaded reaches every element (issue #19: the reconciler
never loses an update). Replicas learn each new commit from the leader, which
publishes it in the shared journal (`watch.leader_commit`): one the leader
loaded but did not publish reached none of the other replicas' elements; and
one a replica loaded in a run that stopped before applying it (cut off from
the database) was never applied by it, the ref staying where it was.

The replica under test runs in this process, so the test can make its lease
lapse on its own clock, or a round with the database fail, at a chosen
instant (what a late renewal on a loaded machine, or a cut-off, does); the
other replica is a real `provgit watch` process; real PostgreSQL, real
simulators.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from apply.helpers import Sim
from journal import pg
from provgit.api.watching import LEADER, ConfigSource, Journal, PlanOptions
from provgit.journal import location
from provgit.watch.logs import Log
from provgit.watch.loop import LOOK_ONLY, Watcher, WatchOptions
from provgit.watch.replicas import Replica

from .helpers import TOKEN, Watch
from .replica_helpers import Cluster, make_cluster

pytestmark = pytest.mark.slow
# Long enough that a loaded machine does not let the leader's lease expire in
# the database: only the lapse the test makes on the leader's clock happens.
LEASE = 10.0


async def _until(what: str, check: Callable[[], object], timeout: float = 60.0) -> None:
    """Poll `check` off the loop until truthy (bounded): the watcher keeps running."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    last: object = None
    while True:
        try:
            if await asyncio.to_thread(check):
                return
        except (AssertionError, OSError, ValueError, KeyError) as e:
            last = e
        if loop.time() > end:
            raise AssertionError(f"not within {timeout} s: {what} (last: {last!r})")
        await asyncio.sleep(0.05)


def _published(url: str) -> str | None:
    """The commit the leader published for the other replicas."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT v FROM meta WHERE k LIKE 'watch.leader_commit:%'").fetchone()
    return None if row is None else str(row[0])


def _in_process_replica(c: Cluster, log: io.StringIO) -> Watcher:
    location.use_journal_url(c.journal_url)
    options = WatchOptions(
        config=c.tmp / "unused",
        state_dir=c.tmp / "leader",
        repo=str(c.bare),
        ref="main",
        resync_seconds=0,
        fetch_seconds=0.3,
        lease_seconds=c.lease_seconds,
        token=TOKEN,
        plan=PlanOptions(allow_updates=True),
    )
    return Watcher(options, Log("json", stream=log))


def _after_loading(leader: Watcher, then: Callable[[Replica], None]) -> list[str]:
    """`then(replica)` right after the next commit the watcher loads (nothing
    of its runs in between), once: the commit it did that for. Once, not at
    every load: a lease lapsed at every load is never renewed in time to
    publish, and the leader swings between its commit and the published one."""
    assert leader.replica is not None
    replica, tracker = leader.replica, leader.config
    consider = tracker._consider
    loaded: list[str] = []

    async def consider_then(source: ConfigSource, label: str, journal: Journal) -> bool:
        valid = await consider(source, label, journal)
        if valid and source.commit and not loaded:
            then(replica)
            loaded.append(source.commit)
        return valid

    tracker._consider = consider_then  # type: ignore[method-assign]
    return loaded


def _lapsed_while_loading(leader: Watcher) -> list[str]:
    """The leader's lease lapses on its own clock while it loads the next
    commit, and a round renews it right after: lapsed from the moment the
    commit is loaded to the end of that read of the ref, nothing else (no
    await in between, so no round of the ticker undoes it first). The
    commit loaded so, once. Deterministic: a leader that publishes only as
    it loads a commit never publishes this one (3e0f86d's lost update)."""
    assert leader.replica is not None
    replica, tracker = leader.replica, leader.config
    consider, refresh = tracker._consider, tracker._refresh_git
    loaded: list[str] = []
    lapsed: list[float] = []

    async def consider_then_lapse(source: ConfigSource, label: str, journal: Journal) -> bool:
        valid = await consider(source, label, journal)
        if valid and source.commit and not loaded:
            held = replica.held[LEADER]
            lapsed.append(held.valid_until)
            held.valid_until = 0.0
            loaded.append(source.commit)
        return valid

    async def refresh_then_renew(look: bool, reload: bool, journal: Journal) -> bool:
        try:
            return await refresh(look, reload, journal)
        finally:
            if lapsed:
                replica.held[LEADER].valid_until = lapsed.pop()

    tracker._consider = consider_then_lapse  # type: ignore[method-assign]
    tracker._refresh_git = refresh_then_renew  # type: ignore[method-assign]
    return loaded


def _cut_off(replica: Replica) -> None:
    """What a round with the database failing right then leaves (the next
    round, which the database answers, makes it healthy again)."""
    replica.connected = False


def _run(leader: Watcher, log: io.StringIO, body: Callable[[], Awaitable[None]], out: Path) -> None:
    """Run the in-process watcher while `body` runs; it must stop cleanly."""

    async def main() -> None:
        ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(leader.run(ready.set_result))
        try:
            await asyncio.wait_for(ready, 60)
            await body()
        finally:
            leader.stop()
            await asyncio.wait_for(task, 60)

    try:
        asyncio.run(main())
    finally:
        out.write_text(log.getvalue())
    lines: list[dict[str, Any]] = [json.loads(x) for x in log.getvalue().splitlines()]
    events = [x["event"] for x in lines]
    assert "run_crashed" not in events and events[-1] == "watch_stopped", lines[-10:]


def test_a_commit_the_leader_loaded_while_its_lease_lapsed_reaches_every_replica(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server, watches: list[Watch]
) -> None:
    url = pg_server.url(pg_server.new_database())
    c = make_cluster(tmp_path, four_sims, url, LEASE, users=3)
    log = io.StringIO()
    leader = _in_process_replica(c, log)
    assert leader.replica is not None
    replica = leader.replica

    def other_holds() -> list[str]:
        held: list[str] = other[0].status()["watch"]["replica"]["holds"]
        return held

    other: list[Watch] = []

    async def body() -> None:
        await _until("the in-process replica leads", lambda: replica.leader)
        other.append(c.start())
        watches.append(other[0])
        await _until("both replicas hold elements", lambda: other_holds() and replica.writable())
        # A commit the leader loads as leader: published for the other replica.
        bea = await asyncio.to_thread(c.commit, "Bea")
        await _until("the leader published Bea", lambda: _published(url) == bea, timeout=120)
        await _until("Bea everywhere", lambda: c.all_named("Bea"), timeout=120)
        token = replica.held[LEADER].token
        lapsed = _lapsed_while_loading(leader)
        eve = await asyncio.to_thread(c.commit, "Eve")
        await _until("the leader loaded the commit", lambda: eve in lapsed)
        # The other replica applies the commit to its elements only once the
        # leader published it: on a later read of the ref, that finds it unmoved.
        await _until(
            f"every element named Eve (the other replica holds {other_holds()})",
            lambda: c.all_named("Eve"),
        )
        assert _published(url) == eve
        # The database never took the lease away: the next round renewed it.
        await _until(
            "the leader leads again", lambda: replica.leader and replica.held[LEADER].token == token
        )

    _run(leader, log, body, tmp_path / "leader.jsonl")


def test_a_commit_loaded_as_the_replica_was_cut_off_is_applied_once_it_answers(
    tmp_path: Path, four_sims: list[Sim], pg_server: pg.Server
) -> None:
    # The journal answered the read that found the commit, the round with the
    # database just before the run did not (cut off, or back a moment ago and
    # no round has told yet): the run stops before applying anything. The
    # commit is loaded; the next fetch finds the ref where it was.
    url = pg_server.url(pg_server.new_database())
    c = make_cluster(tmp_path, four_sims, url, LEASE, users=3)
    log = io.StringIO()
    watcher = _in_process_replica(c, log)
    assert watcher.replica is not None
    replica = watcher.replica

    async def body() -> None:
        await _until("the first commit everywhere", lambda: c.all_named("Ann"), timeout=120)
        # Idle, and asked only to look at the ref (as between commits): the
        # run that finds the commit is one that only looked.
        await _until(
            "the watcher is idle",
            lambda: watcher.task is None and watcher.requests <= LOOK_ONLY,
            timeout=120,
        )
        loaded = _after_loading(watcher, _cut_off)
        bea = await asyncio.to_thread(c.commit, "Bea")
        await _until("the replica loaded the commit", lambda: bea in loaded)
        await _until("the replica answers again", lambda: replica.healthy)
        await _until("every element named Bea", lambda: c.all_named("Bea"))

    _run(watcher, log, body, tmp_path / "watcher.jsonl")
