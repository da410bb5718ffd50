"""A delivery for a network another replica runs: relayed to it (issue #19).

The replica a git host's delivery reaches checks it (fleet_hook.py); if the
network runs here it starts a run, else it sends the network's name on the
fleet's NOTIFY channel (journal/notify.py) and the replica running it
fetches at once. Every replica listens on a thread of its own; each time its
listener (re)connects it fetches every network it runs, since a name sent
while it was not listening is lost (journal/notify.py).

A proven delivery can be sent again and again (a GitHub signature has no
nonce), so the NOTIFYs do not grow with the deliveries: per network one in
flight and one queued, which every delivery arriving meanwhile shares (the
queued one starts after it arrived, so its holder fetches what it pushed).
They go out on the relay's own thread: a database that answers slowly, or not
at all, holds up no thread of the default executor, which the lease rounds
and the status documents run on.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from provgit.api.watching import LeaseDbError, LeaseStore, RelayListener, relay_notify
from provgit.watch.fleet_leases import FLEET_SCHEMA
from provgit.watch.logs import Log


class Relay:
    def __init__(self, url: str, password: str | None, timeout: float, log: Log) -> None:
        self.log = log
        self.listener = RelayListener(url, password, timeout)
        # Its own store (one sender at a time): never in the way of the lease rounds.
        self._store = LeaseStore(url, password, timeout=timeout, schema=FLEET_SCHEMA)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fleet-relay-send")
        # network -> its NOTIFY queued on the sender thread and not started yet.
        self._queued: dict[str, Future[None]] = {}
        self._queue_lock = threading.Lock()
        self._closed = False

    @property
    def listening(self) -> bool:
        return self.listener.connected.is_set()

    def start(self, heard: Callable[[str], None], listening: Callable[[], None]) -> None:
        """Listen; `heard(network)` on the event loop for each name relayed to this
        fleet, `listening()` there after each (re)connect."""
        loop = asyncio.get_running_loop()

        def on_heard(name: str) -> None:
            loop.call_soon_threadsafe(heard, name)

        def on_state(error: str | None) -> None:
            if error is None:
                loop.call_soon_threadsafe(listening)
            else:
                loop.call_soon_threadsafe(
                    lambda: self.log.warning("webhook_relay_unreachable", error=error)
                )

        self._thread = threading.Thread(
            target=self.listener.run,
            args=(self._stop, on_heard, on_state),
            name="fleet-webhook-relay",
            daemon=True,
        )
        self._thread.start()

    async def send(self, network: str) -> bool:
        """Ask the replica running `network` to fetch now; False if the database is away."""
        with self._queue_lock:
            if self._closed:  # shutting down: the sender thread takes no more
                return False
            queued = self._queued.get(network)
            mine = queued is None
            if queued is None:
                queued = self._sender.submit(self._notify, network)
                self._queued[network] = queued
        try:
            await asyncio.wrap_future(queued)
        except LeaseDbError as e:
            if mine:  # once per attempt, not once per delivery that shared it
                self.log.warning("webhook_not_relayed", network=network, error=str(e))
            return False
        return True

    def _notify(self, network: str) -> None:
        with self._queue_lock:
            # Started: a delivery arriving from now on queues the next NOTIFY.
            self._queued.pop(network, None)
        with self._lock:
            if self._closed:
                raise LeaseDbError("the relay is closed")
            self._store.call(relay_notify, network)

    async def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)
        with self._queue_lock:
            self._closed = True
        self._sender.shutdown(wait=False)  # what is queued fails at once (closed)
        with self._lock:
            self._store.close()
