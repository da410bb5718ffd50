"""A fleet process's lease keeper (issue #19): one for every lease it holds.

One `provgit fleet watch` process holds leases on its networks (the fleet's
schema, fleet_leases.py) and, through each network's watcher, on that
network's elements (the network's journal schema, replicas.py), all renewed
by this one interpreter. A full garbage collection or another long C call
holding its GIL for longer than the lease time lost them all at once. The
replica's keeper process (lease_keeper.py, journal/lease_keeper.py) renews them
instead while the interpreter cannot: one keeper per fleet process, not one per
network, told at every tick what the process holds, by schema, and when the
fleet's event loop last moved. The same rules as a replica's keeper: it renews
only those tokens, only while the loop moved within the stall bound, never
claims nor releases, dies with the process, and is closed before the networks
are handed back. Each network's replica reads the keeper's renewals of its own
schema when its own have lapsed (`Replica.kept`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from provgit.watch.fleet_leases import FLEET_SCHEMA, FleetLeases
from provgit.watch.lease_keeper import LeaseKeeper
from provgit.watch.logs import Log
from provgit.watch.loop_lag import LoopLag
from provgit.watch.replicas import Replica

# (schema, replica) of each network this process runs.
Networks = Callable[[], list[tuple[str, Replica]]]


class FleetKeeper:
    def __init__(
        self,
        url: str,
        password: str | None,
        leases: FleetLeases,
        networks: Networks,
        lag: LoopLag,
        log: Log,
        stall: float | None = None,
    ) -> None:
        self.leases = leases
        self.networks = networks
        self.lag = lag
        self.keeper = LeaseKeeper(
            leases.id, url, password, FLEET_SCHEMA, leases.lease_seconds, leases.margin, log, stall
        )
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self.keeper.pid

    def attach(self, replica: Replica, schema: str) -> None:
        """A network's replica reads the keeper's renewals of its schema."""
        keeper = self.keeper
        replica.kept = lambda: keeper.renewed(schema)

    def start(self) -> None:
        """Spawn the keeper (from the event loop's thread: its death signal
        follows the thread that spawned it) and start telling it."""
        self.keeper.start()
        self._thread = threading.Thread(target=self._tell, name="fleet-keeper", daemon=True)
        self._thread.start()

    def _tell(self) -> None:
        while not self._halt.is_set():
            self.tell()
            self._halt.wait(self.leases.tick)

    def tell(self) -> None:
        """What this process holds now: copies, as the loop changes them meanwhile."""
        tokens = {n: h.token for n, h in dict(self.leases.held).items()}
        groups: dict[str, dict[str, int]] = {}
        for schema, replica in self.networks():
            held = {e: h.token for e, h in dict(replica.held).items()}
            if held:
                groups[schema] = held
        self.keeper.tell(self.lag.seen, tokens, self.leases.url, groups)

    def close(self) -> None:
        """Before the networks are handed back: nothing is renewed after."""
        self._halt.set()
        if self._thread is not None:
            self._thread.join()
        self.keeper.close()
