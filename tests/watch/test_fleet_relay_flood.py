"""A flood of proven deliveries for a network another replica runs (issue #19).

A GitHub signature carries no nonce: one delivery seen once (a proxy's log)
can be sent again thousands of times, each proven. Each is relayed on the
fleet's NOTIFY channel; what that costs must not grow with the flood: one
NOTIFY in flight and one queued per network (the deliveries of a burst share
them: each is covered by a NOTIFY that began after it arrived), sent on the
relay's own thread, so a database that answers slowly (or not at all) never
holds up the threads the lease rounds and the status documents run on.

Real PostgreSQL (tests/journal/pg.py) for the listener's count; a "database"
on 127.0.0.1 that accepts connections and never answers for the slow case."""

from __future__ import annotations

import asyncio
import io
import socket
import threading
from collections.abc import Iterator

import pytest

from journal import pg
from provgit.watch.fleet_relay import Relay
from provgit.watch.logs import Log

from .replica_helpers import wait_for

BURST = 400


class _Silent:
    """A TCP listener on 127.0.0.1 that accepts every connection and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._held.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for c in self._held:
            c.close()
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[_Silent]:
    s = _Silent()
    try:
        yield s
    finally:
        s.close()


def test_a_burst_of_deliveries_to_a_silent_database_holds_up_no_lease_round(
    silent: _Silent,
) -> None:
    """While every relay attempt waits out the connect timeout, a lease round's
    `asyncio.to_thread` still runs at once, and the burst tries the database
    at most twice (one attempt in flight, one queued), not once per delivery."""
    out = io.StringIO()
    # 8 s: the first attempt outlasts the probe below on a loaded machine too.
    relay = Relay(
        f"postgresql://provgit@127.0.0.1:{silent.port}/fleet", "pw", 8.0, Log("json", stream=out)
    )
    burst = 20

    async def flood() -> tuple[int, list[bool]]:
        sends = [asyncio.create_task(relay.send("east")) for _ in range(burst)]
        await asyncio.sleep(0)  # every send has asked for its thread
        # What the lease round does each tick: is a thread of the default executor free?
        await asyncio.to_thread(lambda: None)
        done_then = sum(s.done() for s in sends)
        answers = await asyncio.gather(*sends)
        await relay.close()
        return done_then, answers

    done_then, answers = asyncio.run(flood())
    assert answers == [False] * burst  # the database never answered: not relayed
    assert done_then == 0, "the lease round's thread waited behind the relay's attempts"
    assert silent.accepted <= 2 * 2, f"{silent.accepted} connection attempts for one burst"


@pytest.mark.timeout(120)
def test_a_flood_of_deliveries_for_one_network_sends_a_bounded_number_of_notifies(
    pg_server: pg.Server,
) -> None:
    """BURST deliveries at once for one network reach its holder as at most two
    NOTIFYs, and the last one is sent after the last delivery arrived; another
    network's delivery in the same burst is relayed too (never merged)."""
    url = pg_server.new_database()
    heard: list[str] = []
    listener = Relay(url, pg.PASSWORD, 5.0, Log("json", stream=io.StringIO()))
    sender = Relay(url, pg.PASSWORD, 5.0, Log("json", stream=io.StringIO()))

    async def run() -> list[bool]:
        listening = asyncio.Event()

        def on_heard(name: str) -> None:
            heard.append(name)

        listener.start(on_heard, listening.set)
        await asyncio.wait_for(listening.wait(), 60)
        sends = [sender.send("east") for _ in range(BURST)] + [sender.send("west")]
        answers = list(await asyncio.gather(*sends))
        # One more delivery after the burst: it gets a NOTIFY of its own.
        answers.append(await sender.send("east"))
        await asyncio.to_thread(
            wait_for,
            "the relayed names",
            lambda: (heard.count("west") == 1 and heard.count("east") >= 2) or None,
            30.0,
        )
        await sender.close()
        await listener.close()
        return answers

    answers = asyncio.run(run())
    assert all(answers)
    assert heard.count("west") == 1
    # The burst: one NOTIFY in flight and one queued at most; the delivery after it: one.
    assert 2 <= heard.count("east") <= 3, heard
