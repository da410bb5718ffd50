"""A fleet's webhook relay on the shared database: PostgreSQL LISTEN/NOTIFY.

A git host's delivery may reach a replica that does not run its network (the
load balancer picks any). That replica sends the network's name, and nothing
else (no secret, no body), on the fleet's channel; every replica of the fleet
listens, and the one running the network fetches at once. NOTIFY reaches only
the sessions listening when it commits: a replica whose listener is down (the
database away, its session terminated) misses it. So after each (re)connect,
once its LISTEN is in force, the listener says so (`state(None)`) and the
replica fetches every network it runs: a name sent while it was away is
caught then, not at the next periodic fetch (a takeover's first fetch covers
a network that had no holder).

The listener holds one connection of its own for its whole life (LISTEN is a
session's state: a pooled connection is reset between borrowers), counted in
the fleet's `pool_size` (pool.py `reserve`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from provgit.journal.pool import application_name

# One fleet per database (its leases are the database's `provgit_fleet`
# schema), so one channel name per database is one per fleet.
CHANNEL = "provgit_fleet_reconcile"
# PostgreSQL's payload limit is 8000 bytes; a network name is at most 51.
MAX_PAYLOAD = 200
RETRY_SECONDS = (0.5, 10.0)


def notify(db: Any, network: str) -> None:
    """Ask the fleet's replicas to fetch `network` now (autocommit: sent at once)."""
    db.execute("SELECT pg_notify(?, ?)", (CHANNEL, network[:MAX_PAYLOAD]))


class Listener:
    """LISTEN on the fleet's channel in a thread, handing each network name on."""

    def __init__(self, url: str, password: str | None, timeout: float) -> None:
        self.url = url
        self.password = password
        self.timeout = timeout
        self.connected = threading.Event()  # listening now (tests wait on it)
        self.error: str | None = None

    def run(
        self,
        stop: threading.Event,
        heard: Callable[[str], None],
        state: Callable[[str | None], None],
    ) -> None:
        """Until `stop`: listen, and reconnect (backing off) whenever the session goes.
        `state(None)` after every LISTEN (the first one included), `state(error)`
        when the session is lost or cannot be opened."""
        failures = 0
        while not stop.is_set():
            try:
                self._listen(stop, heard, state)
                failures = 0
            except Exception as e:  # the database away: said once, retried
                self.connected.clear()
                failures += 1
                text = " ".join(str(e).split()) or type(e).__name__
                if self.password:
                    text = text.replace(self.password, "***")
                if self.error is None:
                    state(text)
                self.error = text
                stop.wait(min(RETRY_SECONDS[1], RETRY_SECONDS[0] * 2 ** (failures - 1)))

    def _listen(
        self,
        stop: threading.Event,
        heard: Callable[[str], None],
        state: Callable[[str | None], None],
    ) -> None:
        import psycopg

        kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": max(2, round(self.timeout)),
            "application_name": application_name(),
        }
        if self.password is not None:
            kwargs["password"] = self.password
        with psycopg.connect(self.url, **kwargs) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self.connected.set()
            self.error = None
            # Every time, not only after an error: a session terminated between
            # two waits is found only by the wait that follows, and what was
            # sent meanwhile is gone either way.
            state(None)
            while not stop.is_set():
                for n in conn.notifies(timeout=0.5):
                    if n.channel == CHANNEL:
                        heard(n.payload)
                # A session killed under us shows on the next statement, not in notifies().
                if conn.closed or conn.broken:
                    raise psycopg.OperationalError("the listening session was closed")
            with contextlib.suppress(Exception):
                conn.execute(f"UNLISTEN {CHANNEL}")
