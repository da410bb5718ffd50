"""Prometheus metrics of the watcher (prometheus-client, its own registry).

Counters move when a run ends; the gauges that mirror the journal (pending
updates, distribution errors, alarm level, suspensions) are refreshed after every run and
at start, so a scrape never touches the journal.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder

from provgit.api.watching import (
    ALARM_LEVELS,
    LEADER,
    SYNC_COMPLETED,
    ApplyResult,
    Suspension,
    database_errors,
)
from provgit.watch.replicas import Snapshot

# What a scraper gets unless it asks for OpenMetrics: the Prometheus text
# format 0.0.4, which every scraper reads.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
OP_RESULTS = ("ok", "failed", "pending", "skipped", "held")
# First word of a held element's status -> what holds it (apply/holds.py).
_HELD_BY = {"Suspended:": "suspended", "Held": "window", "Deferred:": "call_load"}


class Metrics:
    def __init__(self, loop_lag: Callable[[], float] | None = None) -> None:
        # `*_created` series only double what a scraper already knows.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.runs = Counter(
            "provgit_watch_runs",
            "Reconcile runs, by what started them and how they ended",
            ["reason", "outcome"],
            registry=r,
        )
        self.looks = Counter(
            "provgit_watch_unmoved_looks",
            "Looks at the ref that found the applied commit and started no run, by what "
            "asked (a git host's delivery replayed or relayed: webhook)",
            ["reason"],
            registry=r,
        )
        self.duration = Histogram(
            "provgit_watch_run_duration_seconds",
            "Duration of reconcile runs",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.operations = Counter(
            "provgit_operations", "Element operations applied, by result", ["result"], registry=r
        )
        self.pending = Gauge("provgit_pending_updates", "Pending updates", registry=r)
        self.errors = Gauge("provgit_distribution_errors", "Distribution errors", registry=r)
        self.alarm = Gauge(
            "provgit_alarm_level",
            "Data distribution alarm level: 0 none, 1 warning, 2 minor, 3 major",
            registry=r,
        )
        self.last_sync = Gauge(
            "provgit_element_last_sync_timestamp_seconds",
            "When each element was last seen in sync (Unix time)",
            ["element"],
            registry=r,
        )
        self._status_gauges(r)
        self.drift = Gauge(
            "provgit_drift_records",
            "Records that drifted from the config, per element",
            ["element"],
            registry=r,
        )
        self.drift_proposed = Gauge(
            "provgit_drift_proposed_records",
            "Drifted records proposed on a drift branch (watch --drift propose, or "
            "import --drift), held until it is merged or closed, per element",
            ["element"],
            registry=r,
        )
        self._proposed_labels: set[str] = set()
        self._verification_counters(r)
        self.refused = Counter(
            "provgit_watch_refused_configs",
            "Config versions refused because they are invalid",
            registry=r,
        )
        self._hold_gauges(r)
        self.running = Gauge(
            "provgit_watch_reconcile_running", "1 while a reconcile runs", registry=r
        )
        self.up_since = Gauge(
            "provgit_watch_start_timestamp_seconds", "When the watcher started", registry=r
        )
        self.up_since.set(time.time())
        self.loop_lag = Gauge(
            "provgit_event_loop_lag_seconds",
            "The worst delay of the watcher's event loop over the last minute: how much "
            "later than due a 0.25 s timer fired (the status server, runs and timers "
            "share the loop)",
            registry=r,
        )
        if loop_lag is not None:
            self.loop_lag.set_function(loop_lag)
        self._replica_gauges(r)
        for res in OP_RESULTS:
            self.operations.labels(res)

    def _hold_gauges(self, r: CollectorRegistry) -> None:
        """What keeps an element's writes back: a suspension, a window, call load."""
        self.suspended = Gauge(
            "provgit_suspended",
            "1 while writes are suspended, per element ('*': the whole network)",
            ["element"],
            registry=r,
        )
        self._suspended_labels: set[str] = set()
        self.held = Gauge(
            "provgit_held_elements",
            "1 while the last run held an element's work, by what holds it "
            "(suspended, window, call_load)",
            ["element", "by"],
            registry=r,
        )
        self._held_labels: set[tuple[str, str]] = set()

    def _verification_counters(self, r: CollectorRegistry) -> None:
        """How the watcher checks what the elements' change feeds said."""
        self.full_reads = Counter(
            "provgit_full_reads",
            "Full reads of an element verifying its change feed, per element",
            ["element"],
            registry=r,
        )
        self.feed_missed = Counter(
            "provgit_feed_missed_changes",
            "Changes a full read found that the element's change feed never named, per element",
            ["element"],
            registry=r,
        )

    def _status_gauges(self, r: CollectorRegistry) -> None:
        self.in_sync = Gauge(
            "provgit_element_in_sync",
            "1 while an element's status in the journal is Sync Completed (whichever "
            "replica holds it), else 0; NaN while the journal cannot be read (not known)",
            ["element"],
            registry=r,
        )
        self._sync_labels: set[str] = set()

    def _replica_gauges(self, r: CollectorRegistry) -> None:
        self.lease_holder = Gauge(
            "provgit_element_lease_holder",
            "Replicas on a shared journal: 1 for the replica holding each element's lease "
            "(as this replica last read the leases; element '@leader': the leader)",
            ["element", "replica"],
            registry=r,
        )
        self._lease_labels: set[tuple[str, str]] = set()
        self.replica_healthy = Gauge(
            "provgit_replica_healthy",
            "Replicas on a shared journal: 1 while this replica reaches the lease database "
            "(0: cut off, it writes nothing)",
            registry=r,
        )
        self.replica_holds = Gauge(
            "provgit_replica_elements_held", "Elements this replica applies now", registry=r
        )
        # Replicas: read at each scrape (the leases change between runs).
        self.replica_source: Callable[[], Snapshot] | None = None
        # Every element's journal status row (the status's own journal connection).
        self.statuses_source: Callable[[], Mapping[str, Mapping[str, Any]]] | None = None

    def counts(self, pending: int, errors: int, alarm: str | None) -> None:
        self.pending.set(pending)
        self.errors.set(errors)
        self.alarm.set(ALARM_LEVELS.index(alarm) + 1 if alarm in ALARM_LEVELS else 0)

    def suspensions(self, current: Mapping[str, Suspension]) -> None:
        """Mirror the journal's suspensions: 1 while suspended, 0 once resumed."""
        now = {s.element or "*" for s in current.values()}
        for element in self._suspended_labels | now:
            self.suspended.labels(element).set(1 if element in now else 0)
        self._suspended_labels |= now

    def proposed(self, counts: Mapping[str, int]) -> None:
        """Mirror the journal's proposed drift records (0 once merged or corrected)."""
        for element in self._proposed_labels | set(counts):
            self.drift_proposed.labels(element).set(counts.get(element, 0))
        self._proposed_labels |= set(counts)

    def looked(self, reasons: set[str]) -> None:
        self.looks.labels(",".join(sorted(reasons))).inc()

    def element_synced(self, element: str, at: float) -> None:
        self.last_sync.labels(element).set(at)

    def run_finished(
        self, reason: str, outcome: str, seconds: float, result: ApplyResult | None
    ) -> None:
        self.runs.labels(reason, outcome).inc()
        self.duration.observe(seconds)
        if result is None:
            return
        for res, n in result.counts().items():
            if n:
                self.operations.labels(res).inc(n)
        now = time.time()
        for e in result.elements:
            if e.status == SYNC_COMPLETED:
                self.element_synced(e.element, now)
        self.holds(result)
        self.counts(result.pending_updates, result.distribution_errors, result.alarm)

    def holds(self, result: ApplyResult) -> None:
        """Mirror which elements the run held, and why (the status words' start)."""
        now = {
            (e.element, _HELD_BY[e.status.split(" ")[0]])
            for e in result.elements
            if e.outcome == "held" and e.status.split(" ")[0] in _HELD_BY
        }
        ran = {e.element for e in result.elements}
        for label in self._held_labels | now:
            if label in now or label[0] in ran:
                self.held.labels(*label).set(1 if label in now else 0)
        self._held_labels |= now

    def holds_from(self, statuses: Mapping[str, Mapping[str, Any]]) -> None:
        """Mirror the holds the journal's element statuses name (at startup,
        before any run, and after every run: a run with nothing to apply
        leaves the gauge as it found it otherwise)."""
        now = {
            (name, _HELD_BY[first])
            for name, row in statuses.items()
            if (first := str(row.get("status") or "").split(" ")[0]) in _HELD_BY
        }
        for label in self._held_labels | now:
            self.held.labels(*label).set(1 if label in now else 0)
        self._held_labels |= now

    def _leases(self, s: Snapshot) -> None:
        self.replica_healthy.set(1 if s.healthy else 0)
        self.replica_holds.set(len(s.held))
        now = {(e, holder) for e, holder in s.holders.items() if holder is not None}
        for label in self._lease_labels | now:
            self.lease_holder.labels(*label).set(1 if label in now else 0)
        self._lease_labels |= now

    def _cut_off(self, s: Snapshot) -> None:
        """A replica cut off from the journal: no element in sync (it vouches
        for nothing, as its /status.json says), answered from memory. Not
        read: a read waits out the pool's reconnection on the server's event
        loop, the lease rounds and every other request with it, and its
        failure left the gauges at the last rows read (Sync Completed)."""
        self._sync_labels |= {e for e in s.holders if e != LEADER}
        for name in self._sync_labels:
            self.in_sync.labels(name).set(0)

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """(body, content type) for a scrape whose Accept header is `accept`:
        OpenMetrics 1.0 (ending `# EOF`) when it asks for
        `application/openmetrics-text`, else the Prometheus text format 0.0.4."""
        snap = None if self.replica_source is None else self.replica_source()
        if snap is not None:
            self._leases(snap)
        if snap is not None and not snap.healthy:
            self._cut_off(snap)
        elif self.statuses_source is not None:
            try:
                rows = self.statuses_source()
            except database_errors():
                # Not known now: not 1 (or 0) as last read, however long ago.
                for name in self._sync_labels:
                    self.in_sync.labels(name).set(math.nan)
            else:
                for name, row in rows.items():
                    self.in_sync.labels(name).set(1 if row["status"] == SYNC_COMPLETED else 0)
                    self._sync_labels.add(name)
        if not accept or "application/openmetrics-text" not in accept:
            return generate_latest(self.registry), CONTENT_TYPE
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
