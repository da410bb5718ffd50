"""The status server's provider in fleet mode: every network of the fleet at once.

/status.json lists each network with the replica holding its lease, and each
of its elements with the replica holding that element's lease (read from the
network's own journal schema, so a network held by another replica shows too);
for the networks this replica runs it adds their watcher's own live document.
/metrics merges the watchers' metrics under a `network` label and adds the
fleet's own gauges; the page groups by network.

Deriving one network's status takes seconds on a loaded machine, so each
network's part of the document is kept and built again only when something
it says may have changed: its watcher's own version (every run's start, end
and progress), its journal's mark (journal/leases.py `journal_mark`: a run,
a suspension, a cleared error written by any process), its network lease's
holder, its element leases' holders, its watcher's replica state; and at
least every REFRESH_SECONDS for the texts that age. A request then costs a
few small queries per network, not a derivation per network.

A request never builds the document itself (`served_document`): one thread
of the fleet's own builds it, one build at a time, and every request that
arrives during a build shares the next one. A request waits for a document
built after it arrived at most FRESH_WAIT seconds; past that it is answered
with the last one built, marked `fresh: false` (its `generated` says when),
every network's and element's status in it null and its last known value
under the network's `last_known` (`not_fresh`). So a build held up (a
network's journal locked or slow, a starved CPU) holds up no request and no
thread of the default executor, which the lease rounds and the runs' journal
calls wait for: 20 clients polling a fleet at load 40
saw 151 requests of 245 go unanswered for 120 s, each waiting, one build at a
time, for networks derived again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provgit.api.fleet import network_schema
from provgit.api.watching import Lease, LeaseDbError, LeaseStore, journal_pool, lease_ops
from provgit.render.fleet_page import render_fleet_html
from provgit.watch import reports
from provgit.watch.fleet_leases import FLEET_SCHEMA
from provgit.watch.options import iso

if TYPE_CHECKING:
    from provgit.watch.fleet import FleetSupervisor, Running

FORMAT = "provgit.fleet-status/1"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
# The longest a network's part of the document is served unchanged while
# nothing it is keyed on moved: what ages in it (times since) lags this much.
REFRESH_SECONDS = 15.0
# The longest a request waits for a document built after it arrived before it
# is answered with the last one built (`fresh: false`).
FRESH_WAIT = 5.0


@dataclass(frozen=True)
class _Kept:
    key: tuple[Any, ...]
    built: float  # time.monotonic()
    entry: dict[str, Any]


class FleetStatus:
    def __init__(self, supervisor: FleetSupervisor) -> None:
        self.s = supervisor
        fleet = supervisor.fleet
        # Its own connection (documents are made off the event loop), one caller at a time.
        self._store = LeaseStore(
            fleet.journal.url,
            fleet.journal.password,
            timeout=supervisor.leases.margin,
            schema=FLEET_SCHEMA,
        )
        self._lock = threading.Lock()
        # Held while a network's part is looked up or built: concurrent
        # requests wait for one build instead of each deriving it.
        self._build = threading.Lock()
        self._kept: dict[str, _Kept] = {}
        self.builds = 0  # derivations made (the tests and the benchmark read it)
        self.metrics = self  # the server asks `provider.metrics.exposition`
        # Whole documents, built by one thread of their own (served_document).
        self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fleet-status")
        self._asks = threading.Lock()
        self._building: Future[dict[str, Any]] | None = None
        self._next: Future[dict[str, Any]] | None = None
        self._last: dict[str, Any] | None = None

    def close(self) -> None:
        self._builder.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            self._store.close()

    # ---- documents served from memory ------------------------------------------------

    async def served_document(self) -> dict[str, Any]:
        """The document a request is answered with: one built after it arrived
        if ready within FRESH_WAIT, else the last one built (`fresh: false`).
        Only the very first document is waited for whole."""
        wanted = asyncio.wrap_future(self._after_now())
        try:
            return await asyncio.wait_for(asyncio.shield(wanted), FRESH_WAIT)
        except Exception:  # not ready in time, or that build failed
            last = self._last
            if last is None:
                return await wanted
            return not_fresh(last)

    def _after_now(self) -> Future[dict[str, Any]]:
        """A build that starts now or, one being under way, the next one."""
        with self._asks:
            if self._building is None:
                self._building = self._start(Future())
                return self._building
            if self._next is None:
                self._next = Future()
            return self._next

    def _start(self, done: Future[dict[str, Any]]) -> Future[dict[str, Any]]:
        try:
            self._builder.submit(self._build_into, done)
        except RuntimeError as e:  # shut down: the server is closing
            done.set_exception(e)
        return done

    def _build_into(self, done: Future[dict[str, Any]]) -> None:
        try:
            doc = self.status_document()
        except BaseException as e:
            done.set_exception(e)
        else:
            self._last = doc
            done.set_result(doc)
        finally:
            with self._asks:
                following, self._next = self._next, None
                self._building = None if following is None else self._start(following)

    # ---- the server's provider --------------------------------------------------------

    def trigger(self, reason: str) -> None:
        for r in list(self.s.running.values()):
            r.watcher.trigger(reason)

    def health(self) -> tuple[bool, dict[str, Any]]:
        leases = self.s.leases
        failed = sorted(n for n, r in self.s.running.items() if r.error is not None)
        detail = {
            "replica": leases.id,
            "networks": sorted(self.s.running),
            "failed": failed,
            "error": leases.error,
            # Deliveries for networks other replicas run reach them through it.
            "webhook_relay": self.s.relay.listening,
        }
        return leases.connected, detail

    def _network_and_element(self, element: str | None) -> tuple[Running, str | None]:
        name, _, rest = (element or "").partition("/")
        r = self.s.running.get(name)
        if r is None:
            if name not in {n.name for n in self.s.fleet.networks}:
                raise LookupError(f"no network {name!r} in the fleet: nothing changed")
            holder = self.s.leases.holder(name)
            there = f"; replica {holder} runs it" if holder else ""
            raise LookupError(
                f"network {name!r} is not run by this replica ({self.s.id}){there}: nothing changed"
            )
        return r, rest or None

    def suspend(self, element: str | None, reason: str, who: str) -> dict[str, Any]:
        """`element`: NETWORK or NETWORK/ELEMENT (a fleet serves many networks).
        LookupError (the server's 404) for a network not run here."""
        r, el = self._network_and_element(element)
        return {"network": r.network.name, **r.watcher.suspend(el, reason, who)}

    def resume(self, element: str | None, who: str) -> dict[str, Any] | None:
        r, el = self._network_and_element(element)
        resumed = r.watcher.resume(el, who)
        return None if resumed is None else {"network": r.network.name, **resumed}

    def status_document(self) -> dict[str, Any]:
        """The fleet's document (called off the event loop)."""
        leases = self.s.leases
        names = [n.name for n in self.s.fleet.networks]
        element_leases, marks, error = self._journal_state(names, sorted(self.s.running))
        with self._build:
            networks = [self._kept_network(n, element_leases.get(n), marks.get(n)) for n in names]
        return {
            "format": FORMAT,
            "generated": iso(time.time()),
            "fresh": True,
            "lease_seconds": self.s.fleet.lease_seconds,
            "replica": {
                "id": leases.id,
                "url": self.s.url,
                "healthy": leases.connected,
                "error": leases.error or error,
                "holds": sorted(self.s.running),
                "replicas": list(leases.replicas),
                "urls": dict(leases.urls),
                "pools": [_pool(p) for p in journal_pool.stats()],
                "documents_built": self.builds,
            },
            "networks": networks,
        }

    def _journal_state(
        self, names: list[str], here: list[str]
    ) -> tuple[dict[str, dict[str, Lease]], dict[str, Any], str | None]:
        """Every network's element leases, and the journal mark of those run here."""

        def read(db: Any) -> tuple[dict[str, dict[str, Lease]], dict[str, Any]]:
            leases = {n: lease_ops.leases_in(db, network_schema(n)) for n in names}
            marks = {n: lease_ops.journal_mark(db, network_schema(n)) for n in here}
            return leases, marks

        with self._lock:
            try:
                found, marks = self._store.call(read)
                return found, marks, None
            except LeaseDbError as e:
                return {}, {}, str(e)

    def _kept_network(
        self, name: str, element_leases: dict[str, Lease] | None, mark: Any
    ) -> dict[str, Any]:
        """The network's part, built again only when its key moved or it aged."""
        r = self.s.running.get(name)
        key = self._key(name, r, element_leases, mark)
        kept = self._kept.get(name)
        now = time.monotonic()
        if kept is not None and kept.key == key and now - kept.built < REFRESH_SECONDS:
            return kept.entry
        if r is not None:
            # The watcher keeps its own document for a second: a change its
            # version does not count (another process's journal write) would
            # find that one.
            r.watcher.touch()
            key = self._key(name, r, element_leases, mark)
        entry = self._network(name, element_leases)
        self.builds += 1
        if entry["error"] is None or r is None or r.error is not None:
            self._kept[name] = _Kept(key, now, entry)
        else:  # not readable now: asked again next time
            self._kept.pop(name, None)
        return entry

    def _key(
        self,
        name: str,
        r: Running | None,
        element_leases: dict[str, Lease] | None,
        mark: Any,
    ) -> tuple[Any, ...]:
        holders = tuple(
            (e, lease.holder if lease.live else None)
            for e, lease in sorted((element_leases or {}).items())
        )
        watcher: tuple[Any, ...] = ()
        if r is not None:
            live, config = r.watcher.live, r.watcher.config
            watcher = (id(r), live.version, config.applied_commit, config.drift_mode)
            if live.replica is not None:
                snap = live.replica.snapshot()
                watcher += (
                    snap.leader,
                    snap.healthy,
                    snap.error,
                    tuple(snap.held),
                    tuple(sorted(snap.holders.items())),
                )
        return (
            _state(r),
            None if r is None else r.error,
            self.s.leases.holder(name),
            holders,
            mark,
            watcher,
        )

    def _network(self, name: str, element_leases: dict[str, Lease] | None) -> dict[str, Any]:
        r = self.s.running.get(name)
        doc, error = None, None if r is None else r.error
        if r is not None and not r.stopping and r.error is None:
            try:
                # A copy of its context: the watcher's own may be entered on the loop now.
                doc = r.context.copy().run(r.watcher.status_document)
            except Exception as e:  # one network's journal away must not hide the others
                error = f"status not readable: {type(e).__name__}: {e}"
        statuses = {e: s.get("status") for e, s in (doc or {}).get("elements", {}).items()}
        elements = [
            {
                "name": e,
                "holder": lease.holder if lease.live else None,
                "status": statuses.get(e),
            }
            for e, lease in sorted((element_leases or {}).items())
            if not e.startswith("@")
        ]
        return {
            "name": name,
            "holder": self.s.leases.holder(name),
            "here": r is not None,
            "state": _state(r),
            "error": error,
            "status": None if doc is None else doc.get("status"),
            "in_sync": None if doc is None else doc.get("in_sync"),
            "elements": elements,
            "document": doc,
        }

    # ---- /metrics and the page -------------------------------------------------------

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        # Each in a copy of its network's context: a watcher's metrics read its
        # own journal (elsewhere, the context names none, or another's).
        parts = {
            name: r.context.copy().run(r.watcher.metrics.exposition, None)[0].decode()
            for name, r in sorted(self.s.running.items())
        }
        return (merge_expositions(parts) + self._own()).encode(), PROMETHEUS

    def _own(self) -> str:
        leases = self.s.leases
        lines = [
            "# HELP provgit_fleet_network_holder 1 for the replica holding each network's "
            "lease (as this replica last read the leases)",
            "# TYPE provgit_fleet_network_holder gauge",
        ]
        for n in self.s.fleet.networks:
            holder = leases.holder(n.name)
            if holder is not None:
                lines.append(
                    f'provgit_fleet_network_holder{{network="{n.name}",replica="{holder}"}} 1.0'
                )
        lines += [
            "# HELP provgit_fleet_networks_held Networks this replica runs now",
            "# TYPE provgit_fleet_networks_held gauge",
            f"provgit_fleet_networks_held {float(len(self.s.running))}",
            "# HELP provgit_fleet_healthy 1 while this replica reaches the fleet's database",
            "# TYPE provgit_fleet_healthy gauge",
            f"provgit_fleet_healthy {1.0 if leases.connected else 0.0}",
            "# HELP provgit_fleet_event_loop_lag_seconds The worst delay of the fleet's event "
            "loop (every network's watcher shares it) over the last minute",
            "# TYPE provgit_fleet_event_loop_lag_seconds gauge",
            f"provgit_fleet_event_loop_lag_seconds {self.s.lag.worst():.6f}",
        ]
        return "\n".join(lines) + "\n"

    def page(self, doc: dict[str, Any]) -> str:
        return render_fleet_html(doc, reports.REFRESH_SECONDS)

    def feed(self, doc: dict[str, Any], page: str, self_href: str) -> str | None:
        return None  # each network's events are in its own journal: `provgit status --network`


def not_fresh(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` (not changed) served from memory (`fresh: false`): no network's
    or element's status is known now, so each says null, its last known
    values kept under `last_known` with when they were built (`as_of`). A
    dashboard reading `in_sync` sees true only in a document built for it."""
    networks = []
    for n in doc["networks"]:
        last = {
            "as_of": doc["generated"],
            "status": n["status"],
            "in_sync": n["in_sync"],
            "elements": {e["name"]: e["status"] for e in n["elements"]},
            "document": n["document"],
        }
        elements = [{**e, "status": None} for e in n["elements"]]
        networks.append(
            {**n, "status": None, "in_sync": None, "elements": elements, "document": None}
            | {"last_known": last}
        )
    return {**doc, "fresh": False, "networks": networks}


def _state(r: Running | None) -> str:
    if r is None:
        return "elsewhere"
    if r.stopping:
        return "stopping"
    if r.error is not None:
        return "failed"
    return "running"


def merge_expositions(parts: dict[str, str]) -> str:
    """The Prometheus texts of several networks' watchers as one: each family's
    HELP and TYPE once, every sample with a `network` label first."""
    families: dict[str, list[str]] = {}
    heads: dict[str, list[str]] = {}
    for network, text in parts.items():
        current = ""
        for line in text.splitlines():
            if line.startswith(("# HELP ", "# TYPE ")):
                current = line.split(" ", 3)[2]
                heads.setdefault(current, [])
                if len(heads[current]) < 2 and line not in heads[current]:
                    heads[current].append(line)
                families.setdefault(current, [])
            elif line and not line.startswith("#"):
                families.setdefault(current, []).append(_labelled(line, network))
    out: list[str] = []
    for name, samples in families.items():
        out += heads.get(name, [])
        out += samples
    return "\n".join(out) + ("\n" if out else "")


def _labelled(sample: str, network: str) -> str:
    label = f'network="{network}"'
    name_end = min(i for i in (sample.find("{"), sample.find(" ")) if i >= 0)
    name, rest = sample[:name_end], sample[name_end:]
    if rest.startswith("{}"):
        return f"{name}{{{label}}}{rest[2:]}"
    if rest.startswith("{"):
        return f"{name}{{{label},{rest[1:]}"
    return f"{name}{{{label}}}{rest}"


def _pool(stats: Any) -> dict[str, Any]:
    """One of this process's connection pools to the journal database: a
    wait that ran out while all were in use shows here (and in the log)."""
    d: dict[str, Any] = stats.as_dict()
    last = d["last_exhausted"]
    d["last_exhausted"] = None if last is None else iso(last)
    return d
