"""A fleet replica's leases on networks (issue #19): which process runs which network.

The same lease rows as an element's (journal/leases.py), named `network:<name>`,
in the fleet's own schema (`FLEET_SCHEMA`) of the shared database, with its own
list of live replicas. Every tick a replica, in one round trip: says it is
alive, renews what it holds, hands back the networks whose watchers it has
stopped, picks the networks it holds beyond its fair share (ceil(networks /
live replicas)) to stop, and claims free or expired networks up to its share.

A network is handed back only after its watcher stopped (`drain` then
`release`): the watcher's writes in flight finish and are journaled, its element
leases are handed back, and only then may another replica start the network.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from provgit.api.watching import Lease, LeaseDbError, LeaseStore, lease_ops
from provgit.watch.logs import Log
from provgit.watch.replicas import Held, claim_order, starved

PREFIX = "network:"
# The fleet's leases and replicas: apart from any network's journal (each in
# its own schema, api/fleet.py) and from a single network's replicas.
FLEET_SCHEMA = "provgit_fleet"


def lease_name(network: str) -> str:
    return PREFIX + network


def network_of(lease: str) -> str:
    return lease.removeprefix(PREFIX)


def fair_share(networks: int, replicas: int) -> int:
    """The most networks one of `replicas` live replicas takes."""
    return math.ceil(networks / max(1, replicas))


@dataclass
class FleetRound:
    renewed: set[str]
    claimed: dict[str, int]
    released: set[str]
    drain: set[str]  # held beyond the share: stop their watchers, then release
    leases: dict[str, Lease]
    replicas: list[str]
    urls: dict[str, str | None] = field(default_factory=dict)


# The most networks a replica claims in one round: each starts a watcher
# (journal opened and migrated, a first run), so a replica that finds many free
# takes them over a few ticks instead of all at once on one busy event loop.
CLAIMS_PER_ROUND = 3


def plan_round(
    me: str,
    names: frozenset[str],
    mine: set[str],
    draining: set[str],
    table: dict[str, Lease],
    live: list[str],
) -> tuple[set[str], list[str]]:
    """(networks to start stopping, free networks to claim in order), pure:
    the share computation the tests check as data."""
    share = fair_share(len(names), len(live))
    free = sorted(
        (n for n in names if n not in mine and (n not in table or not table[n].live)),
        key=lambda n: claim_order(me, n),
    )
    keeping = mine - draining
    give = max(0, len(keeping) - share)
    # A replica below its floor with none free: the fullest hands one over. With
    # networks free, the one below takes those instead (nothing need move).
    if not give and not draining and not free and starved(table, names, live, me):
        give = 1
    drain = set(sorted(keeping, key=lambda n: claim_order(me, n))[:give])
    return drain, free[: min(CLAIMS_PER_ROUND, max(0, share - len(mine)))]


class FleetLeases:
    def __init__(self, url: str, password: str | None, lease_seconds: float, log: Log) -> None:
        self.id = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(2).hex()}"
        self.lease_seconds = lease_seconds
        self.log = log
        self.store = LeaseStore(url, password, timeout=self.margin, schema=FLEET_SCHEMA)
        self.names: frozenset[str] = frozenset()  # lease names of the fleet's networks
        self.held: dict[str, Held] = {}
        self.draining: set[str] = set()  # watchers being stopped, leases still held
        self.stopped: set[str] = set()  # watchers stopped: hand these back next round
        self.url: str | None = None
        self.connected = True
        self.error: str | None = None
        self.leases: dict[str, Lease] = {}
        self.replicas: list[str] = []
        self.urls: dict[str, str | None] = {}
        self.rounds = 0
        # Stopping (SIGTERM): rounds only renew, while the watchers drain.
        self.closing = False

    @property
    def margin(self) -> float:
        return max(0.5, self.lease_seconds / 5)

    @property
    def tick(self) -> float:
        return min(1.0, self.lease_seconds / 5)

    def valid(self, lease: str) -> bool:
        held = self.held.get(lease)
        return held is not None and time.monotonic() < held.valid_until

    def holder(self, network: str) -> str | None:
        lease = self.leases.get(lease_name(network))
        return lease.holder if lease is not None and lease.live else None

    async def step(self) -> FleetRound | None:
        """One round (None: the database did not answer; the caller stops what lapsed)."""
        sent = time.monotonic()
        tokens = {n: h.token for n, h in self.held.items()}
        give_back = set(self.stopped)
        try:
            r: FleetRound = await asyncio.to_thread(
                self.store.call, self._round, tokens, give_back, set(self.draining)
            )
        except LeaseDbError as e:
            if self.connected:
                self.log.error("fleet_journal_unreachable", replica=self.id, error=str(e))
            self.connected, self.error = False, str(e)
            return None
        if not self.connected:
            self.log.info("fleet_journal_reachable", replica=self.id)
        self.connected, self.error = True, None
        self.rounds += 1
        self.stopped -= r.released
        self.draining -= r.released
        until = sent + self.lease_seconds - self.margin
        for n in set(tokens) - r.renewed - r.released:
            self.held.pop(n, None)
            self.draining.discard(n)
            self.log.warning("network_lease_lost", replica=self.id, network=network_of(n))
        for n in r.released:
            self.held.pop(n, None)
            self.log.info("network_released", replica=self.id, network=network_of(n))
        for n in r.renewed:
            if n in self.held:
                self.held[n].valid_until = until
        for n, token in sorted(r.claimed.items()):
            self.held[n] = Held(token, until)
            self.log.info("network_claimed", replica=self.id, network=network_of(n), token=token)
        self.draining |= r.drain
        self.leases, self.replicas, self.urls = r.leases, r.replicas, r.urls
        return r

    def lapsed(self) -> list[str]:
        """Networks whose lease may have expired (the database did not answer)."""
        now = time.monotonic()
        gone = sorted(n for n, h in self.held.items() if now >= h.valid_until)
        for n in gone:
            del self.held[n]
            self.draining.discard(n)
        return gone

    def _round(
        self, db: Any, tokens: dict[str, int], give_back: set[str], draining: set[str]
    ) -> FleetRound:
        lease_ops.heartbeat(db, self.id, socket.gethostname(), os.getpid(), self.url)
        renewed = lease_ops.renew(db, self.id, tokens, self.lease_seconds)
        released = (give_back | (renewed - self.names)) & set(tokens)
        lease_ops.release(db, self.id, released)
        mine = renewed - released
        live = lease_ops.live_replicas(db, self.lease_seconds)
        table = lease_ops.leases(db)
        drain: set[str] = set()
        claimed: dict[str, int] = {}
        # The first round only says this replica is alive: replicas started
        # together then see each other before claiming, instead of one taking all.
        if self.rounds > 0 and not self.closing:
            drain, free = plan_round(self.id, self.names, mine, draining & mine, table, live)
            for n in free:
                token = lease_ops.claim(db, n, self.id, self.lease_seconds)
                if token is not None:
                    claimed[n] = token
            if claimed or released:
                table = lease_ops.leases(db)
        urls = dict(db.execute("SELECT replica, url FROM replica_seen").fetchall())
        return FleetRound(mine, claimed, released, drain - draining, table, live, urls)

    async def leave(self) -> None:
        """SIGTERM, once every watcher stopped: hand every network back, leave the list."""
        held = list(self.held)
        self.held.clear()
        try:
            await asyncio.to_thread(self.store.call, lease_ops.leave, self.id, held)
            self.log.info("networks_released", replica=self.id, networks=held)
        except LeaseDbError as e:
            self.log.warning("networks_not_released", replica=self.id, error=str(e))
        finally:
            self.store.close()
