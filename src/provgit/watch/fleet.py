"""`provgit fleet watch`: one process serving many networks (issue #19).

A supervisor holds leases on a fair share of the fleet's networks
(fleet_leases.py) and runs, in this process, one `Watcher` per network it
holds: the same watcher `provgit watch --repo` runs, each in an asyncio task
whose context names its network's journal (a PostgreSQL schema of its own)
and secrets (api/fleet.py), with its state directory under the fleet's. The
watchers serve no status of their own: one server per process shows them all
(fleet_status.py), and the signals are the supervisor's.

A network leaves this process (SIGTERM, or its share shrank because a replica
joined) only through its watcher's own stop: the writes on the wire finish
and are journaled, nothing more is sent, its element leases are handed back;
then the network's lease. A replica that dies (SIGKILL) keeps its networks
until their leases expire; the replica that takes one over starts its watcher,
which settles the open intents from the journal and applies the config to the
elements it takes (their element leases have expired by then too).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import signal
from dataclasses import dataclass, field, replace
from typing import Any

from provgit.api.fleet import Fleet, FleetNetwork, enter_network
from provgit.api.watching import journal_pool
from provgit.watch.fleet_hook import FleetHook
from provgit.watch.fleet_leases import FleetLeases, lease_name, network_of
from provgit.watch.fleet_relay import Relay
from provgit.watch.logs import Log
from provgit.watch.loop import Watcher
from provgit.watch.loop_lag import LoopLag
from provgit.watch.options import WatchOptions
from provgit.watch.server import start as start_server

# A watcher that failed to start (a repository not there yet, the database
# away) is started again after this long, doubling up to the cap.
RETRY_SECONDS = (1.0, 60.0)


@dataclass
class Running:
    """A network this process holds, and its watcher."""

    network: FleetNetwork
    watcher: Watcher
    context: contextvars.Context
    task: asyncio.Task[None]
    stopping: bool = False
    error: str | None = None
    failures: int = 0
    retry_at: float | None = None
    stopped: asyncio.Event = field(default_factory=asyncio.Event)


class FleetSupervisor:
    def __init__(self, fleet: Fleet, template: WatchOptions, log: Log) -> None:
        self.fleet = fleet
        self.template = template  # every network's watcher options but its own
        self.log = log
        self.leases = FleetLeases(
            fleet.journal.url, fleet.journal.password, fleet.lease_seconds, log
        )
        self.leases.names = frozenset(lease_name(n.name) for n in fleet.networks)
        self.running: dict[str, Running] = {}
        self.stop_event = asyncio.Event()
        self.wake = asyncio.Event()
        self.url: str | None = None
        self.lag = LoopLag()  # how late the fleet's one event loop is (loop_lag.py)
        self._drains: set[asyncio.Task[None]] = set()  # networks being handed back
        # A statement that found every pooled connection in use for its whole
        # wait was not run (its run stops, the next one retries): said here.
        journal_pool.on_exhausted(lambda info: log.warning("journal_pool_exhausted", **info))
        # The relay's listening connection is one of the fleet's pool_size.
        journal_pool.reserve(1)
        self.relay = Relay(fleet.journal.url, fleet.journal.password, self.leases.margin, log)

    @property
    def id(self) -> str:
        return self.leases.id

    # ---- the networks' watchers ----------------------------------------------------

    def _options(self, n: FleetNetwork) -> WatchOptions:
        state = self.fleet.state_dir / n.name
        drift: Any = n.drift if n.drift is not None else self.template.drift
        return replace(
            self.template,
            config=state,
            state_dir=state,
            repo=n.repo,
            ref=n.ref,
            subdir=n.path,
            drift=drift,
            lease_seconds=self.fleet.lease_seconds,
            replica_id=self.id,
            in_fleet=True,
            fleet_url=self.url,
        )

    def _start(self, name: str, failures: int = 0) -> None:
        n = self.fleet.network(name)
        context = contextvars.copy_context()
        context.run(enter_network, self.fleet, n)
        watcher = context.run(Watcher, self._options(n), self.log.bind(network=name))
        # The task runs in the network's context: the journal and the secrets
        # it and the threads it hands work to use are its network's.
        task = asyncio.create_task(
            watcher.run(lambda url: None), name=f"network-{name}", context=context
        )
        r = Running(n, watcher, context, task, failures=failures)
        self.running[name] = r
        task.add_done_callback(lambda t: self._ended(name, r, t))
        self.log.info("network_started", network=name, replica=self.id)

    def _ended(self, name: str, r: Running, task: asyncio.Task[None]) -> None:
        r.stopped.set()
        if task.cancelled() or r.stopping:
            return
        e = task.exception()
        # A watcher that failed while starting did not reach its own cleanup.
        r.watcher.journals.close()
        r.watcher.live.close()
        r.error = f"{type(e).__name__}: {e}" if e is not None else "the watcher ended"
        r.failures += 1
        wait = min(RETRY_SECONDS[1], RETRY_SECONDS[0] * 2 ** (r.failures - 1))
        r.retry_at = asyncio.get_running_loop().time() + wait
        self.log.error("network_failed", network=name, error=r.error, retry_in=wait)
        self.wake.set()

    async def _stop(self, name: str) -> None:
        """The watcher's own SIGTERM: writes in flight finish, element leases go back."""
        r = self.running.get(name)
        if r is None:
            return
        first = not r.stopping
        r.stopping = True
        if not r.task.done():
            if first:  # a second stop would cancel the run (the forced stop)
                r.watcher.stop()
            timeout = self.template.stop_timeout + 5.0
            try:
                await asyncio.wait_for(asyncio.shield(r.stopped.wait()), timeout)
            except TimeoutError:
                self.log.warning("network_stop_forced", network=name)
                r.watcher.stop()  # a second stop cancels the run
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(r.stopped.wait(), 5.0)
        if self.running.get(name) is r:
            del self.running[name]
            self.log.info("network_stopped", network=name, replica=self.id)

    async def _drain(self, lease: str) -> None:
        await self._stop(network_of(lease))
        self.leases.stopped.add(lease)
        self.wake.set()  # hand it back at once, not at the next tick

    # ---- webhook deliveries -----------------------------------------------------------

    async def deliver(self, name: str) -> dict[str, Any]:
        """A proven delivery for `name`: a run here, or relayed to the replica running it."""
        r = self.running.get(name)
        if r is not None and not r.stopping and r.error is None:
            r.watcher.trigger("webhook")
            return {"network": name, "here": True, "holder": self.id}
        relayed = await self.relay.send(name)
        holder = self.leases.holder(name)
        answer: dict[str, Any] = {
            "network": name,
            "here": False,
            "holder": holder,
            "relayed": relayed,
        }
        answer["note"] = _next_step(holder, relayed, self.fleet.lease_seconds)
        return answer

    def _listening(self) -> None:
        """The relay's listener (re)connected: what was relayed while it was not
        listening is lost, so every network run here fetches now (a look at its
        ref, as the periodic fetch does: a run only when the ref moved)."""
        names = sorted(n for n, r in self.running.items() if not r.stopping and r.error is None)
        for name in names:
            self.running[name].watcher.trigger("fetch")
        self.log.info("webhook_relay_listening", replica=self.id, fetching=names)

    def _relayed(self, name: str) -> None:
        r = self.running.get(name)
        if r is not None and not r.stopping:
            r.watcher.trigger("webhook")
            self.log.info("webhook_relayed", network=name, replica=self.id)

    # ---- the rounds -----------------------------------------------------------------

    async def _rounds(self) -> None:
        drains = self._drains
        while not self.stop_event.is_set():
            r = await self.leases.step()
            if r is None:
                for lease in self.leases.lapsed():
                    self.log.error("network_writes_stopped", network=network_of(lease))
                    await self._stop(network_of(lease))
            else:
                for name in list(self.running):
                    if lease_name(name) not in self.leases.held and not self.running[name].stopping:
                        await self._stop(name)  # lost (expired): its element leases fence it
                for lease in r.drain:
                    t = asyncio.create_task(self._drain(lease))
                    drains.add(t)
                    t.add_done_callback(drains.discard)
                for lease in r.claimed:
                    self._start(network_of(lease))
            self._restart_failed()
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken(), self.leases.tick)

    async def _woken(self) -> None:
        waits = [
            asyncio.ensure_future(self.wake.wait()),
            asyncio.ensure_future(self.stop_event.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    def _restart_failed(self) -> None:
        now = asyncio.get_running_loop().time()
        for name, r in list(self.running.items()):
            if r.retry_at is not None and now >= r.retry_at and not r.stopping:
                del self.running[name]
                if lease_name(name) in self.leases.held:
                    self._start(name, r.failures)

    # ---- lifetime -------------------------------------------------------------------

    async def run(
        self, ready: Any, host: str, port: int, token: str | None, allowed: tuple[str, ...] = ()
    ) -> None:
        from provgit.watch.fleet_status import FleetStatus

        status = FleetStatus(self)
        hook = FleetHook(self.fleet.networks, token, self.deliver, status.trigger, self.log)
        runner, url = await start_server(
            status, host, port, token, reconcile=hook.handle, allowed=allowed
        )
        self.relay.start(self._relayed, self._listening)
        hook.check_secrets()
        self.url = self.leases.url = url
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop, sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_reload)
        self.log.info(
            "fleet_started",
            url=url,
            replica=self.id,
            networks=len(self.fleet.networks),
            lease_seconds=self.fleet.lease_seconds,
        )
        ready(url)
        lag = asyncio.create_task(self.lag.run(), name="fleet-loop-lag")
        try:
            await self._rounds()
        finally:
            lag.cancel()
            # The networks stay ours (renewed, nothing claimed) until each
            # watcher has drained; only then are they handed back.
            self.leases.closing = True
            drained = asyncio.Event()
            renewing = asyncio.create_task(self._renew_until(drained))
            await asyncio.gather(*(self._stop(n) for n in list(self.running)), *self._drains)
            # Not cancelled: a round in its thread would race `leave` on the connection.
            drained.set()
            await asyncio.gather(renewing, return_exceptions=True)
            await self.leases.leave()
            await self.relay.close()
            status.close()
            await runner.cleanup()
            self.log.info("fleet_stopped", replica=self.id)

    async def _renew_until(self, drained: asyncio.Event) -> None:
        while not drained.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(drained.wait(), self.leases.tick)
            if not drained.is_set():
                await self.leases.step()

    def _on_stop(self, sig: int) -> None:
        if self.stop_event.is_set():
            # A second signal: stop the runs now (each watcher's forced stop).
            for r in self.running.values():
                r.watcher.stop()
            return
        self.log.info("stopping", signal=signal.Signals(sig).name, networks=sorted(self.running))
        self.stop_event.set()

    def _on_reload(self) -> None:
        for r in self.running.values():
            r.watcher.reload()


def _next_step(holder: str | None, relayed: bool, lease_seconds: float) -> str:
    """What a delivery's sender is told happens next for a network run elsewhere."""
    takeover = (
        f"the replica that takes it over (within the lease time, {lease_seconds:g} s) fetches first"
    )
    if not relayed:
        return (
            "not relayed (the fleet's database is away): its holder fetches when its "
            "relay listener reconnects, or at its next periodic fetch"
        )
    if holder is None:
        return f"no replica runs it now: {takeover}"
    return f"relayed to {holder}, which fetches now; if that replica is gone, {takeover}"
