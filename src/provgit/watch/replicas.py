"""Replicas of one network's watcher on a shared PostgreSQL journal (issue #19).

Any number of `provgit watch` processes may share a PostgreSQL journal. Each
holds leases (journal/leases.py) on a fair share of the network's elements and
applies only those; one of them also holds the leader's lease and is the one
that follows the git ref. Every `tick` a replica, in one round trip to the
database: says it is alive, renews what it holds, claims free or expired
elements up to its share (the elements divided by the live replicas), hands
back what it holds beyond its share when it is not writing to it, and tries
for the leader's lease.

A lease is good for `lease_seconds` on the database's clock; this process
stops writing to an element `margin` seconds before that, counted on its own
clock from when the renewal was sent (`valid`). So a replica cut off from the
database stops before its leases can expire and another replica take them;
the fencing token it sends with each write (`fence`) makes the element refuse
it should a write be late all the same. While cut off it says so (log,
`/healthz` 503, the status), and once the database answers again it claims
elements afresh, with new tokens.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from provgit.api.watching import (
    LEADER,
    Fences,
    Lease,
    LeaseDbError,
    LeaseStore,
    lease_ops,
)
from provgit.watch.lease_keeper import LeaseKeeper
from provgit.watch.logs import Log
from provgit.watch.loop_lag import LoopLag
from provgit.wire.protocol import Driver, FencedError, ForwardingDriver, WriteOp, WriteResult

DEFAULT_LEASE_SECONDS = 15.0


@dataclass
class Held:
    token: int
    valid_until: float  # time.monotonic(): no write to the element after this


@dataclass
class Round:
    """What one round with the database came to."""

    renewed: set[str]
    claimed: dict[str, int]
    released: set[str]
    leases: dict[str, Lease]
    replicas: list[str]
    # Seconds until another replica's lease on an element of ours expires (None: none).
    next_expiry: float | None = None


@dataclass
class Snapshot:
    """The replica's state as the status shows it (no secrets, no clocks)."""

    replica: str
    leader: bool
    healthy: bool
    error: str | None
    held: list[str]
    holders: dict[str, str | None] = field(default_factory=dict)
    replicas: list[str] = field(default_factory=list)


def new_replica_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(2).hex()}"


def claim_order(replica: str, element: str) -> str:
    # Each replica tries the free elements in its own order: two replicas
    # claiming at once mostly reach for different ones.
    return hashlib.sha256(f"{replica}/{element}".encode()).hexdigest()


def starved(table: dict[str, Lease], elements: frozenset[str], live: list[str], me: str) -> bool:
    """A live replica holds fewer than its floor share while `me` holds the
    most (ties: the first id): `me` hands one element over. One replica per
    round gives, so the elements do not all move at once."""
    if len(live) < 2:
        return False
    counts = dict.fromkeys(live, 0)
    for e in elements:
        lease = table.get(e)
        if lease is not None and lease.live and lease.holder in counts:
            counts[lease.holder] += 1
    floor = len(elements) // len(live)
    if min(counts.values()) >= floor or counts.get(me, 0) <= floor:
        return False
    most = max(counts.values())
    return me == min(r for r, n in counts.items() if n == most)


class Replica:
    def __init__(
        self,
        url: str,
        password: str | None,
        lease_seconds: float,
        log: Log,
        on_change: Callable[[str], None],
        schema: str | None = None,
        replica_id: str | None = None,
        keeper: bool = False,
    ) -> None:
        self.id = replica_id or new_replica_id()
        self.lease_seconds = lease_seconds
        self.log = log
        self.on_change = on_change
        self.store = LeaseStore(url, password, timeout=self.margin, schema=schema)
        self.held: dict[str, Held] = {}
        self.elements: frozenset[str] = frozenset()  # the network's (from the config)
        # What the runs going on write to (a run and a takeover's, disjoint).
        self.busy: frozenset[str] = frozenset()
        self.url: str | None = None  # the status server's, shown to the other replicas
        self.connected = True
        self.error: str | None = None
        self.stopped_writes = False
        self.leases: dict[str, Lease] = {}
        self.replicas: list[str] = []
        # One round at a time (the renewal thread's, a run's first claim), and
        # no run begins on an element while a round may hand it over.
        self._round_lock = threading.Lock()
        self._busy_lock = threading.Lock()
        self._next_expiry: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # told of claims (on_change)
        self._context = contextvars.copy_context()
        # The lease keeper process (lease_keeper.py): renews what this replica
        # holds while its interpreter cannot (a long collection holding the GIL).
        self.keeper = (
            LeaseKeeper(self.id, url, password, schema, lease_seconds, self.margin, log)
            if keeper
            else None
        )

    @property
    def margin(self) -> float:
        """Writes stop this long before a lease could expire."""
        return max(0.5, self.lease_seconds / 5)

    @property
    def tick(self) -> float:
        return min(1.0, self.lease_seconds / 5)

    @property
    def leader(self) -> bool:
        return self.valid(LEADER) is not None

    @property
    def healthy(self) -> bool:
        return self.connected

    def valid(self, element: str) -> Held | None:
        """The lease on `element` if this replica may still write to it: by its
        own rounds, or, when those could not run (the GIL held) while the
        database answered them, by its keeper's renewals of the same token."""
        held = self.held.get(element)
        if held is None:
            return None
        now = time.monotonic()
        if now < held.valid_until:
            return held
        if self.keeper is None or not self.connected or self.stopped_writes:
            return None  # the stricter view wins: cut off or lapsed, no write
        kept = self.keeper.renewed().get(element)
        if kept is None or kept[0] != held.token or now >= kept[1]:
            return None
        # Not kept in `held`: once its own rounds say it is cut off, this view
        # no longer counts.
        return held

    def fence(self, element: str) -> str | None:
        held = self.valid(element)
        return None if held is None else f"{element}/{held.token}"

    def fences(self, run_tokens: Callable[[], dict[str, int] | None]) -> Fences:
        """What this replica's journal writes about an element are conditional
        on: the token it holds the element's lease with, checked by the
        database in the write's transaction (a late row of a replica that lost
        the lease is dropped, never put over the new holder's). `run_tokens`:
        the tokens the run writing through this journal began with (None: no
        run), so each run is fenced by its own leases."""

        def token(element: str) -> int | None:
            held = self.held.get(element)
            if held is None:
                return None
            tokens = run_tokens()
            if tokens is not None and tokens.get(element) != held.token:
                # Claimed again since the run began: what the run journals
                # was seen under the lease it lost, so it is dropped too.
                return None
            return held.token

        def dropped(element: str, what: str) -> None:
            self.log.warning(
                "journal_write_dropped",
                replica=self.id,
                element=element,
                write=what,
                reason="the lease moved to another replica, which writes it",
            )

        return Fences(self.id, token, dropped)

    def writable(self) -> list[str]:
        """The elements this replica applies now."""
        return sorted(e for e in self.held if e != LEADER and self.valid(e) is not None)

    def begin(self, elements: Sequence[str]) -> dict[str, int]:
        """A run starts writing to those of `elements` still held and not busy: kept (not
        handed over) until `end`; the tokens it writes under. Waits for a
        round going on (the renewal thread's), which may hand some over: call
        it off the event loop."""
        with self._round_lock, self._busy_lock:
            # Not one another run of ours began on meanwhile (two runs never
            # write to one element).
            tokens = {
                e: h.token
                for e in elements
                if e not in self.busy and (h := self.valid(e)) is not None
            }
            self.busy |= frozenset(tokens)
        return tokens

    def end(self, elements: Sequence[str]) -> None:
        with self._busy_lock:
            self.busy -= frozenset(elements)

    def snapshot(self) -> Snapshot:
        return Snapshot(
            self.id,
            self.leader,
            self.healthy,
            self.error,
            self.writable(),
            {e: (lease.holder if lease.live else None) for e, lease in self.leases.items()},
            list(self.replicas),
        )

    # ---- the rounds ----------------------------------------------------------------

    @property
    def stall_seconds(self) -> float:
        """The renewals go on while the event loop woke within this long: a
        loop held up by a long step keeps its leases, one stuck for good loses
        them (the elements go to another replica)."""
        return 4 * self.lease_seconds

    async def run(self, stop: asyncio.Event, lag: LoopLag | None = None) -> None:
        """Renew, claim and rebalance every tick until `stop` is set: in a
        thread of their own, so a step holding the event loop (a statement
        waiting on a lock, a long derivation) does not delay them past the
        margin. `lag`: the loop's probe (its own when None); while the loop has
        not woken it for `stall_seconds` the thread renews nothing."""
        own = None
        if lag is None:
            lag = LoopLag()
            own = asyncio.create_task(lag.run(), name="replica-loop-lag")
        self._loop = asyncio.get_running_loop()
        self._context = contextvars.copy_context()
        if self.keeper is not None:
            # From the event loop's (main) thread: the keeper's death signal
            # follows the thread that spawned it.
            self.keeper.start()
        halt = threading.Event()
        thread = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._renew, halt, lag),
            name=f"leases-{self.id}",
            daemon=True,
        )
        thread.start()
        try:
            await stop.wait()
        finally:
            halt.set()
            await asyncio.to_thread(thread.join)
            if self.keeper is not None:
                # Before the hand-over (`stop`): nothing renews after it.
                await asyncio.to_thread(self.keeper.close)
            if own is not None:
                own.cancel()
                await asyncio.gather(own, return_exceptions=True)

    def _renew(self, halt: threading.Event, lag: LoopLag) -> None:
        """The renewal thread."""
        stalled = False
        while not halt.is_set():
            if lag.stalled_for() > self.stall_seconds:
                if not stalled:
                    self.log.error(
                        "loop_stalled",
                        replica=self.id,
                        seconds=round(lag.stalled_for(), 1),
                        reason="the event loop does not move: leases are not renewed",
                    )
                stalled = True
                self._lapse()
            else:
                if stalled:
                    self.log.info("loop_moves_again", replica=self.id)
                stalled = False
                self._step_now()
            if self.keeper is not None:
                tokens = {e: h.token for e, h in self.held.items()}
                self.keeper.tell(lag.seen, tokens, self.url)
            wait = self.tick
            if self._next_expiry is not None:
                # A dead replica's lease runs out before the next tick: be there.
                wait = min(wait, max(0.02, self._next_expiry + 0.02))
            halt.wait(wait)

    async def step(self) -> None:
        """One round now (a run's first claim), in a worker thread."""
        await asyncio.to_thread(self._step_now)

    def _step_now(self) -> None:
        with self._round_lock:
            changes = self._step()
        loop = self._loop
        for what in changes:
            if loop is not None:
                loop.call_soon_threadsafe(self.on_change, what, context=self._context)

    def _step(self) -> list[str]:
        """One round (under `_round_lock`); what the loop is told ("lease", "leader")."""
        sent = time.monotonic()
        tokens = {e: h.token for e, h in self.held.items()}
        try:
            r: Round = self.store.call(self._round, tokens, self.elements, self.busy)
        except LeaseDbError as failure:
            self._cut_off(str(failure))
            return []
        if not self.connected:
            self.log.info("journal_reachable", replica=self.id)
        self.connected, self.error, self.stopped_writes = True, None, False
        until = sent + self.lease_seconds - self.margin
        # A new dict, never one changed in place: the loop and the apply
        # threads read `held` while this thread renews.
        held = dict(self.held)
        lost = set(tokens) - r.renewed - r.released
        for e in sorted(lost):
            held.pop(e, None)
            self.log.warning("lease_lost", replica=self.id, element=e)
        for e in r.released:
            held.pop(e, None)
            self.log.info("lease_released", replica=self.id, element=e)
        for e in r.renewed:
            if e in held:
                held[e].valid_until = until
        for e, token in sorted(r.claimed.items()):
            held[e] = Held(token, until)
            self.log.info("lease_claimed", replica=self.id, element=e, token=token)
        self.held = held
        self.leases, self.replicas = r.leases, r.replicas
        self._next_expiry = r.next_expiry
        changes = ["lease"] if set(r.claimed) - {LEADER} else []
        return changes + (["leader"] if LEADER in r.claimed else [])

    def _cut_off(self, error: str) -> None:
        if self.connected:
            self.log.error("journal_unreachable", replica=self.id, error=error)
        self.connected, self.error = False, error
        self._lapse()

    def _lapse(self) -> None:
        """Not renewed: forget the leases past their margin."""
        now = time.monotonic()
        gone = sorted(e for e, h in self.held.items() if now >= h.valid_until)
        if gone:
            # Past the margin: another replica may hold it soon; a later
            # round claims it again with a new token.
            self.held = {e: h for e, h in self.held.items() if e not in gone}
        if gone and not self.stopped_writes:
            self.stopped_writes = True
            self.log.error(
                "writes_stopped",
                replica=self.id,
                elements=[e for e in gone if e != LEADER],
                reason="leases not renewed; they may expire",
            )

    def _round(
        self, db: Any, tokens: dict[str, int], elements: frozenset[str], busy: frozenset[str]
    ) -> Round:
        """One round trip's statements (in the worker thread)."""
        lease_ops.heartbeat(db, self.id, socket.gethostname(), os.getpid(), self.url)
        renewed = lease_ops.renew(db, self.id, tokens, self.lease_seconds)
        live = lease_ops.live_replicas(db, self.lease_seconds)
        table = lease_ops.leases(db)
        mine = {e for e in renewed if e != LEADER}
        gone_from_config = {e for e in mine if e not in elements}
        share = math.ceil(len(elements) / max(1, len(live)))
        keep = mine - gone_from_config
        give = max(0, len(keep) - share)
        if not give and starved(table, elements, live, self.id):
            give = 1
        excess = sorted(keep - busy, key=lambda e: claim_order(self.id, e))[:give]
        released = gone_from_config | set(excess)
        lease_ops.release(db, self.id, released)
        free = sorted(
            (e for e in elements if e not in table or not table[e].live),
            key=lambda e: claim_order(self.id, e),
        )
        claimed: dict[str, int] = {}
        for e in free[: max(0, share - len(keep - released))]:
            token = lease_ops.claim(db, e, self.id, self.lease_seconds)
            if token is not None:
                claimed[e] = token
        if LEADER not in renewed:
            token = lease_ops.claim(db, LEADER, self.id, self.lease_seconds)
            if token is not None:
                claimed[LEADER] = token
        if claimed or released:
            table = lease_ops.leases(db)
        others = [
            lease.expires - lease.now
            for e, lease in table.items()
            if lease.live and lease.holder != self.id and (e in elements or e == LEADER)
        ]
        return Round(
            renewed - released, claimed, released, table, live, min(others) if others else None
        )

    async def stop(self) -> None:
        """SIGTERM (after `run` returned): hand every lease over at once, and
        leave the replica list."""
        held = list(self.held)
        self.held = {}
        try:
            await asyncio.to_thread(self.store.call, lease_ops.leave, self.id, held)
            self.log.info("leases_released", replica=self.id, elements=held)
        except LeaseDbError as e:
            self.log.warning("leases_not_released", replica=self.id, error=str(e))
        finally:
            self.store.close()


class FencedDriver(ForwardingDriver):
    """A driver whose writes carry this replica's fencing token for the element,
    and are not sent at all once the lease is no longer good (`Replica.valid`)."""

    def __init__(self, inner: Driver, replica: Replica) -> None:
        super().__init__(inner)
        self.replica = replica

    def _fence(self) -> None:
        fence = self.replica.fence(self.name)
        if fence is None:
            raise FencedError(
                f"replica {self.replica.id} no longer holds the lease on element "
                f"{self.name}: the write was not sent (its new holder writes it)"
            )
        if hasattr(self.inner, "fence"):
            self.inner.fence = fence

    async def write(self, op: WriteOp) -> WriteResult:
        self._fence()
        return await self.inner.write(op)

    async def write_batch(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        self._fence()
        return await self.inner.write_batch(ops)


def replica_json(s: Snapshot) -> dict[str, Any]:
    """`watch.replica` of the live status document."""
    return {
        "id": s.replica,
        "leader": s.leader,
        "healthy": s.healthy,
        "error": s.error,
        "holds": s.held,
        "holders": s.holders,
        "replicas": s.replicas,
    }
